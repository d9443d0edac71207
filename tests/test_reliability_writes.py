"""A record or state write that fails mid-search: the search stops in one line, exit 1, and
no finished trial is lost (pending journal, replayed on resume)."""

import contextlib
import errno
import sqlite3
from pathlib import Path

import pytest

import controller
import search.state
from results import TrialStore
from search.driver import _replay_journal
from search.errors import SearchSetupError
from search.journal import JOURNAL_NAME, PendingJournal
from search.searcher import ControllerSearcher
from search.state import reconcile, save_state
from space import SearchSpace


class ReadOnlyStore(TrialStore):
    """A record that takes `allowed` appends, then fails as a chmod 444 file does for a
    non-root writer."""

    def __init__(self, path: Path, allowed: int) -> None:
        super().__init__(path)
        self.allowed = allowed

    def append(self, record):
        if self.allowed <= 0:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        self.allowed -= 1
        return super().append(record)


def _ok(ap):
    return {"final": True, "status": "ok", "ap": ap, "ap50": 2 * ap, "params": 10, "macs": 20, "node": "n"}


def _searcher(tmp_path, store):
    strategy = controller.build("random", SearchSpace(), seed=0)
    return ControllerSearcher(strategy, "random", store, tmp_path / "controller_state.pt")


def test_a_failed_append_stops_the_search_and_keeps_the_trial(tmp_path):
    store = ReadOnlyStore(tmp_path / "trials.sqlite", allowed=1)
    s = _searcher(tmp_path, store)
    for t in ("a", "b", "c"):
        s.suggest(t)
    s.on_trial_complete(trial_id="a", result=_ok(0.1))  # written
    s.on_trial_complete(trial_id="b", result=_ok(0.2))  # must not raise: Tune would train it again
    assert "attempt to write a readonly database" in s.write_error and str(store.path) in s.write_error
    assert s.suggest("d") == ControllerSearcher.FINISHED  # nothing more is asked
    s.on_trial_complete(trial_id="c", result=_ok(0.3))  # a later one goes to the journal too
    assert [r.trial_id for r in store.records()] == ["a"]
    assert [r.trial_id for r in s.journal.pending()] == ["b", "c"]
    assert s.strategy.stats()["num_told"] == 1  # b and c stay outstanding in the saved state
    store.close()

    # the next driver: the journal goes into the record, then the state is told from it
    with TrialStore(tmp_path / "trials.sqlite") as writable:
        _replay_journal(writable, tmp_path)
        records = writable.records()
    assert [r.trial_id for r in records] == ["a", "b", "c"] and not (tmp_path / JOURNAL_NAME).exists()
    fresh = controller.build("random", SearchSpace(), seed=0)
    search.state.load_state(fresh, tmp_path / "controller_state.pt")
    assert reconcile(fresh, {r.step: r for r in records}) == []
    assert fresh.stats()["num_told"] == 3 and fresh.stats()["num_pending"] == 0


def test_a_journal_that_cannot_be_replayed_refuses_the_resume_in_one_line(tmp_path):
    store = ReadOnlyStore(tmp_path / "trials.sqlite", allowed=0)
    s = _searcher(tmp_path, store)
    s.suggest("a")
    s.on_trial_complete(trial_id="a", result=_ok(0.1))
    with pytest.raises(SearchSetupError) as e:
        _replay_journal(store, tmp_path)  # the record is still read-only
    assert "\n" not in str(e.value) and "readonly database" in str(e.value)
    assert "run the same command again" in str(e.value)
    assert len(PendingJournal(tmp_path).pending()) == 1  # kept for the next try
    store.close()


def test_a_full_disk_under_the_state_names_enospc(tmp_path, monkeypatch):
    @contextlib.contextmanager
    def no_space(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
        yield

    store = TrialStore(tmp_path / "trials.sqlite")
    s = _searcher(tmp_path, store)
    s.suggest("a")
    monkeypatch.setattr(search.state, "atomic_path", no_space)
    s.on_trial_complete(trial_id="a", result=_ok(0.1))
    assert s.write_error.endswith("controller_state.pt: No space left on device (ENOSPC)")
    assert [r.trial_id for r in store.records()] == ["a"]  # recorded before the state write
    assert s.suggest("b") == ControllerSearcher.FINISHED
    store.close()


def test_save_state_reports_a_full_disk_as_oserror(tmp_path, monkeypatch):
    # torch.save straight to a full disk raised a C++ iostream error without ENOSPC
    strategy = controller.build("random", SearchSpace(), seed=0)

    class Full:
        def write_bytes(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    @contextlib.contextmanager
    def full(path):
        yield Full()

    monkeypatch.setattr(search.state, "atomic_path", full)
    with pytest.raises(OSError) as e:
        save_state(strategy, tmp_path / "s.pt")
    assert e.value.errno == errno.ENOSPC


def test_a_failing_listener_is_switched_off_not_raised(tmp_path, capsys):
    store = TrialStore(tmp_path / "trials.sqlite")
    s = _searcher(tmp_path, store)

    def broken(record, stats):
        raise ConnectionError("W&B went away")

    s.listeners.append(broken)
    s.suggest("a")
    s.on_trial_complete(trial_id="a", result=_ok(0.1))
    assert s.listeners == [] and store.count() == 1
    assert "W&B went away" in capsys.readouterr().err
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["readonly_record", "full_disk_state"])
def test_write_failure_mid_search_then_the_same_command_finishes(tmp_path, nasfpn_cache, kind):
    from benchmarks.reliability import scenario_write_failure

    row = scenario_write_failure(tmp_path, kind)
    assert row.problems == [] and row.lost == 0 and row.twice == 0 and row.survived == 1, row
