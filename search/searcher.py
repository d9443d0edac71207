"""The controller strategy as a Ray Tune `Searcher`, with the reward cache and the record.

suggest(trial_id): re-runs first (samples that were running when an earlier driver
died, and duplicates whose twin failed), then asks the strategy. A sample needs no training when its architecture (by
canonical hash) is in the record: it gets the stored reward back at once (a 'cached'
record, told to the strategy); or when it is being trained right now: it waits for that
trial and is then told its reward the same way (if that trial fails, it is trained
itself). Either way the strategy is asked again, up to `max_cache_hits` times in a row.
So no architecture is trained twice, even by samples in flight together, unless its
training failed (or `reevaluate_cached` asks for repeats).

on_trial_complete: the trial's record is appended (committed) before the reward is told
and the controller state saved, so no completed trial is ever lost (see state.py).
Tune calls it by keyword; after the last retry of a crashed trial: result=None, error=True.

A write that fails (the record or the controller state: read-only file, full disk) must
not raise here: Tune would log it and train the trial again. The searcher stops instead
(`write_error` is set; the driver's stopper ends the Tune run at its next step): the
record that could not be written, and every later one, goes to the pending journal
(search/journal.py) and is appended on resume; nothing more is asked.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from controller import Sample, Strategy
from proxy_task.evaluator import AP_KEYS
from results import RecordError, TrialRecord, TrialStatus, TrialStore
from search.journal import PendingJournal
from search.reward import reward_from_metrics
from search.state import reward_of, save_state
from space.serialization import to_dict

Listener = Callable[[TrialRecord, dict[str, Any]], None]
METRIC_KEYS = (*AP_KEYS, "eval_latency_ms", "train_time_s", "epoch")
# What a failed write of the record or the state raises (sqlite3: read-only database, disk
# full, I/O error; OSError: the state file; RecordError: a store that refuses the record).
WRITE_ERRORS = (sqlite3.Error, OSError, RecordError)


def describe_write_error(e: BaseException) -> str:
    """The cause of a failed write in a few words, naming ENOSPC / EROFS / EACCES if that is it."""
    if isinstance(e, OSError) and e.errno is not None:
        return f"{e.strerror or e} ({errno.errorcode.get(e.errno, e.errno)})"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


class ControllerSearcher(Searcher):
    """Tune searcher over a `Strategy`; the driver process owns the record and the state."""

    def __init__(
        self,
        strategy: Strategy,
        strategy_name: str,
        store: TrialStore,
        state_path: Path,
        rerun: list[Sample] | None = None,
        *,
        reevaluate_cached: bool = False,
        max_cache_hits: int = 500,
        objective: dict[str, Any] | None = None,  # reward_from_metrics options (ObjectiveConfig)
        journal: PendingJournal | None = None,
    ) -> None:
        super().__init__(metric=None, mode=None)  # rewards go through our record, not Tune's metric
        self.strategy = strategy
        self.strategy_name = strategy_name
        self.store = store
        self.state_path = state_path
        self.rerun = deque(rerun or ())
        self.reevaluate_cached = reevaluate_cached
        self.max_cache_hits = max_cache_hits
        self.objective = objective or {}
        self.running: dict[str, Sample] = {}
        self.waiting: dict[str, list[Sample]] = {}  # hash -> samples waiting for its running trial
        self.errors: dict[str, str] = {}  # trial id -> last error line (from a Tune callback)
        self.failed: dict[str, Sample] = {}  # crashed trials waiting for their error line
        self.listeners: list[Listener] = []
        self.converged = False
        self.journal = journal or PendingJournal(state_path.parent)
        self.write_error: str | None = None  # set by the first failed write: the search stops

    # Tune pickles the search algorithm with the experiment; the driver-side objects
    # (SQLite connection, listeners holding a W&B run) must not travel.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(store=None, listeners=[])
        return state

    # -- Tune protocol ---------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.write_error is not None:
            return Searcher.FINISHED
        sample = self._next_to_train()
        if self.write_error is not None:  # its state could not be saved: it is not handed out
            return Searcher.FINISHED
        if sample is None:
            self.converged = True
            return Searcher.FINISHED
        self.running[trial_id] = sample
        return {
            "genotype": json.dumps(to_dict(sample.genotype), separators=(",", ":")),
            "step": sample.id,
            "policy_version": sample.version,
            "hash": sample.genotype.hash(),
        }

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        sample = self.running.pop(trial_id, None)
        if sample is None:  # not ours (e.g. a trial of an earlier session's experiment)
            return
        if error and trial_id not in self.errors:
            # Tune calls this before its on_trial_error callbacks: wait for the error line
            # (record_failure, in the same Tune step) so the record says what went wrong.
            self.failed[trial_id] = sample
            return
        self._finish(sample, self._record(trial_id, sample, result, error))
        self._release(sample.genotype.hash())

    def record_failure(self, trial_id: str, message: str | None) -> None:
        """Record a crashed trial with its error line (from ErrorCapture.on_trial_error)."""
        if message:
            self.errors[trial_id] = message
        sample = self.failed.pop(trial_id, None)
        if sample is not None:
            self._finish(sample, self._record(trial_id, sample, None, True))
            self._release(sample.genotype.hash())

    def flush_failures(self) -> None:
        """Record crashed trials whose error line never came (called when Tune returns)."""
        for trial_id in list(self.failed):
            self.record_failure(trial_id, None)

    def save(self, checkpoint_path: str) -> None:
        pass  # the controller state is already on disk after every ask and tell (state.py)

    def restore(self, checkpoint_path: str) -> None:
        pass  # resume goes through the record and state.py, not Tune's experiment state

    # -- internals ---------------------------------------------------------------------
    def _next_to_train(self) -> Sample | None:
        """The next sample that needs training: re-runs first, then new asks (None: the
        strategy proposed only known architectures `max_cache_hits` + 1 times in a row)."""
        while self.rerun:
            sample = self.rerun.popleft()
            if not self._served(sample):
                return sample
        for _ in range(self.max_cache_hits + 1):
            sample = self.strategy.ask()
            if not self._served(sample):
                self._save_state()
                return sample
            if self.write_error is not None:
                return None
        return None

    def _served(self, sample: Sample) -> bool:
        """True when `sample` needs no training: its reward is in the record (told now, as a
        cached record) or its architecture is being trained (it waits for that trial)."""
        if self.reevaluate_cached:
            return False
        key = sample.genotype.hash()
        hit = self.store.lookup_reward(key)
        if hit is not None:
            # the ask is saved before its cached record is appended: a driver killed (or a
            # write failing) in between leaves a step the state knows, never one it does not
            self._save_state()
            self._finish(sample, self._cached(sample, hit))
            return True
        # running, or crashed and waiting for its error line (record_failure) to be recorded
        if any(s.genotype.hash() == key for s in (*self.running.values(), *self.failed.values())):
            self.waiting.setdefault(key, []).append(sample)
            self._save_state()  # the ask changed the strategy
            return True
        return False

    def _save_state(self) -> bool:
        """Checkpoint the strategy; on a failed write stop the search (the record is ahead of
        the saved state then, which a resume reconciles) and return False."""
        try:
            save_state(self.strategy, self.state_path)
        except OSError as e:
            if self.write_error is None:
                self.write_error = f"cannot write {self.state_path}: {describe_write_error(e)}"
            return False
        return True

    def _cached(self, sample: Sample, hit: TrialRecord) -> TrialRecord:
        return TrialRecord.from_genotype(
            sample.genotype,
            trial_id=f"cached-{sample.id}",
            step=sample.id,
            policy_version=sample.version,
            reward=hit.reward,
            metrics={**hit.metrics, "cached_from": hit.trial_id},
            params=hit.params,
            macs=hit.macs,
            status=TrialStatus.CACHED,
            cache_hit=True,
            strategy=self.strategy_name,
        )

    def _release(self, key: str) -> None:
        """A trial of architecture `key` ended: serve the samples waiting for it from the
        record, or, if it left no reward, queue them to be trained themselves."""
        waiting = self.waiting.pop(key, [])
        hit = self.store.lookup_reward(key) if waiting else None
        for sample in waiting:
            if hit is None:
                self.rerun.append(sample)
            else:
                self._finish(sample, self._cached(sample, hit))

    def _record(self, trial_id: str, sample: Sample, result: dict[str, Any] | None, error: bool) -> TrialRecord:
        fields: dict[str, Any] = {
            "trial_id": trial_id,
            "step": sample.id,
            "policy_version": sample.version,
            "strategy": self.strategy_name,
        }
        result = result or {}
        status = TrialStatus.FAILED if error or not result.get("final") else result.get("status", TrialStatus.FAILED)
        message = self.errors.pop(trial_id, None) or result.get("error") or None
        if status == TrialStatus.FAILED and not message:
            message = "trial crashed (worker lost or exception) after all retries"
        metrics = {k: result[k] for k in METRIC_KEYS if k in result}
        reward = None
        if status == TrialStatus.OK:
            try:
                reward = reward_from_metrics(result, **self.objective)
            except (KeyError, ValueError, TypeError) as e:
                status, message = TrialStatus.FAILED, f"trial reported no usable reward: {e}"
        return TrialRecord.from_genotype(
            sample.genotype,
            **fields,
            reward=reward,
            metrics=metrics,
            params=_int_or_none(result.get("params")),
            macs=_int_or_none(result.get("macs")),
            duration_s=float(result.get("duration_s", 0.0)),
            node=str(result.get("node", "")),
            status=status,
            error=message,
        )

    def _finish(self, sample: Sample, record: TrialRecord) -> None:
        if self.write_error is None:
            try:
                self.store.append(record)  # durable first: a kill after this line loses nothing
            except WRITE_ERRORS as e:
                self.write_error = f"cannot write the trial record {self.store.path}: {describe_write_error(e)}"
        if self.write_error is not None:
            # not told: the saved state still holds the sample as outstanding, and the next
            # driver tells it from the record once the journal is replayed into it
            self.journal.add(record)
            return
        reward = reward_of(record)
        self.strategy.tell(sample, reward, failed=reward is None, cached=record.cache_hit)
        self._save_state()
        stats = self.strategy.stats()
        for listener in list(self.listeners):
            try:
                listener(record, stats)
            except Exception as e:  # raised out of here, Tune would train the trial again
                self.listeners.remove(listener)
                name = type(listener).__name__
                print(
                    f"{name} failed ({type(e).__name__}: {e}); it is switched off, the search goes on", file=sys.stderr
                )


def _int_or_none(x: Any) -> int | None:
    return None if x is None else int(x)
