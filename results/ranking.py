"""Ranking of the architectures of a run, and its table (shared by the CLI and the report).

One row per architecture (canonical hash): its best 'ok' record, best reward first, ties
to the earlier record (the order of `TrialStore.top`). `times_sampled` counts every record
of the hash (cache hits and failures included): how often the controller proposed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from results.errors import NoResultsError
from results.record import TrialRecord, TrialStatus

METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ap", "AP"),
    ("ap50", "AP50"),
    ("ap75", "AP75"),
    ("aps", "APs"),
    ("apm", "APm"),
    ("apl", "APl"),
)
TABLE_HEADER: tuple[str, ...] = (
    ("rank", "reward")
    + tuple(title for _, title in METRIC_COLUMNS)
    + ("params", "mult-adds", "hash", "first step", "times sampled")
)


@dataclass(frozen=True)
class RankedArchitecture:
    """One architecture of a run: its rank (1 = best), best record, and sampling counts."""

    rank: int
    best: TrialRecord
    first_step: int
    times_sampled: int


def rank_architectures(records: Sequence[TrialRecord], k: int | None = None) -> list[RankedArchitecture]:
    """The k best architectures (all if k is None) of records given in insertion order."""
    best: dict[str, tuple[int, TrialRecord]] = {}
    first_step: dict[str, int] = {}
    times: dict[str, int] = {}
    for seq, r in enumerate(records):
        h = r.genotype_hash
        first_step[h] = min(first_step.get(h, r.step), r.step)
        times[h] = times.get(h, 0) + 1
        if r.status == TrialStatus.OK and (h not in best or r.reward > best[h][1].reward):  # type: ignore[operator]
            best[h] = (seq, r)
    order = sorted(best.values(), key=lambda sr: (-sr[1].reward, sr[0]))  # type: ignore[operator]
    order = order if k is None else order[:k]
    return [
        RankedArchitecture(i + 1, r, first_step[r.genotype_hash], times[r.genotype_hash])
        for i, (_, r) in enumerate(order)
    ]


def pick_rank(records: Sequence[TrialRecord], rank: int) -> RankedArchitecture:
    """The architecture at `rank` (1-based).

    Raises:
        NoResultsError: no 'ok' trial, or rank out of range (the message gives the range).
    """
    ranked = rank_architectures(records)
    if not ranked:
        raise NoResultsError(f"no successful ('ok') trial among {len(records)}; nothing is ranked yet")
    if not 1 <= rank <= len(ranked):
        raise NoResultsError(
            f"rank {rank} is out of range: {len(ranked)} architectures are ranked; use --rank 1..{len(ranked)}"
        )
    return ranked[rank - 1]


def _num(x: object) -> str:
    # AP as a fraction (0.3921) or in percent (39.21); "-" when the metric is missing, or
    # negative: COCO evaluation reports -1 for an area range with no ground-truth box (APl
    # of images without large objects), which is an absent value, not a score.
    if not isinstance(x, (int, float)) or isinstance(x, bool) or x < 0:
        return "-"
    return f"{x:.4f}" if abs(x) < 10 else f"{x:.2f}"


def _scaled(x: int | None, unit: float, suffix: str) -> str:
    return "-" if x is None else f"{x / unit:.2f}{suffix}"


def table_row(a: RankedArchitecture) -> tuple[str, ...]:
    """Cells of `a` under TABLE_HEADER (params in millions, multiply-adds in billions)."""
    r = a.best
    metrics = tuple(_num(r.metrics.get(key)) for key, _ in METRIC_COLUMNS)
    return (
        (str(a.rank), f"{r.reward:.4f}")
        + metrics
        + (
            _scaled(r.params, 1e6, "M"),
            _scaled(r.macs, 1e9, "G"),
            r.genotype_hash,
            str(a.first_step),
            str(a.times_sampled),
        )
    )


def text_table(ranked: Sequence[RankedArchitecture]) -> str:
    """The ranking as right-aligned text columns (`python -m results top`, end of a search)."""
    rows = [TABLE_HEADER] + [table_row(a) for a in ranked]
    widths = [max(len(row[c]) for row in rows) for c in range(len(TABLE_HEADER))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows)
