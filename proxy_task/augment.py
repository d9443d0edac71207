"""The paper's augmentation with torchvision's box-aware v2 transforms, and normalisation.

Per image: horizontal flip (p = 0.5), scale jitter (resize by a factor in [lo, hi] of the
proxy size), then a random crop / zero pad back to S x S; boxes follow and degenerate ones
are dropped (SanitizeBoundingBoxes). Randomness comes from torch's global generator, which
the trainer seeds.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from proxy_task.detector import MEAN, STD


def make_augmentation(size: int, scale_range: tuple[float, float], hflip: bool) -> v2.Compose:
    """v2 pipeline on (Image, {'boxes': BoundingBoxes, 'labels'}) samples of size S x S."""
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip(0.5)] if hflip else []
    if scale_range != (1.0, 1.0):
        steps += [
            v2.ScaleJitter((size, size), scale_range=scale_range, antialias=True),
            v2.RandomCrop((size, size), pad_if_needed=True),
        ]
    steps.append(v2.SanitizeBoundingBoxes(min_size=1.0))
    return v2.Compose(steps)


def augment_batch(images: torch.Tensor, targets: list[dict], transform: v2.Compose) -> tuple[torch.Tensor, list[dict]]:
    """uint8 (B, 3, S, S) + targets -> augmented uint8 (B, 3, S, S) + targets (plain tensors)."""
    size = tuple(images.shape[-2:])
    out_images, out_targets = [], []
    for img, t in zip(images, targets):
        boxes = tv_tensors.BoundingBoxes(t["boxes"], format="XYXY", canvas_size=size)
        img2, t2 = transform(tv_tensors.Image(img), {"boxes": boxes, "labels": t["labels"]})
        out_images.append(img2.as_subclass(torch.Tensor))
        out_targets.append({"boxes": t2["boxes"].as_subclass(torch.Tensor).float(), "labels": t2["labels"]})
    return torch.stack(out_images), out_targets


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, H, W), ImageNet mean/std (torchvision's defaults)."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
