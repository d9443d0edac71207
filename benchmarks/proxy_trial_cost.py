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
from proxy_task import ProxyTask, preset


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "synthetic"
    genotype = space.load_builtin(sys.argv[2] if len(sys.argv) > 2 else "nasfpn_paper")
    cfg = preset(name)
    torch.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.process_time()
    task = ProxyTask(cfg, "cpu")  # as a search worker keeps it: data and features built once
    if cfg.freeze_backbone:
        _ = task.frozen
    else:
        _ = task.data
    setup = {"setup_wall_s": time.perf_counter() - wall, "setup_cpu_s": time.process_time() - cpu}
    trials = [task.train(genotype, seed).as_dict() for seed in (0, 1)]
    keys = ("ap", "train_time_s", "eval_time_s", "total_time_s", "total_cpu_s", "steps")
    report = {"preset": name, "threads": 1, **setup, "trials": [{k: t[k] for k in keys} for t in trials]}
    print(json.dumps(report, indent=1))
    print(f"per trial (warm worker): {trials[1]['total_cpu_s']:.1f} CPU-s, {trials[1]['total_time_s']:.1f} s wall")


if __name__ == "__main__":
    main()
