"""Cost of one proxy trial on one CPU thread: `python -m benchmarks.proxy_trial_cost [preset] [genotype]`.

Reports the one-off cost per node (dataset generation, backbone pre-training, feature
extraction; only when the cache is cold) and two trials in one process: the first pays the
per-process feature cache, the second is what a reused search worker pays per trial.
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


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "synthetic"
    genotype = space.load_builtin(sys.argv[2] if len(sys.argv) > 2 else "nasfpn_paper")
    cfg = preset(name)
    torch.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.process_time()
    data = load_proxy_data(cfg)
    if cfg.freeze_backbone:
        cached_features(cfg, data, torch.device("cpu"))
    setup = {"setup_wall_s": time.perf_counter() - wall, "setup_cpu_s": time.process_time() - cpu}
    trials = [train_and_evaluate(genotype, cfg, seed, "cpu") for seed in (0, 1)]
    keys = ("ap", "train_time_s", "eval_time_s", "total_time_s", "total_cpu_s", "steps")
    report = {"preset": name, "threads": 1, **setup, "trials": [{k: t[k] for k in keys} for t in trials]}
    print(json.dumps(report, indent=1))
    print(f"per trial (warm worker): {trials[1]['total_cpu_s']:.1f} CPU-s, {trials[1]['total_time_s']:.1f} s wall")


if __name__ == "__main__":
    main()
