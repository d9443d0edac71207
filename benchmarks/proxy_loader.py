"""Loader images/s against train-step images/s: `python -m benchmarks.proxy_loader [preset]`.

Both input paths of the trainer on one thread: cached-feature batches (frozen backbone, the
CPU proxy) and augmented image batches from the tensor cache through a DataLoader
(end-to-end training), each against the training step it feeds.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from torch.utils.data import DataLoader

import space
from proxy_task import ProxyTask, preset
from proxy_task.augment import make_augmentation
from proxy_task.backbones import build_backbone
from proxy_task.detector import build_detector
from proxy_task.loaders import AugmentedImages, collate
from proxy_task.trainer import feature_batches, image_batches


def _rate(batches, n_batches: int, batch_size: int, step=None) -> float:
    start, done = time.perf_counter(), 0
    for kwargs, targets in batches:
        if step is not None:
            step(kwargs, targets)
        done += 1
        if done == n_batches:
            break
    return done * batch_size / (time.perf_counter() - start)


def main() -> None:
    cfg = preset(sys.argv[1] if len(sys.argv) > 1 else "synthetic")
    torch.set_num_threads(1)
    dev = torch.device("cpu")
    task = ProxyTask(cfg, dev)
    data, (backbone, feats) = task.data, task.frozen
    g = space.load_builtin("nasfpn_paper")
    kw = dict(
        channels=cfg.channels,
        repeats=cfg.repeats,
        head_convs=cfg.head_convs,
        anchor_scale=cfg.anchor_scale,
        init_seed=0,
    )
    model = build_detector(g, None, backbone.out_channels, data.num_classes, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(kwargs, targets):
        loss = sum(model(targets=targets, **kwargs).values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    gen = torch.Generator().manual_seed(0)
    n = 20
    feat_load = _rate(feature_batches(feats, data, cfg, gen, dev), n, cfg.batch_size)
    feat_train = _rate(feature_batches(feats, data, cfg, gen, dev), n, cfg.batch_size, step)
    e2e = build_detector(
        g, build_backbone(cfg.backbone, cfg.backbone_width), backbone.out_channels, data.num_classes, **kw
    )
    opt = torch.optim.SGD(e2e.parameters(), lr=0.01, momentum=0.9)
    model = e2e
    ds = AugmentedImages(data.train, make_augmentation(cfg.image_size, cfg.scale_jitter, cfg.hflip))
    loader = DataLoader(ds, cfg.batch_size, shuffle=True, collate_fn=collate, drop_last=True, num_workers=0)
    img_load = _rate(image_batches(loader, dev, False), n, cfg.batch_size)
    img_train = _rate(image_batches(loader, dev, False), n, cfg.batch_size, step)
    report = {
        "cached_features": {"loader_img_s": feat_load, "train_img_s": feat_train, "ratio": feat_load / feat_train},
        "images_augmented_0_workers": {
            "loader_img_s": img_load,
            "train_img_s": img_train,
            "ratio": img_load / img_train,
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
