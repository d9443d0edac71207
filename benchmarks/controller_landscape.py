"""Search strategies on synthetic reward landscapes over the real NAS-FPN space.

    python -m benchmarks.controller_landscape [--quick]

Landscapes are cheap deterministic functions of the architecture (sorted input pairs, so
(i, j) and (j, i) score the same), standardised to mean 0, std 1 over random
architectures. Observed reward = value + Gaussian noise with std = (q90 - q50) / 3 of
random architectures' values: a third of the gap between a good and a mediocre
architecture, like proxy-task seed noise.

* structured: per-decision effects (each input, level, op of each cell), pairwise effects
  (input pair, level x op within a cell) and a resampling-distance penalty that couples
  a cell's level to the levels of the cells it reads (so to earlier cells' choices).
* deceptive: concatenated trap functions, one per cell, around a hidden target
  architecture: per cell, m = matches among (input pair, level, op); trap = 3 if m == 3
  else 2 - m, so every partial match is worse than none.

Workers are simulated asynchronously: `--workers` samples are in flight and a random
one finishes next (out-of-order tells, rewards from older policy versions). Reported per
strategy over seeds: best-so-far noiseless value, mean value of the first and last 10%
of samples, samples needed to reach random search's mean best-of-N, unique architectures
(canonical hash) against steps, and the controller's own cost on one CPU thread.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import controller
from results.plots import save_figure
from space import Genotype, SearchSpace

STRATEGIES = ("random", "evolution", "ppo", "reinforce")
FIGURE = Path("docs/controller_landscape.png")


class Landscape:
    """A noiseless value per architecture, standardised over random architectures."""

    name = "landscape"

    def __init__(self, space: SearchSpace, seed: int = 0, calibration: int = 5000) -> None:
        self.space = space
        self._build(np.random.default_rng(seed))
        self._shift, self._scale = 0.0, 1.0
        rng = random.Random(seed + 1)
        raw = np.array([self.value(space.sample(rng)) for _ in range(calibration)])
        self._shift, self._scale = float(raw.mean()), float(raw.std())
        q50, q90 = np.quantile((raw - self._shift) / self._scale, [0.5, 0.9])
        self.noise_std = float(q90 - q50) / 3.0

    def value(self, genotype: Genotype) -> float:
        """Noiseless standardised value."""
        return (self._raw(genotype.canonical()) - self._shift) / self._scale

    def _build(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _raw(self, genotype: Genotype) -> float:
        raise NotImplementedError


class Structured(Landscape):
    """Additive per-decision effects, pairwise effects, resampling-distance coupling."""

    name = "structured"

    def _build(self, rng: np.random.Generator) -> None:
        n_cells, pool, n_levels = self.space.num_cells, self.space.max_pool_size, self.space.num_levels
        self.inputs = rng.normal(0, 1.0, (n_cells, pool))  # per-decision: each input
        self.levels = rng.normal(0, 1.0, (n_cells, n_levels))  # per-decision: level
        self.ops = rng.normal(0, 0.5, (n_cells, len(self.space.ops)))  # per-decision: op
        self.pairs = rng.normal(0, 0.7, (n_cells, pool, pool))  # pairwise: input pair
        self.level_op = rng.normal(0, 0.5, (n_cells, n_levels, len(self.space.ops)))  # pairwise: level x op
        self.distance_weight = 0.3

    def _raw(self, genotype: Genotype) -> float:
        pool_levels = genotype.pool_levels()
        total = 0.0
        for k, c in enumerate(genotype.cells):
            a, b = c.inputs
            lv, op = self.space.levels.index(c.level), self.space.ops.index(c.op)
            total += self.inputs[k, a] + self.inputs[k, b] + self.levels[k, lv] + self.ops[k, op]
            total += self.pairs[k, a, b] + self.level_op[k, lv, op]
            total -= self.distance_weight * (abs(pool_levels[a] - c.level) + abs(pool_levels[b] - c.level))
        return total


class Deceptive(Landscape):
    """Concatenated traps around a hidden target: partial matches score below none."""

    name = "deceptive"

    def _build(self, rng: np.random.Generator) -> None:
        self.target = self.space.sample(random.Random(int(rng.integers(2**31)))).canonical()

    def _raw(self, genotype: Genotype) -> float:
        total = 0.0
        for c, t in zip(genotype.cells, self.target.cells):
            m = int(c.inputs == t.inputs) + int(c.level == t.level) + int(c.op == t.op)
            total += 3.0 if m == 3 else 2.0 - m
        return total


@dataclass
class Trace:
    """One search: noiseless value and unique count per ask, controller timings."""

    values: np.ndarray
    unique: np.ndarray
    ask_seconds: list[float] = field(default_factory=list)
    update_seconds: list[float] = field(default_factory=list)


def run_search(name: str, landscape: Landscape, seed: int, num_samples: int, workers: int) -> Trace:
    """Simulate `workers` asynchronous workers on `landscape` for `num_samples` asks."""
    strategy = controller.build(name, landscape.space, seed=seed)
    noise = np.random.default_rng([seed, len(name), sum(map(ord, name + landscape.name))])
    values = np.empty(num_samples)
    seen: set[str] = set()
    unique = np.empty(num_samples, dtype=int)
    trace = Trace(values, unique)
    in_flight: list[controller.Sample] = []
    while True:
        if strategy.stats()["num_asked"] < num_samples and len(in_flight) < workers:
            start = time.perf_counter()
            sample = strategy.ask()
            trace.ask_seconds.append(time.perf_counter() - start)
            values[sample.id] = landscape.value(sample.genotype)
            seen.add(sample.genotype.hash())
            unique[sample.id] = len(seen)
            in_flight.append(sample)
            continue
        if not in_flight:
            break
        sample = in_flight.pop(int(noise.integers(len(in_flight))))
        reward = values[sample.id] + noise.normal(0.0, landscape.noise_std)
        version = getattr(strategy, "policy_version", None)
        start = time.perf_counter()
        strategy.tell(sample, reward)
        if getattr(strategy, "policy_version", None) != version:
            trace.update_seconds.append(time.perf_counter() - start)
    return trace


def summarise(traces: dict[str, list[Trace]], num_samples: int) -> dict[str, dict[str, object]]:
    """Per strategy: curves and the table's numbers (random search's best is the bar)."""
    tenth = max(1, num_samples // 10)
    bar = float(np.mean([t.values.max() for t in traces["random"]])) if "random" in traces else None
    out: dict[str, dict[str, object]] = {}
    for name, runs in traces.items():
        best = np.stack([np.maximum.accumulate(t.values) for t in runs])  # (seeds, N)
        reach = [int(np.argmax(b >= bar)) + 1 if bar is not None and b[-1] >= bar else None for b in best]
        reached = [r for r in reach if r is not None]
        asks = [s for t in runs for s in t.ask_seconds]
        updates = [s for t in runs for s in t.update_seconds]
        out[name] = {
            "best_curve": best.mean(0),
            "mean_curve": np.stack([t.values for t in runs]).mean(0),
            "unique_curve": np.stack([t.unique for t in runs]).mean(0),
            "best": (float(best[:, -1].mean()), float(best[:, -1].std())),
            "first": float(np.mean([t.values[:tenth].mean() for t in runs])),
            "last": float(np.mean([t.values[-tenth:].mean() for t in runs])),
            "reach": (float(np.median(reach_or(reach, num_samples))), len(reached), len(runs)),
            "unique": float(np.mean([t.unique[-1] for t in runs])),
            "bar": bar,
            "ask_ms": 1e3 * float(np.median(asks)),
            "update_ms": 1e3 * float(np.median(updates)) if updates else None,
        }
    return out


def reach_or(reach: list[int | None], num_samples: int) -> list[float]:
    """Samples to reach the bar; runs that never reach it count as infinity."""
    return [float("inf") if r is None else float(r) for r in reach]


def print_table(landscape: str, summary: dict[str, dict[str, object]], num_samples: int) -> None:
    """One row per strategy."""
    bar = next(iter(summary.values()))["bar"]
    bar_text = "n/a" if bar is None else f"{bar:.2f}"
    print(f"\n{landscape}: bar = random search's best-of-{num_samples}, mean over seeds = {bar_text}")
    head = f"{'strategy':<10} {'best':>13} {'first10%':>9} {'last10%':>8} {'to bar (median)':>16} {'unique':>7} {'ask ms':>7} {'update ms':>10}"
    print(head)
    print("-" * len(head))
    for name, s in summary.items():
        best_mean, best_std = s["best"]
        median, reached, runs = s["reach"]
        to_bar = f"{median:.0f} ({reached}/{runs})" if np.isfinite(median) else f">{num_samples} ({reached}/{runs})"
        update = f"{s['update_ms']:.1f}" if s["update_ms"] is not None else "-"
        print(
            f"{name:<10} {best_mean:>7.2f}+-{best_std:<4.2f} {s['first']:>9.2f} {s['last']:>8.2f}"
            f" {to_bar:>16} {s['unique']:>7.0f} {s['ask_ms']:>7.2f} {update:>10}"
        )


def check_targets(summaries: dict[str, dict[str, dict[str, object]]], num_samples: int) -> None:
    """The issue's targets: PPO and evolution reach the bar in N/4 on the structured landscape,
    ask <= 5 ms, PPO update <= 200 ms."""
    lines = []
    structured = summaries.get("structured", {})
    for name in ("ppo", "evolution"):
        if name in structured and "random" in structured:
            median = structured[name]["reach"][0]
            lines.append((f"structured: {name} reaches the bar in <= {num_samples // 4}", median <= num_samples / 4))
    for landscape, summary in summaries.items():
        for name, s in summary.items():
            if name in ("ppo", "reinforce"):
                lines.append((f"{landscape}: {name} median ask <= 5 ms", s["ask_ms"] <= 5.0))
            if name == "ppo" and s["update_ms"] is not None:
                lines.append((f"{landscape}: ppo median update <= 200 ms", s["update_ms"] <= 200.0))
    print(f"\ntargets (set for 2,000 samples; this run: {num_samples}):")
    for text, ok in lines:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")


def plot(summaries: dict[str, dict[str, dict[str, object]]], path: Path) -> None:
    """Best-so-far, running mean value and unique architectures per landscape."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(summaries), 3, figsize=(15, 4.2 * len(summaries)), squeeze=False)
    for row, (landscape, summary) in enumerate(summaries.items()):
        for name, s in summary.items():
            steps = np.arange(1, len(s["best_curve"]) + 1)
            window = max(1, len(steps) // 20)
            running = np.convolve(s["mean_curve"], np.ones(window) / window, mode="valid")
            axes[row, 0].plot(steps, s["best_curve"], label=name)
            axes[row, 1].plot(steps[window - 1 :], running, label=name)
            axes[row, 2].plot(steps, s["unique_curve"], label=name)
        titles = ("best-so-far value", "value, running mean", "unique architectures (canonical hash)")
        for ax, title in zip(axes[row], titles):
            ax.set_title(f"{landscape}: {title}")
            ax.set_xlabel("controller steps (samples)")
            ax.grid(alpha=0.3)
        axes[row, 0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)  # atomic, a unique temporary name
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 samples, 2 seeds")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=10, help="samples in flight (asynchronous workers)")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument(
        "--landscapes", nargs="+", default=["structured", "deceptive"], choices=["structured", "deceptive"]
    )
    parser.add_argument("--figure", type=Path, default=FIGURE, help="PNG path; 'none' to skip")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.seeds = 500, 2
    torch.set_num_threads(1)
    space = SearchSpace()
    kinds = {"structured": Structured, "deceptive": Deceptive}
    summaries = {}
    for landscape_name in args.landscapes:
        landscape = kinds[landscape_name](space)
        traces: dict[str, list[Trace]] = {}
        for name in args.strategies:
            start = time.perf_counter()
            traces[name] = [run_search(name, landscape, seed, args.samples, args.workers) for seed in range(args.seeds)]
            print(f"  {landscape_name}/{name}: {time.perf_counter() - start:.0f} s", flush=True)
        summaries[landscape_name] = summarise(traces, args.samples)
        print(f"(noise std {landscape.noise_std:.3f}, {args.workers} workers in flight)")
        print_table(landscape_name, summaries[landscape_name], args.samples)
    check_targets(summaries, args.samples)
    if str(args.figure) != "none":
        plot(summaries, args.figure)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
