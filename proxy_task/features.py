"""A backbone trained once per dataset, frozen, and its features cached (the CPU proxy's lever).

Training the backbone inside every trial makes the reward mostly seed noise at a CPU budget
(docs/proxy_task.md). As NAS-FCOS does, the proxy instead trains the backbone once per
dataset with an architecture-neutral neck (per-level lateral conv, no cross-scale fusion,
so no genotype is favoured), freezes it, and caches C3..C5 of every image, flipped and
not, so a trial only trains the pyramid and the heads. The weights are cached on disk,
keyed by everything that determines them (the train images' content and PRETRAIN_FIELDS);
the features live in the worker's `ProxyTask` (proxy_task/task.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from proxy_task.augment import augment_batch, make_augmentation, normalize
from proxy_task.backbones import Backbone, build_backbone
from proxy_task.config import PRETRAIN_FIELDS, ProxyTaskConfig
from proxy_task.data import ImageSet, ProxyData
from proxy_task.detector import NASFPNRetinaNet, make_anchor_generator, make_head
from proxy_task.synthetic import cache_root
from space.atomic import atomic_path

log = logging.getLogger(__name__)
_VERSION = 3
# Backbones the project ships, pre-trained by this code for its built-in presets (data/backbones/
# README.md): found by the same content key, they spare a first run its pre-training.
SHIPPED_BACKBONES = Path(__file__).resolve().parents[1] / "data" / "backbones"


class LateralNeck(nn.Module):
    """[C3, C4, C5] -> [P3..P7]: 1x1 conv + BN per level, P6/P7 by stride-2 max pool, 3x3 conv + BN."""

    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.out_channels = channels
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, channels, 1), nn.BatchNorm2d(channels)) for c in in_channels
        )
        self.output = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
            for _ in range(5)
        )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        levels = [lat(f) for lat, f in zip(self.lateral, feats)]
        while len(levels) < 5:
            levels.append(nn.functional.max_pool2d(levels[-1], 2, 2, ceil_mode=True))
        return [conv(x) for conv, x in zip(self.output, levels)]


def backbone_key(cfg: ProxyTaskConfig, data: ProxyData) -> str:
    """Names the frozen backbone: the train images' content, the class count and PRETRAIN_FIELDS."""
    settings = {f: getattr(cfg, f) for f in PRETRAIN_FIELDS}
    blob = json.dumps([_VERSION, data.train_key, data.num_classes, settings], sort_keys=True, default=list)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _pretrain(cfg: ProxyTaskConfig, data: ProxyData, device: torch.device) -> tuple[Backbone, nn.Module]:
    torch.manual_seed(0)
    backbone = build_backbone(cfg.backbone, cfg.backbone_width, cfg.backbone_weights)
    anchors = make_anchor_generator(cfg.anchor_scale, cfg.anchor_octaves, cfg.anchor_ratios)
    head = make_head(cfg.channels, anchors.num_anchors_per_location()[0], data.num_classes, cfg.head_convs)
    neck = LateralNeck(backbone.out_channels, cfg.channels)
    # the pre-training keeps torchvision's focal loss whatever the trials use: its cached
    # head and features (keyed by `backbone_key`) stay those every node already has
    model = NASFPNRetinaNet(
        backbone, neck, [head], data.num_classes, anchors, focal_gamma=cfg.focal_gamma, focal_loss="torchvision"
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.backbone_pretrain_lr, momentum=0.9, weight_decay=1e-4)
    steps, warm = cfg.backbone_pretrain_steps, max(1, cfg.backbone_pretrain_steps // 20)
    transform = make_augmentation(cfg.image_size, cfg.scale_jitter, cfg.hflip)
    gen = torch.Generator().manual_seed(0)
    order = torch.empty(0, dtype=torch.long)
    model.train()
    for step in range(steps):
        if len(order) < cfg.batch_size:
            order = torch.randperm(len(data.train), generator=gen)
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        images, targets = augment_batch(*data.train.batch(idx), transform)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        lr = cfg.backbone_pretrain_lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = sum(model(normalize(images.to(device)), targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        if step % 250 == 0 or step == steps - 1:
            log.info("backbone pre-training step %d/%d loss %.3f", step + 1, steps, loss.item())
    return backbone, head


def frozen_backbone(cfg: ProxyTaskConfig, data: ProxyData, device: torch.device) -> tuple[Backbone, dict, str]:
    """The dataset's backbone, frozen and in eval mode, with the state of the head it was
    trained with (a common head initialisation for trials): from the cache, else shipped with
    the project (SHIPPED_BACKBONES), else trained now and cached."""
    key = backbone_key(cfg, data)
    path = cache_root(cfg.cache_dir) / "backbones" / f"{key}.pt"
    shipped = SHIPPED_BACKBONES / f"{key}.pt"
    backbone = build_backbone(cfg.backbone, cfg.backbone_width)
    if path.exists() or shipped.exists():
        source = path if path.exists() else shipped
        state = torch.load(source, map_location="cpu", weights_only=True)
        backbone.load_state_dict(state["backbone"])
    else:
        trained, head = _pretrain(cfg, data, device)
        state = {"backbone": trained.cpu().state_dict(), "head": head.cpu().state_dict()}
        backbone.load_state_dict(state["backbone"])
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    backbone.eval().requires_grad_(False)
    return backbone.to(device), state["head"], key


def pretrain_on_cpu(cfg: ProxyTaskConfig, data: ProxyData) -> None:
    """Train (or find on disk) the frozen backbone on the CPU with the trials' thread count
    (cfg.num_threads), so the cache, and every reward with it, is the same bit for bit as a
    worker or the train CLI would make."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.num_threads))
    try:
        frozen_backbone(cfg, data, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)


@dataclass
class CachedFeatures:
    """C3..C5 of every train image (as is and flipped) and of every reward image."""

    head_state: dict  # the pre-training head (state_dict)
    train: list[torch.Tensor]  # per level (N, C_l, H_l, W_l)
    train_flipped: list[torch.Tensor]
    train_boxes_flipped: list[torch.Tensor]
    eval: list[torch.Tensor]
    # anchor assignments of the train images, keyed by the detector (see
    # NASFPNRetinaNet.match): computed once per ProxyTask, shared by its trials
    matches: dict = field(default_factory=dict)


@torch.no_grad()
def _extract(backbone: Backbone, images: ImageSet, flip: bool, device: torch.device, batch: int) -> list[torch.Tensor]:
    chunks: list[list[torch.Tensor]] = []
    for start in range(0, len(images), batch):
        x, _ = images.batch(range(start, min(start + batch, len(images))))
        x = normalize(x.to(device))
        chunks.append(backbone(x.flip(-1) if flip else x))
    return [torch.cat([c[k] for c in chunks]).float() for k in range(len(chunks[0]))]


def extract_features(cfg: ProxyTaskConfig, data: ProxyData, device: torch.device) -> tuple[Backbone, CachedFeatures]:
    """The frozen backbone (trained on first use) and the features of every image on `device`."""
    backbone, head_state, _ = frozen_backbone(cfg, data, device)
    size = data.image_size
    flipped_boxes = [torch.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], 1) for b in data.train.boxes]
    features = CachedFeatures(
        head_state=head_state,
        train=_extract(backbone, data.train, False, device, cfg.eval_batch_size),
        train_flipped=_extract(backbone, data.train, True, device, cfg.eval_batch_size) if cfg.hflip else [],
        train_boxes_flipped=flipped_boxes,
        eval=_extract(backbone, data.eval, False, device, cfg.eval_batch_size),
    )
    return backbone, features


__all__ = [
    "SHIPPED_BACKBONES",
    "CachedFeatures",
    "LateralNeck",
    "backbone_key",
    "extract_features",
    "frozen_backbone",
    "pretrain_on_cpu",
]
