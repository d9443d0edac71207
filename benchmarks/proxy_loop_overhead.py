"""Our training loop against a bare loop over the same model and batches.

`python -m benchmarks.proxy_loop_overhead [preset] [epochs]`. Ours: `train_and_evaluate`
timed between the ends of its first and last epochs (on_epoch), so data loading, model
building and evaluation are excluded. Bare: the same detector (same seed), the same cached
batches, SGD step only (no schedule, clipping, finiteness check, progress bookkeeping).
"""

from __future__ import annotations

import json
import sys
import time

import torch

import space
from proxy_task import preset, train_and_evaluate
from proxy_task.data import load_proxy_data
from proxy_task.features import cached_features
from proxy_task.trainer import _feature_batches, build_trial_model


def main() -> None:
    cfg = preset(sys.argv[1] if len(sys.argv) > 1 else "synthetic")
    cfg = cfg.replace(epochs=float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
    torch.set_num_threads(1)
    dev = torch.device("cpu")
    g = space.load_builtin("nasfpn_paper")
    data = load_proxy_data(cfg)
    backbone, feats = cached_features(cfg, data, dev)
    ends: dict[int, float] = {}
    train_and_evaluate(g, cfg, 0, "cpu", on_epoch=lambda e, r: ends.__setitem__(e, time.perf_counter()))
    per_epoch = len(data.train) // cfg.batch_size
    ours = (ends[max(ends)] - ends[1]) / ((max(ends) - 1) * per_epoch)

    model = build_trial_model(g, cfg, data.num_classes, backbone, feats, 0)  # the very model a trial trains
    opt = torch.optim.SGD(model.parameters(), lr=cfg.scaled_lr, momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    batches = list(_feature_batches(feats, data, cfg, gen, dev))
    start = time.perf_counter()
    for _ in range(int(cfg.epochs) - 1):
        for kwargs, targets in batches:
            loss = sum(model(targets=targets, **kwargs).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
    bare = (time.perf_counter() - start) / ((int(cfg.epochs) - 1) * len(batches))
    print(json.dumps({"ours_s_per_step": ours, "bare_s_per_step": bare, "overhead": ours / bare - 1}, indent=1))


if __name__ == "__main__":
    main()
