"""The live status line: trained trials advance the bar, cache hits and the time budget show."""

from __future__ import annotations

import re
import time

from results import TrialRecord
from search.progress import Progress
from space import load_builtin


def _record(step: int, reward: float, cached: bool = False) -> TrialRecord:
    return TrialRecord.from_genotype(
        load_builtin("fpn"),
        trial_id=f"t{step}",
        step=step,
        policy_version=0,
        reward=reward,
        status="cached" if cached else "ok",
        cache_hit=cached,
    )


def test_bar_counts_trainings_best_cache_hits_and_time_left():
    start = time.monotonic()
    p = Progress(budget=10, done=2, best=0.1, cached=0, deadline=start + 125)
    p(_record(2, 0.3), {"num_asked": 3})
    p(_record(3, 0.3, cached=True), {"num_asked": 4})
    p(_record(4, 0.2), {"num_asked": 5})
    assert p.bar.n == 4 and p.best == 0.3 and p.cached == 1
    postfix = p.bar.postfix
    assert "best=0.3000" in postfix and "cache hits=1" in postfix and "steps=5" in postfix
    # the time left counts down from 2:05 by the time these lines took (however loaded the machine)
    shown = re.search(r"time left=(\d+):(\d\d)", postfix)
    assert shown is not None, postfix
    left = 60 * int(shown[1]) + int(shown[2])
    assert int(125 - (time.monotonic() - start)) <= left <= 125
    p.close()


def test_no_time_budget_no_time_left():
    p = Progress(budget=3, done=0, best=None, cached=0)
    assert "best=-" in p.bar.postfix and "time left" not in p.bar.postfix
    p.close()
