"""Strategies side by side at equal budget, from trial records alone (`python -m results compare`).

Budget is counted in trained architectures (every status but 'cached'), in step order: a
cache hit costs no training, so it is listed apart, with the trainings it saved.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from results.record import TrialStatus, in_step_order
from results.run import Run


@dataclass(frozen=True)
class RunSummary:
    label: str
    name: str
    trained: int  # trainings run (ok, failed, nonfinite, timeout)
    failed: int  # trainings without a reward
    cache_hits: int  # samples answered from the reward cache: trainings saved
    unique: int  # distinct architectures sampled (canonical hash)
    best: float | None  # best reward of a training
    best_at_trial: int | None  # 1-based index among trainings where `best` was first reached
    best_within: dict[int, float | None]  # budget -> best reward of the first `budget` trainings
    mean_last: float | None  # mean reward of the last `last` rewarded samples (what the policy now samples)
    mean_first: float | None  # the same over the first `last`
    training_hours: float  # sum of trial durations
    median_s: float | None  # median seconds of one training (wall, on the trial's own cores)


def summarize_run(run: Run, budgets: Sequence[int] = (20, 40, 80), last: int = 20) -> RunSummary:
    """The comparison figures of one run (see RunSummary)."""
    ordered = in_step_order(run.records)
    trainings = [r for r in ordered if not r.cache_hit]
    rewarded = [r.reward for r in ordered if r.rewarded]
    best, best_at, running = None, None, None
    curve: list[float | None] = []
    for i, r in enumerate(trainings):
        if r.status == TrialStatus.OK and r.reward is not None and (running is None or r.reward > running):
            running = r.reward
            best, best_at = r.reward, i + 1
        curve.append(running)
    return RunSummary(
        label=run.label,
        name=run.name,
        trained=len(trainings),
        failed=sum(r.status != TrialStatus.OK for r in trainings),
        cache_hits=len(ordered) - len(trainings),
        unique=len({r.genotype_hash for r in ordered}),
        best=best,
        best_at_trial=best_at,
        best_within={b: curve[b - 1] if len(curve) >= b else None for b in budgets},
        mean_last=statistics.fmean(rewarded[-last:]) if rewarded else None,
        mean_first=statistics.fmean(rewarded[:last]) if rewarded else None,
        training_hours=sum(r.duration_s for r in trainings) / 3600,
        median_s=statistics.median(r.duration_s for r in trainings) if trainings else None,
    )


def _f(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def compare_table(runs: Sequence[Run], budgets: Sequence[int] = (20, 40, 80), last: int = 20) -> str:
    """Markdown table, one row per run."""
    rows = [summarize_run(r, budgets, last) for r in runs]
    head = ["run", "strategy", "trained", "failed", "cache hits", "unique"]
    head += [f"best @{b}" for b in budgets] + [
        "best",
        "found at",
        f"mean first {last}",
        f"mean last {last}",
        "train h",
        "median s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in rows:
        cells = [s.name, s.label, str(s.trained), str(s.failed), str(s.cache_hits), str(s.unique)]
        cells += [_f(s.best_within[b]) for b in budgets]
        cells += [_f(s.best), "-" if s.best_at_trial is None else f"#{s.best_at_trial}"]
        cells += [_f(s.mean_first), _f(s.mean_last), f"{s.training_hours:.2f}", _f(s.median_s, 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_se(values: Sequence[float | None], digits: int = 4) -> str:
    """'mean ± s.e. (n)' over the values that exist; s.e. needs two."""
    xs = [v for v in values if v is not None]
    if not xs:
        return "-"
    se = statistics.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else None
    mean = f"{statistics.fmean(xs):.{digits}f}"
    return f"{mean} (1)" if se is None else f"{mean} ± {se:.{digits}f} ({len(xs)})"


def strategy_table(runs: Sequence[Run], budgets: Sequence[int] = (20, 40, 80), last: int = 20) -> str:
    """Markdown table, one row per strategy: mean ± standard error over its runs (e.g. seeds)
    of each run's figures, with the number of runs that reached each budget in brackets;
    the last column is the mean of the runs' median training times (wall seconds).
    The mean first/last `last` rewards are taken over the runs that reached the largest budget,
    so a run still in progress does not pull the late mean towards its early samples."""
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(run.strategy, []).append(summarize_run(run, budgets, last))
    head = ["strategy", "runs"] + [f"best @{b}" for b in budgets] + [f"mean first {last}", f"mean last {last}"]
    head.append("median s per training")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for strategy, rows in groups.items():
        complete = [s for s in rows if s.trained >= max(budgets)]
        cells = [strategy, str(len(rows))]
        cells += [_mean_se([s.best_within[b] for s in rows]) for b in budgets]
        cells += [_mean_se([s.mean_first for s in complete]), _mean_se([s.mean_last for s in complete])]
        cells.append(_mean_se([s.median_s for s in rows], digits=1))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
