"""Our training loop against a bare loop over the same model and batches, in one process.

`python -m benchmarks.proxy_loop_overhead [preset] [epochs] [reps]` (synthetic, 3, 3).
Ours: `ProxyTask.train` timed between the ends of its first and last epochs (on_epoch),
so data loading, model building and evaluation are left out. Bare: the very model a trial
trains (same seed, same memory format), the same cached batches, forward, backward and an
SGD step only (no schedule, clipping, finiteness check or progress bookkeeping). The two
alternate rep by rep after a warm-up trial, so machine load and the process's state (e.g.
warm caches) hit both alike; the medians are compared.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

import space
from proxy_task import ProxyTask, ProxyTaskConfig, preset
from proxy_task.data import ProxyData
from proxy_task.features import CachedFeatures
from proxy_task.trainer import build_trial_model, feature_batches


def ours_per_step(g: space.Genotype, task: ProxyTask, steps_per_epoch: int) -> float:
    """Seconds per step of a trial, between the ends of its first and last epochs."""
    ends: dict[int, float] = {}
    task.train(g, 0, on_epoch=lambda e, r: ends.__setitem__(e, time.perf_counter()))
    return (ends[max(ends)] - ends[1]) / ((max(ends) - 1) * steps_per_epoch)


def bare_per_step(
    g: space.Genotype, cfg: ProxyTaskConfig, data: ProxyData, backbone: torch.nn.Module, feats: CachedFeatures
) -> float:
    """Seconds per step of the minimal loop over the same model and batches (epochs - 1 epochs)."""
    model = build_trial_model(g, cfg, data.num_classes, backbone, feats, 0, torch.device("cpu"))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.scaled_lr, momentum=0.9, weight_decay=1e-4)
    batches = list(feature_batches(feats, data, cfg, torch.Generator().manual_seed(0), torch.device("cpu")))
    epochs = int(cfg.epochs) - 1
    start = time.perf_counter()
    for _ in range(epochs):
        for kwargs, targets in batches:
            loss = sum(model(targets=targets, **kwargs).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return (time.perf_counter() - start) / (epochs * len(batches))


def main() -> None:
    cfg = preset(sys.argv[1] if len(sys.argv) > 1 else "synthetic")
    cfg = cfg.replace(epochs=float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    torch.set_num_threads(1)
    g = space.load_builtin("nasfpn_paper")
    task = ProxyTask(cfg, "cpu")
    data, (backbone, feats) = task.data, task.frozen
    steps_per_epoch = len(data.train) // cfg.batch_size
    task.train(g, 0)  # warm-up: caches, allocator
    ours, bare = [], []
    for rep in range(reps):
        ours.append(ours_per_step(g, task, steps_per_epoch))
        bare.append(bare_per_step(g, cfg, data, backbone, feats))
        print(f"rep {rep}: ours {ours[-1] * 1e3:.2f} ms/step, bare {bare[-1] * 1e3:.2f} ms/step", flush=True)
    o, b = statistics.median(ours), statistics.median(bare)
    print(json.dumps({"ours_s_per_step": o, "bare_s_per_step": b, "overhead": o / b - 1, "reps": reps}, indent=1))


if __name__ == "__main__":
    main()
