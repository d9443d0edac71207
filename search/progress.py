"""Live status line of a search: trials done / budget, best reward, cache hits, ETA (tqdm),
and, under a time budget, the time left before the session stops (whichever ends first)."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

from results import TrialRecord


class Progress:
    """A listener for `ControllerSearcher`: one bar over the trained trials of the budget."""

    def __init__(self, budget: int, done: int, best: float | None, cached: int, deadline: float | None = None) -> None:
        """`deadline`: time.monotonic() at which the time budget ends, or None."""
        self.best, self.cached, self.deadline = best, cached, deadline
        self.bar = tqdm(
            total=budget,
            initial=done,
            desc="trials",
            unit="trial",
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=0.5,
        )
        self._postfix()

    def __call__(self, record: TrialRecord, stats: dict[str, Any]) -> None:
        if record.cache_hit:
            self.cached += 1
        else:
            self.bar.update(1)
        if record.reward is not None and (self.best is None or record.reward > self.best):
            self.best = record.reward
        self._postfix(stats.get("num_asked"))

    def _postfix(self, steps: int | None = None) -> None:
        best = "-" if self.best is None else f"{self.best:.4f}"
        extra = {"best": best, "cache hits": self.cached}
        if steps is not None:
            extra["steps"] = steps
        if self.deadline is not None:
            left = max(0, int(self.deadline - time.monotonic()))
            extra["time left"] = f"{left // 60}:{left % 60:02d}"
        self.bar.set_postfix(extra, refresh=True)

    def close(self) -> None:
        self.bar.close()
