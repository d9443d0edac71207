"""Search progress figures drawn from trial records alone (matplotlib, Agg, no pyplot state).

`plot_progress`: one figure, three panels, one colour per run (e.g. PPO vs random vs
evolution): reward per step with its moving average; best reward so far; unique
architectures vs steps (the paper's Figure 5, right).
`plot_strategies`: runs grouped by strategy (e.g. three seeds each), against trainings:
the mean over seeds of the moving-average reward and of the best reward so far, with the
seeds' min-max band. Rewards come from 'ok' and 'cached' records
  (a cache hit is a reward the controller received); failed trials have none.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from results.record import TrialRecord, in_step_order
from results.run import Run
from space.atomic import atomic_path


def reward_series(records: Sequence[TrialRecord]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, rewards) of the records with a reward, in step order (ties: insertion order)."""
    rewarded = [r for r in in_step_order(records) if r.reward is not None]
    return np.array([r.step for r in rewarded], dtype=float), np.array([r.reward for r in rewarded], dtype=float)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last `window` values (fewer at the start). Shape (N,) -> (N,)."""
    if window < 1:
        raise ValueError(f"window={window}: expected >= 1")
    csum = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    n = np.arange(1, len(values) + 1)
    start = np.maximum(n - window, 0)
    return (csum[n] - csum[start]) / (n - start)


def unique_series(records: Sequence[TrialRecord]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, number of distinct hashes sampled up to that step), all statuses, step order."""
    ordered = in_step_order(records)
    seen: set[str] = set()
    counts = []
    for r in ordered:
        seen.add(r.genotype_hash)
        counts.append(len(seen))
    return np.array([r.step for r in ordered], dtype=float), np.array(counts, dtype=float)


def _styles(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """(colour, line style) per run: one colour per strategy, a new line style for each
    further run of the same strategy (e.g. seeds), so strategies read apart at a glance."""
    colours: dict[str, str] = {}
    seen: dict[str, int] = {}
    out = []
    for run in runs:
        strategy = run.strategy
        colour = colours.setdefault(strategy, f"C{len(colours) % 10}")
        out.append((colour, ("-", "--", ":", "-.")[seen.get(strategy, 0) % 4]))
        seen[strategy] = seen.get(strategy, 0) + 1
    return out


def plot_progress(runs: Sequence[Run], path: str | os.PathLike[str], window: int = 50) -> Path:
    """Draw the three progress panels for `runs` into `path` (format from its suffix).

    The file is written to a temporary name and moved into place, never half-written.

    Raises:
        ValueError: no runs, or window < 1.
    """
    if not runs:
        raise ValueError("plot_progress needs at least one run")
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_reward, ax_best, ax_unique = fig.subplots(1, 3)
    for run, (color, style) in zip(runs, _styles(runs)):
        steps, rewards = reward_series(run.records)
        if len(rewards):
            ax_reward.scatter(steps, rewards, s=6, alpha=0.25, color=color, linewidths=0)
            ax_reward.plot(steps, moving_average(rewards, window), color=color, ls=style, label=run.label)
            best = np.maximum.accumulate(rewards)
            ax_best.plot(steps, best, color=color, ls=style, label=run.label, drawstyle="steps-post")
        steps, unique = unique_series(run.records)
        ax_unique.plot(steps, unique, color=color, ls=style, label=run.label)
    ax_reward.set(title=f"Reward per step (line: moving average of {window})", xlabel="step", ylabel="reward")
    ax_best.set(title="Best reward so far", xlabel="step", ylabel="reward")
    ax_unique.set(title="Unique architectures sampled", xlabel="step", ylabel="unique architectures")
    for ax in (ax_reward, ax_best, ax_unique):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return save_figure(fig, path)


def training_rewards(records: Sequence[TrialRecord]) -> np.ndarray:
    """Rewards of the trainings (cache hits excluded; failures kept as NaN), in step order."""
    return np.array(
        [np.nan if r.reward is None else r.reward for r in in_step_order(records) if not r.cache_hit], dtype=float
    )


def plot_strategies(runs: Sequence[Run], path: str | os.PathLike[str], window: int = 50) -> Path:
    """Mean over the runs of each strategy (band: min to max over them) against trainings,
    up to the shortest run of the strategy. Two panels: moving-average reward, best so far.

    Raises:
        ValueError: no runs, or window < 1.
    """
    if not runs:
        raise ValueError("plot_strategies needs at least one run")
    groups: dict[str, list[np.ndarray]] = {}
    for run in runs:
        groups.setdefault(run.strategy, []).append(training_rewards(run.records))
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_mean, ax_best = fig.subplots(1, 2)
    for k, (strategy, series) in enumerate(groups.items()):
        n = min(len(x) for x in series)
        if n == 0:
            continue
        x = np.arange(1, n + 1)
        rewards = np.stack([np.nan_to_num(s[:n], nan=0.0) for s in series])  # (runs, n); a failure counts 0 here
        curves = {
            ax_mean: np.stack([moving_average(r, window) for r in rewards]),
            ax_best: np.maximum.accumulate(rewards, axis=1),
        }
        label = f"{strategy} ({len(series)} run{'s' if len(series) > 1 else ''})"
        for ax, c in curves.items():
            ax.plot(x, c.mean(0), color=f"C{k % 10}", label=label)
            ax.fill_between(x, c.min(0), c.max(0), color=f"C{k % 10}", alpha=0.2, linewidth=0)
    ax_mean.set(title=f"Reward, moving average of {window} (mean over runs, band min-max)", xlabel="trainings")
    ax_best.set(title="Best reward so far (mean over runs, band min-max)", xlabel="trainings")
    for ax in (ax_mean, ax_best):
        ax.set_ylabel("reward")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return save_figure(fig, path)


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write `fig` (format from the suffix) to a temporary name, then move it into place."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110)
    return path
