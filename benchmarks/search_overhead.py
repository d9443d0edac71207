"""Worker utilization and per-trial overhead of the search, against plain Ray and plain Tune.

    python -m benchmarks.search_overhead            # 20 s trials, 2 workers, 8 trials each
    python -m benchmarks.search_overhead --quick    # 4 s trials

Every trial burns the CPU for a fixed time (a trial of known cost). Three drivers run the
same number of trials with the same concurrency, in one run:
  * ray.wait   : remote tasks and a ray.wait loop (the floor);
  * tune       : Ray Tune without actor reuse, our searcher;
  * search     : our search path (ControllerSearcher: PPO ask/tell, record, checkpoints,
                 Tune with actor reuse), as `python -m search.run` runs it.
utilization = sum of in-trial compute time / (wall time x workers);
overhead per trial = (wall x workers - compute) / trials. Targets (issue): utilization
>= 0.95 for 20 s trials on 2 workers, overhead <= 0.25 s per trial.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _burn(seconds: float) -> float:
    start = time.perf_counter()
    x = 0
    while time.perf_counter() - start < seconds:
        x += 1
    return time.perf_counter() - start


def fixed_cost_trial(config: dict[str, Any], *, task: dict[str, Any], **_: Any) -> None:
    """A search trainable of known cost: burns `task['seconds']`, reports a final result."""
    from ray import tune

    spent = _burn(task["seconds"])
    tune.report({"final": True, "status": "ok", "ap": (config["step"] % 7) / 10, "duration_s": spent})


def bench_ray_wait(seconds: float, trials: int, workers: int) -> tuple[float, float]:
    import ray

    burn = ray.remote(num_cpus=1)(_burn)
    start = time.perf_counter()
    pending, compute, submitted = [], 0.0, 0
    while submitted < trials or pending:
        while submitted < trials and len(pending) < workers:
            pending.append(burn.remote(seconds))
            submitted += 1
        done, pending = ray.wait(pending, num_returns=1)
        compute += ray.get(done[0])
    return time.perf_counter() - start, compute


def bench_search(seconds: float, trials: int, workers: int, reuse: bool) -> tuple[float, float]:
    import controller
    from results import TrialStore
    from search.config import RayConfig, ResourcesConfig
    from search.searcher import ControllerSearcher
    from search.tune_runner import run_tune
    from space import SearchSpace

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        store = TrialStore(run_dir / "trials.sqlite")
        searcher = ControllerSearcher(
            controller.build("ppo", SearchSpace(), seed=0), "ppo", store, run_dir / "state.pt", reevaluate_cached=True
        )
        start = time.perf_counter()
        run_tune(
            searcher,
            {"task": {"seconds": seconds}},
            run_dir=run_dir,
            trials=trials,
            concurrency=workers,
            resources=ResourcesConfig(cpus=1, gpus=0),
            ray_config=RayConfig(num_cpus=workers, num_gpus=0),
            max_retries=0,
            time_budget_s=None,
            trainable=fixed_cost_trial,
            reuse_actors=reuse,
        )
        wall = time.perf_counter() - start
        compute = sum(r.duration_s for r in store.records())
        assert store.count() == trials, f"{store.count()} of {trials} trials recorded"
        store.close()
    return wall, compute


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="4 s trials instead of 20 s")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    seconds = 4.0 if args.quick else 20.0
    import ray

    rows = []
    ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR")
    try:
        wall, compute = bench_ray_wait(seconds, args.trials, args.workers)
        rows.append(("ray.wait loop", wall, compute))
        # Tune runs inside the same local cluster (run_tune does not start or stop it).
        rows.append(("tune, no actor reuse", *bench_search(seconds, args.trials, args.workers, reuse=False)))
        rows.append(("search (ours)", *bench_search(seconds, args.trials, args.workers, reuse=True)))
    finally:
        ray.shutdown()
    print(f"\n{args.trials} trials of {seconds:g} s on {args.workers} workers")
    print(f"{'driver':<22} {'wall s':>8} {'utilization':>12} {'overhead s/trial':>17}")
    for name, wall, compute in rows:
        util = compute / (wall * args.workers)
        overhead = (wall * args.workers - compute) / args.trials
        print(f"{name:<22} {wall:8.1f} {util:12.3f} {overhead:17.2f}")
    base = rows[0][2] / (rows[0][1] * args.workers)
    ours = rows[2][2] / (rows[2][1] * args.workers)
    print(f"utilization ratio ours / ray.wait: {ours / base:.3f}")


if __name__ == "__main__":
    main()
