"""The controller's checkpoint, written by the driver after every ask and tell.

Crash consistency with the trial record (the record is the source of truth):
  * a trial's record is appended (committed, fsynced) BEFORE its reward is told and the
    state is saved, so a kill between the two leaves a record the state has not seen;
  * on load, every sample the state still holds as outstanding is matched against the
    record by its step: recorded -> told now from the record; not recorded -> to be run
    again (it was running when the driver died).
Files are written to a temp file and `os.replace`d, so they are never half-written, and
read with `torch.load(weights_only=True)`: plain data and tensors only.

A lost checkpoint (only the record was kept or copied) is rebuilt by `rebuild`: the
record is replayed through a fresh strategy, every step asked with its recorded
architecture and told its recorded reward in the order the record holds them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from controller import Sample, Strategy
from results import TrialRecord
from space.atomic import atomic_path


def save_state(strategy: Strategy, path: Path) -> None:
    """Atomically write `strategy.state_dict()` to `path`.

    Raises OSError when the file cannot be written (its errno says why: ENOSPC, EACCES)."""
    buffer = io.BytesIO()
    # serialised in memory first: torch's own file writer reports a full disk as a C++
    # iostream failure that never says ENOSPC; a plain write raises OSError with its errno
    torch.save(strategy.state_dict(), buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def load_state(strategy: Strategy, path: Path) -> None:
    """Restore a saved state into `strategy`. Raises ValueError naming the file and the fix."""
    try:
        state: dict[str, Any] = torch.load(path, weights_only=True)
    except Exception as e:  # a damaged or foreign file: refuse, never guess
        # torch's message runs over many lines and advises weights_only=False (unsafe): not shown
        raise ValueError(
            f"{path}: unreadable controller state ({type(e).__name__}); delete it and run the same command again:"
            " the state is rebuilt from the record"
        ) from None
    try:
        strategy.load_state_dict(state)
    except (ValueError, KeyError) as e:
        raise ValueError(
            f"{path}: controller state does not fit this configuration ({e}); resume with the"
            " options the run was started with, or use a new run name"
        ) from None


def reward_of(record: TrialRecord) -> float | None:
    """The reward to tell for a record (None = failed: the strategy's failure reward)."""
    return record.reward if record.rewarded else None


def rebuild(strategy: Strategy, records: list[TrialRecord], concurrency: int) -> list[Sample]:
    """Replay `records` (in record order) through a fresh `strategy`; return the samples
    left outstanding (steps the record lacks), to be run again.

    Every record is told in record order: a trained trial was appended when it completed, a
    cache hit when it was asked or when the trial it waited for ended. The record does not
    hold when trained trials were asked: as the searcher does, steps are asked in order,
    keeping `concurrency` trained samples outstanding (cache hits are not counted), and a
    step is asked early whenever its record comes first. A policy therefore learns from the
    same rewards in the same order and batches. Two things can differ from the original
    run: the record keeps each input pair sorted (canonical), so a policy that sampled
    (j, i) replays (i, j), the same architecture; and a sample's log-probabilities are
    those of the policy at its replayed ask, which can be one update later or earlier than
    the original ask.

    Raises ValueError if a record's architecture is not in the strategy's space or a step
    appears twice.
    """
    if strategy.pending or strategy.num_asked:
        raise ValueError("rebuild needs a fresh strategy")
    by_step: dict[int, TrialRecord] = {}
    for r in records:
        if r.step in by_step:
            raise ValueError(f"the record holds step {r.step} twice ({by_step[r.step].trial_id}, {r.trial_id})")
        by_step[r.step] = r
    last_step = max(by_step, default=-1)
    outstanding: dict[int, Sample] = {}  # steps asked, not yet told

    def ask_next() -> None:
        record = by_step.get(strategy.num_asked)
        if record is None:  # never recorded: it was running when the record ends
            strategy.ask()
            return
        sample = strategy.ask(strategy.space.encode(record.genotype()))
        outstanding[sample.id] = sample

    def fill() -> None:
        while strategy.num_asked <= last_step and sum(not by_step[k].cache_hit for k in outstanding) < concurrency:
            ask_next()

    fill()
    for record in records:
        while record.step not in outstanding:
            ask_next()
        reward = reward_of(record)
        strategy.tell(outstanding.pop(record.step), reward, failed=reward is None, cached=record.cache_hit)
        fill()
    return list(strategy.pending)


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
