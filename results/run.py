"""A run as the CLI sees it: where its trial record is, its label, and its records.

A RUN argument is a run directory holding `trials.sqlite`, or the .sqlite file itself.
Runs are opened read-only, so looking at a search while it runs is safe.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from results.errors import NoResultsError, RecordError
from results.record import TrialRecord
from results.store import TrialStore

RECORD_FILENAME = "trials.sqlite"


@dataclass(frozen=True)
class Run:
    """The records of one search, read at one moment."""

    path: Path  # the .sqlite file
    label: str  # strategy name (meta "strategy"), made unique among runs plotted together
    records: tuple[TrialRecord, ...] = field(repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The run directory's name (or the file's stem when RUN named a file)."""
        return self.path.parent.name if self.path.name == RECORD_FILENAME else self.path.stem

    @property
    def strategy(self) -> str:
        """The strategy that made the run and the options it set away from that strategy's
        defaults, e.g. 'ppo (decision_order=level_first)', as the driver stored it at start
        (meta "strategy_label"); worked out from meta "strategy" and "config" for a record
        older than that label; else the run's label. Runs are grouped by it, so variants of
        one strategy stay apart."""
        stored = self.meta.get("strategy_label")
        if stored:
            return str(stored)
        name = self.meta.get("strategy")
        if not name:
            return self.label
        import controller  # torch: only for a record made before the label was stored

        return controller.label(str(name), (self.meta.get("config") or {}).get("controller") or {})


def record_path(run: str | os.PathLike[str]) -> Path:
    """The trial record file of RUN.

    Raises:
        RecordError: nothing there.
    """
    p = Path(run)
    if p.is_dir():
        if (p / RECORD_FILENAME).is_file():
            return p / RECORD_FILENAME
        raise RecordError(f"{p}: run directory without {RECORD_FILENAME}; pass the directory the search wrote to")
    if p.is_file():
        return p
    raise RecordError(f"{p}: no such run; pass a run directory holding {RECORD_FILENAME}, or the .sqlite file")


def load_run(run: str | os.PathLike[str], allow_empty: bool = False) -> Run:
    """Read every record and the meta of RUN (read-only).

    Raises:
        RecordError: missing or damaged record (see TrialStore).
        NoResultsError: the run holds no trials and allow_empty is False.
    """
    path = record_path(run)
    with TrialStore(path, readonly=True) as store:
        records = tuple(store.records())
        meta = store.meta()
    if not records and not allow_empty:
        raise NoResultsError(f"{path}: no trials recorded yet; wait for the search to finish a trial")
    strategy = meta.get("strategy") or next((r.strategy for r in records if r.strategy), "")
    run = Run(path=path, label="", records=records, meta=meta)
    return replace(run, label=str(strategy) or run.name)


def load_runs(runs: Sequence[str | os.PathLike[str]]) -> list[Run]:
    """Load several runs; labels shared by two runs get the run name appended."""
    loaded = [load_run(r) for r in runs]
    labels = [r.label for r in loaded]
    out = []
    for run in loaded:
        if labels.count(run.label) > 1:
            run = replace(run, label=f"{run.label} ({run.name})")
        out.append(run)
    return out
