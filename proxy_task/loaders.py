"""The end-to-end training set as a torch Dataset (augmented in DataLoader workers)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from proxy_task.augment import augment_batch
from proxy_task.data import ImageSet


class AugmentedImages(Dataset):
    """Sample k: augmented uint8 (3, S, S) image and {'boxes', 'labels'} from the tensor cache."""

    def __init__(self, images: ImageSet, transform: v2.Compose):
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, dict]:
        images, targets = augment_batch(*self.images.batch([k]), self.transform)
        return images[0], targets[0]


def collate(samples: list[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """Stack the images (all S x S), keep the targets as a list."""
    return torch.stack([s[0] for s in samples]), [s[1] for s in samples]
