"""Search strategies at the budgets one machine can afford, on the records-fitted landscape.

    python -m benchmarks.controller_budget [--seeds 12] [--trainings 200] [--jobs 2] [--quick]
    python -m benchmarks.controller_budget --variants ppo ppo_paper "ppo:elite_steps=0" random evolution

Every strategy runs as the search driver runs it: `--workers` trainings in flight (a random
one finishes next, so tells arrive out of order), and before a training the architecture's
canonical hash is looked up among the finished ones: a hit is told at once with the stored
reward (`cached=True`, no training counted) and the strategy is asked again (at most 500
hits in a row, then the search ends as converged). A sample of an architecture that is in
flight waits for that training and is then told its reward as a cache hit, as in the
driver. Observed reward = landscape value + seed noise.

Judged per strategy, mean over seeds (± standard error): the true value of the
architecture a user would pick (best observed reward) after 100 and 200 trainings, the
true mean value of the last 50 trainings (what the controller samples once it has
learned), unique trainings and cache hits. A variant is `NAME` or `NAME:key=value,...`
with the strategy's keyword options; `ppo_paper` is PPO with NASNet's schedule.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import controller
from benchmarks.records_landscape import RecordsFitted, calibrate, load_records, seed_noise_std
from results.plots import save_figure
from space import SearchSpace

DEFAULT_VARIANTS = ("random", "evolution", "ppo", "reinforce", "ppo_paper")
FIGURE = Path("docs/controller_budget.png")
MAX_CACHE_HITS = 500


@dataclass
class Run:
    """One search: per training, the true value and the observed reward; cache hits."""

    values: np.ndarray  # (N,) true value of the k-th training
    observed: np.ndarray  # (N,)
    cache_hits: int
    unique: int


def parse_variant(text: str) -> tuple[str, str, dict[str, object]]:
    """'ppo:lr=3e-3,batch_size=5' -> (label, strategy name, options)."""
    name, _, rest = text.partition(":")
    options: dict[str, object] = {}
    if name in controller.PRESETS:
        name, options = controller.preset(name)
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key] = _value(value)
    return text, name, options


def _value(text: str) -> object:
    """'None', 'true'/'false', an int, a float, or the text itself."""
    if text in ("None", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_search(
    name: str, options: dict[str, object], landscape: RecordsFitted, seed: int, trainings: int, workers: int
) -> Run:
    """Simulate the driver with `workers` trainings in flight until `trainings` are done."""
    strategy = controller.build(name, landscape.space, seed=seed, **options)
    rng = np.random.default_rng([seed, 7])  # finish order and seed noise
    finished: dict[str, float] = {}  # canonical hash -> observed reward (the record)
    values, observed = [], []
    in_flight: list[tuple[controller.Sample, float]] = []
    waiting: dict[str, list[controller.Sample]] = {}  # hash in flight -> duplicates waiting for it
    started, hits = 0, 0
    while True:
        if started < trainings and len(in_flight) < workers:
            for _ in range(MAX_CACHE_HITS + 1):
                sample = strategy.ask()
                key = sample.genotype.hash()
                if any(key == s.genotype.hash() for s, _ in in_flight):
                    hits += 1
                    waiting.setdefault(key, []).append(sample)
                    continue
                if key not in finished:
                    break
                hits += 1
                strategy.tell(sample, finished[key], cached=True)
            else:
                started = trainings  # converged (only cache hits): let the trainings in flight finish
                continue
            value = landscape.value(sample.genotype)
            in_flight.append((sample, value + rng.normal(0.0, landscape.noise_std)))
            started += 1
            continue
        if not in_flight:
            break
        sample, reward = in_flight.pop(int(rng.integers(len(in_flight))))
        finished.setdefault(sample.genotype.hash(), reward)
        values.append(landscape.value(sample.genotype))
        observed.append(reward)
        strategy.tell(sample, reward)
        for duplicate in waiting.pop(sample.genotype.hash(), []):
            strategy.tell(duplicate, reward, cached=True)
    return Run(np.array(values), np.array(observed), hits, len(finished))


def picked(run: Run, n: int) -> float:
    """True value of the architecture with the best observed reward among the first n."""
    k = int(np.argmax(run.observed[:n]))
    return float(run.values[k])


def summarise(runs: list[Run], budgets: tuple[int, ...], late: int) -> dict[str, tuple[float, float]]:
    """Mean and standard error over seeds of each judged number."""
    rows: dict[str, list[float]] = {f"best@{n}": [picked(r, n) for r in runs] for n in budgets}
    rows[f"last{late}"] = [float(r.values[-late:].mean()) for r in runs]
    rows["first50"] = [float(r.values[:50].mean()) for r in runs]
    rows["unique"] = [float(r.unique) for r in runs]
    rows["cache hits"] = [float(r.cache_hits) for r in runs]
    return {k: (float(np.mean(v)), float(np.std(v) / np.sqrt(len(v)))) for k, v in rows.items()}


def plot(curves: dict[str, list[Run]], path: Path) -> None:
    """Best picked so far and running mean of sampled true values, mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for label, runs in curves.items():
        n = min(len(r.values) for r in runs)
        steps = np.arange(1, n + 1)
        best = np.mean([[picked(r, k) for k in steps] for r in runs], axis=0)
        mean = np.mean([np.convolve(r.values[:n], np.ones(20) / 20, mode="valid") for r in runs], axis=0)
        axes[0].plot(steps, best, label=label)
        axes[1].plot(steps[19:], mean, label=label)
    axes[0].set_title("true value of the best-observed architecture")
    axes[1].set_title("true value of sampled architectures, running mean of 20")
    for ax in axes:
        ax.set_xlabel("trainings")
        ax.set_ylabel("proxy AP (landscape)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)  # atomic: a figure is never half-written
    plt.close(fig)


_LANDSCAPE: RecordsFitted | None = None  # per worker process


def _init_worker(landscape: RecordsFitted) -> None:
    global _LANDSCAPE
    torch.set_num_threads(1)
    _LANDSCAPE = landscape


def _run_job(job: tuple[str, dict[str, object], int, int, int]) -> Run:
    name, options, seed, trainings, workers = job
    assert _LANDSCAPE is not None
    return run_search(name, options, _LANDSCAPE, seed, trainings, workers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--trainings", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="trainings in flight")
    parser.add_argument("--jobs", type=int, default=2, help="searches run in parallel processes")
    parser.add_argument("--quick", action="store_true", help="4 seeds, 100 trainings")
    parser.add_argument("--figure", type=Path, default=FIGURE, help="PNG path; 'none' to skip")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.trainings = 4, 100
    torch.set_num_threads(1)
    space = SearchSpace()
    genotypes, rewards = load_records()
    landscape = RecordsFitted(space, genotypes, rewards, seed_noise_std())
    print("\n".join(calibrate(landscape, genotypes, rewards)), flush=True)
    budgets = tuple(n for n in (50, 100, 200, 400) if n <= args.trainings)
    late = min(50, args.trainings // 2)
    variants = [parse_variant(text) for text in args.variants]
    jobs = [
        (name, options, s, args.trainings, args.workers) for _, name, options in variants for s in range(args.seeds)
    ]
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.jobs > 1:  # each process gets a copy of the fitted landscape
            pool = stack.enter_context(ProcessPoolExecutor(args.jobs, initializer=_init_worker, initargs=(landscape,)))
            mapped = pool.map(_run_job, jobs)
        else:
            _init_worker(landscape)
            mapped = map(_run_job, jobs)
        runs = list(tqdm(mapped, total=len(jobs), desc="searches", dynamic_ncols=True))
    print(f"  {len(jobs)} searches in {time.perf_counter() - start:.0f} s", flush=True)
    curves: dict[str, list[Run]] = {}
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for k, (label, _, _) in enumerate(variants):
        curves[label] = runs[k * args.seeds : (k + 1) * args.seeds]
        table[label] = summarise(curves[label], budgets, late)
    columns = list(next(iter(table.values())))
    print(f"\n{args.seeds} seeds, {args.workers} workers, mean ± standard error over seeds")
    print(f"{'variant':<34}" + "".join(f"{c:>17}" for c in columns))
    for label, row in table.items():
        cells = "".join(
            f"{m:>10.4f}±{s:<6.4f}" if c.startswith(("best", "last", "first")) else f"{m:>10.1f}±{s:<6.1f}"
            for c, (m, s) in zip(columns, (row[c] for c in columns))
        )
        print(f"{label:<34}{cells}")
    if str(args.figure) != "none":
        plot(curves, args.figure)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
