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
overhead per trial = (wall x workers - compute) / trials. For our path the time between
trials is then broken down: once per session (Tune and worker start-up, shutdown) and per
trial in the steady state (ask, actor reset and scheduling, result transfer, record and
tell), the latter being what a long search pays per trial.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from results.record import TrialStatus

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _burn(seconds: float) -> float:
    start = time.perf_counter()
    x = 0
    while time.perf_counter() - start < seconds:
        x += 1
    return time.perf_counter() - start


def fixed_cost_trial(config: dict[str, Any], *, task: dict[str, Any], **_: Any) -> None:
    """A search trainable of known cost: burns `task['seconds']`, reports a final result
    with its start and end (wall clock, for the breakdown)."""
    from ray import tune

    t0 = time.time()
    spent = _burn(task["seconds"])
    report = {"final": True, "status": TrialStatus.OK.value, "ap": (config["step"] % 7) / 10, "duration_s": spent}
    tune.report({**report, "t0": t0, "t1": time.time()})


def _timed_searcher(base: type) -> type:
    """`base` (ControllerSearcher) recording when suggest and on_trial_complete run."""

    class Timed(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.times: dict[str, dict[str, float]] = {}

        def suggest(self, trial_id: str) -> Any:
            t = time.time()
            out = super().suggest(trial_id)
            self.times.setdefault(trial_id, {}).update(suggest_in=t, suggest_out=time.time())
            return out

        def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False) -> None:
            t = time.time()
            super().on_trial_complete(trial_id, result, error)
            r = result or {}
            self.times.setdefault(trial_id, {}).update(
                complete_in=t, complete_out=time.time(), start=r.get("t0", t), end=r.get("t1", t)
            )

    return Timed


def breakdown(times: dict[str, dict[str, float]], tune_start: float, tune_end: float, workers: int) -> dict[str, float]:
    """Where the wall time between trials goes: once per session (Tune and worker start-up
    until the first trial runs, Tune's shutdown after the last) and per trial in the steady
    state (median over the trials after the first `workers`)."""
    done = sorted((t for t in times.values() if "start" in t and "suggest_out" in t), key=lambda t: t["suggest_in"])
    steady = done[workers:] or done
    parts = {
        "suggest (ask + cache lookup + state save)": [t["suggest_out"] - t["suggest_in"] for t in steady],
        "suggest -> trial starts (actor reset, scheduling)": [t["start"] - t["suggest_out"] for t in steady],
        "trial ends -> on_trial_complete (result to driver)": [t["complete_in"] - t["end"] for t in steady],
        "on_trial_complete (record, tell, update, state save)": [t["complete_out"] - t["complete_in"] for t in steady],
    }
    out = {k: statistics.median(v) for k, v in parts.items()}
    out["steady-state total per trial"] = sum(out.values())
    out["once: Tune start -> first trial runs"] = min(t["start"] for t in done) - tune_start
    out["once: last trial ends -> Tune returns"] = tune_end - max(t["end"] for t in done)
    return out


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


def bench_search(seconds: float, trials: int, workers: int, reuse: bool) -> tuple[float, float, dict[str, float]]:
    import controller
    from results import TrialStore
    from search.config import RayConfig, ResourcesConfig
    from search.searcher import ControllerSearcher
    from search.tune_runner import run_tune
    from space import SearchSpace

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        store = TrialStore(run_dir / "trials.sqlite")
        searcher = _timed_searcher(ControllerSearcher)(
            controller.build("ppo", SearchSpace(), seed=0), "ppo", store, run_dir / "state.pt", reevaluate_cached=True
        )
        tune_start = time.time()
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
        parts = breakdown(searcher.times, tune_start, time.time(), workers)
        compute = sum(r.duration_s for r in store.records())
        assert store.count() == trials, f"{store.count()} of {trials} trials recorded"
        store.close()
    return wall, compute, parts


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
        rows.append(("tune, no actor reuse", *bench_search(seconds, args.trials, args.workers, reuse=False)[:2]))
        wall, compute, parts = bench_search(seconds, args.trials, args.workers, reuse=True)
        rows.append(("search (ours)", wall, compute))
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
    print("\nsearch (ours), where the time between trials goes (seconds):")
    for name, value in parts.items():
        print(f"  {name:<55} {value:7.3f}")
    steady, once = parts["steady-state total per trial"], sum(v for k, v in parts.items() if k.startswith("once"))
    print(f"  per trial over a {args.trials}-trial session: {steady + once * args.workers / args.trials:.2f};"
          f" over 200 trials: {steady + once * args.workers / 200:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
