"""The controller's checkpoint, written by the driver after every ask and tell.

Crash consistency with the trial record (the record is the source of truth):
  * a trial's record is appended (committed, fsynced) BEFORE its reward is told and the
    state is saved, so a kill between the two leaves a record the state has not seen;
  * on load, every sample the state still holds as outstanding is matched against the
    record by its step: recorded -> told now from the record; not recorded -> to be run
    again (it was running when the driver died).
Files are written to a temp file and `os.replace`d, so they are never half-written, and
read with `torch.load(weights_only=True)`: plain data and tensors only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from controller import Sample, Strategy
from results import TrialRecord
from space.atomic import atomic_path

REWARD_FAILED_STATUSES = ("failed", "nonfinite", "timeout")


def save_state(strategy: Strategy, path: Path) -> None:
    """Atomically write `strategy.state_dict()` to `path`."""
    with atomic_path(path) as tmp:
        torch.save(strategy.state_dict(), tmp)


def load_state(strategy: Strategy, path: Path) -> None:
    """Restore a saved state into `strategy`. Raises ValueError naming the file."""
    try:
        state: dict[str, Any] = torch.load(path, weights_only=True)
    except Exception as e:  # a damaged or foreign file: refuse, never guess
        raise ValueError(f"{path}: unreadable controller state ({type(e).__name__}: {e})") from None
    try:
        strategy.load_state_dict(state)
    except (ValueError, KeyError) as e:
        raise ValueError(
            f"{path}: controller state does not fit this configuration ({e}); resume with the"
            " options the run was started with, or use a new run name"
        ) from None


def reward_of(record: TrialRecord) -> float | None:
    """The reward to tell for a record (None = failed: the strategy's failure reward)."""
    return None if record.status in REWARD_FAILED_STATUSES else record.reward


def reconcile(strategy: Strategy, records_by_step: dict[int, TrialRecord]) -> list[Sample]:
    """Tell the outstanding samples that the record shows finished; return the others
    (samples that were running when the driver stopped), oldest first."""
    rerun = []
    for sample in strategy.pending:
        record = records_by_step.get(sample.id)
        if record is None:
            rerun.append(sample)
        else:
            reward = reward_of(record)
            strategy.tell(sample, reward, failed=reward is None, cached=record.cache_hit)
    return rerun
