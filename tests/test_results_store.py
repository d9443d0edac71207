"""TrialStore: round trips, the reward cache, top-k, append-only rules, crash safety, damage."""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from results import DuplicateTrialError, RecordError, TrialRecord, TrialStore
from results.ranking import rank_architectures
from space import SearchSpace, load_builtin

REPO = Path(__file__).resolve().parents[1]


def _genotype(seed: int):
    return SearchSpace().sample(random.Random(seed))


def _record(trial_id: str, seed: int, step: int, reward: float | None = 0.25, status: str = "ok", **kw) -> TrialRecord:
    return TrialRecord.from_genotype(
        _genotype(seed),
        trial_id=trial_id,
        step=step,
        policy_version=step // 4,
        reward=reward,
        status=status,
        cache_hit=status == "cached",
        created_at=1000.0 + step,
        **kw,
    )


def _full_record() -> TrialRecord:
    paper = load_builtin("nasfpn_paper")
    return TrialRecord.from_genotype(
        paper,
        trial_id="trial-0007",
        step=7,
        policy_version=3,
        reward=0.3125,
        metrics={"ap": 0.3125, "ap50": 0.5, "ap75": 0.33, "aps": 0.1, "apm": 0.35, "apl": 0.45, "iters": 4000},
        params=60_300_000,
        macs=281_600_000_000,
        duration_s=1234.5,
        node="worker-3",
        status="ok",
        error=None,
        cache_hit=False,
        strategy="ppo",
        created_at=1_700_000_000.25,
    )


def test_round_trip_all_fields_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "run" / "trials.sqlite"
    full = _full_record()
    failed = _record("trial-0008", seed=1, step=8, reward=None, status="failed", error="RuntimeError: CUDA OOM")
    with TrialStore(path) as store:
        assert store.append(full) is True
        assert store.append(failed) is True
        store.set_meta("strategy", "ppo")
        store.set_meta("config", {"lr": 0.001, "workers": [1, 2]})
        assert store.get("trial-0007") == full
        assert store.records() == [full, failed]
    for readonly in (False, True):  # reopen after close keeps everything
        with TrialStore(path, readonly=readonly) as store:
            assert store.records() == [full, failed]
            assert store.get("trial-0008") == failed and store.get("nope") is None
            assert store.get_meta("config") == {"lr": 0.001, "workers": [1, 2]}
            assert store.get_meta("missing", default=5) == 5
            assert store.meta()["strategy"] == "ppo"
            assert store.count() == 2 and store.count("failed") == 1
    assert full.genotype() == load_builtin("nasfpn_paper")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reward": None}, "needs a finite reward"),
        ({"reward": float("nan")}, "finite number"),
        ({"metrics": {"ap": float("inf")}}, "nonfinite"),
        ({"status": "cached"}, "cache_hit"),
        ({"status": "lost"}, "status"),
        ({"step": True}, "step"),
        ({"params": -1}, "params"),
        ({"trial_id": ""}, "trial_id"),
    ],
)
def test_record_rules(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(_full_record(), **change)


def test_append_retry_is_idempotent_and_conflicts_raise(tmp_path: Path) -> None:
    record = _record("t0", seed=0, step=0)
    with TrialStore(tmp_path / "trials.sqlite") as store:
        assert store.append(record) is True
        assert store.append(dataclasses.replace(record, created_at=2000.0)) is False  # retry after a crash
        with pytest.raises(DuplicateTrialError, match="'t0' is already stored"):
            store.append(dataclasses.replace(record, reward=0.5))
        with pytest.raises(ValueError, match="canonical hash"):
            store.append(dataclasses.replace(record, trial_id="t1", genotype_hash="0" * 16))
        assert store.records() == [record]


def test_trials_are_append_only_in_sql(tmp_path: Path) -> None:
    path = tmp_path / "trials.sqlite"
    with TrialStore(path) as store:
        store.append(_record("t0", seed=0, step=0))
    conn = sqlite3.connect(path)
    for sql in ("UPDATE trials SET reward = 1.0", "DELETE FROM trials"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.close()


def test_lookup_reward_returns_first_ok_record(tmp_path: Path) -> None:
    with TrialStore(tmp_path / "trials.sqlite") as store:
        store.append(_record("t0", seed=1, step=0, reward=None, status="failed", error="boom"))
        store.append(_record("t1", seed=1, step=1, reward=0.2))
        store.append(_record("t2", seed=1, step=2, reward=0.2, status="cached"))
        store.append(_record("t3", seed=1, step=3, reward=0.4))
        found = store.lookup_reward(_genotype(1).hash())
        assert found is not None and found.trial_id == "t1" and found.reward == 0.2
        assert store.lookup_reward(_genotype(2).hash()) is None


def test_top_keeps_best_record_per_hash(tmp_path: Path) -> None:
    # seed: reward, several trials per architecture; failed/cached never rank.
    trials = [(0, 0.30), (1, 0.50), (0, 0.45), (2, 0.45), (1, 0.10), (3, 0.60), (4, 0.45)]
    with TrialStore(tmp_path / "trials.sqlite") as store:
        for step, (seed, reward) in enumerate(trials):
            store.append(_record(f"t{step}", seed=seed, step=step, reward=reward))
        store.append(_record("t7", seed=5, step=7, reward=0.99, status="cached"))
        store.append(_record("t8", seed=6, step=8, reward=None, status="timeout"))
        top = store.top(10)
        assert [r.trial_id for r in top] == ["t5", "t1", "t2", "t3", "t6"]  # 0.45 ties go to the earlier trial
        assert [r.trial_id for r in store.top(2)] == ["t5", "t1"]
        assert [a.best for a in rank_architectures(store.records())] == top
        ranked = rank_architectures(store.records())
        assert (ranked[1].first_step, ranked[1].times_sampled) == (1, 2)
        assert store.unique_hashes() == [_genotype(s).hash() for s in (0, 1, 2, 3, 4, 5, 6)]


def test_meta_refuses_credentials(tmp_path: Path) -> None:
    with TrialStore(tmp_path / "trials.sqlite") as store, pytest.raises(ValueError, match="credential"):
        store.set_meta("config", {"wandb": {"api_key": "x"}})


def test_readonly_store_refuses_writes_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "trials.sqlite"
    with pytest.raises(RecordError, match="no trial record"):
        TrialStore(path, readonly=True)
    TrialStore(path).close()
    with TrialStore(path, readonly=True) as store, pytest.raises(RecordError, match="read-only"):
        store.append(_record("t0", seed=0, step=0))


# -- crash safety ------------------------------------------------------------------------
_KILLED_WRITER = """
import os, random, signal, sys
from results import TrialRecord, TrialStore
from space import SearchSpace
store = TrialStore(sys.argv[1])
for i in range(3):
    g = SearchSpace().sample(random.Random(i))
    store.append(TrialRecord.from_genotype(g, trial_id=f"t{i}", step=i, policy_version=0, reward=0.1 * i,
                                           created_at=1000.0 + i))
os.kill(os.getpid(), signal.SIGKILL)  # right after the last append returned: no close, no checkpoint
"""


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose writer was SIGKILLed after 3 appends: trials.sqlite + its WAL."""
    path = tmp_path_factory.mktemp("killed") / "trials.sqlite"
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert Path(f"{path}-wal").stat().st_size > 0  # the records live only in the WAL
    return path.parent


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst / "trials.sqlite"


def _ids(path: Path, readonly: bool = False) -> list[str]:
    with TrialStore(path, readonly=readonly) as store:
        return [r.trial_id for r in store.records()]


def test_appends_survive_a_killed_writer(killed_run: Path, tmp_path: Path) -> None:
    assert _ids(_copy(killed_run, tmp_path / "ro"), readonly=True) == ["t0", "t1", "t2"]
    path = _copy(killed_run, tmp_path / "rw")
    assert _ids(path) == ["t0", "t1", "t2"]
    with TrialStore(path) as store:  # the writer can carry on after the crash
        store.append(_record("t3", seed=3, step=3))
    assert _ids(path) == ["t0", "t1", "t2", "t3"]


def test_torn_wal_tail_loses_only_the_last_transaction(killed_run: Path, tmp_path: Path) -> None:
    path = _copy(killed_run, tmp_path / "torn")
    wal = Path(f"{path}-wal")
    os.truncate(wal, wal.stat().st_size - 100)  # cut into the commit frame of the last append
    assert _ids(path, readonly=True) == ["t0", "t1"]
    assert _ids(path) == ["t0", "t1"]


def test_garbage_after_the_wal_is_ignored(killed_run: Path, tmp_path: Path) -> None:
    path = _copy(killed_run, tmp_path / "walgarbage")
    with open(f"{path}-wal", "ab") as f:
        f.write(random.Random(0).randbytes(5000))
    assert _ids(path) == ["t0", "t1", "t2"]


def _closed_store(tmp_path: Path, n: int = 3) -> Path:
    path = tmp_path / "trials.sqlite"
    with TrialStore(path) as store:
        for i in range(n):
            store.append(_record(f"t{i}", seed=i, step=i))
    return path


def _assert_refused(path: Path, match: str) -> None:
    for readonly in (True, False):
        with pytest.raises(RecordError, match=match) as info:
            TrialStore(path, readonly=readonly)
        message = str(info.value)
        assert str(path) in message and "\n" not in message


def test_garbage_tail_on_the_database_is_refused(tmp_path: Path) -> None:
    path = _closed_store(tmp_path)
    with open(path, "ab") as f:
        f.write(random.Random(1).randbytes(3000))
    _assert_refused(path, "torn or garbage tail.*recover")


def test_damaged_page_is_refused(tmp_path: Path) -> None:
    path = _closed_store(tmp_path)
    with TrialStore(path) as store:
        page_size = store._conn.execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as f:  # page 2 holds the trials table's b-tree
        f.seek(page_size + 8)
        f.write(b"\xff" * 200)
    _assert_refused(path, "damaged trial record")


def test_not_a_database_or_not_ours_or_newer_schema_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "text.sqlite"
    text.write_text("hello, I am not a database\n" * 200)
    _assert_refused(text, "no SQLite header")
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    _assert_refused(other, "not a nasfpn trial record")
    newer = _closed_store(tmp_path / "newer")
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    _assert_refused(newer, "schema version 99")


def test_reader_sees_a_running_writer(tmp_path: Path) -> None:
    path = tmp_path / "trials.sqlite"
    with TrialStore(path) as writer:
        writer.append(_record("t0", seed=0, step=0))
        with TrialStore(path, readonly=True) as reader:
            assert reader.count() == 1
            writer.append(_record("t1", seed=1, step=1))
            assert [r.trial_id for r in reader.records()] == ["t0", "t1"]


def test_numpy_numbers_become_plain_values() -> None:
    np = pytest.importorskip("numpy")
    record = dataclasses.replace(
        _full_record(), reward=np.float32(0.5), params=np.int64(7), metrics={"ap": np.float32(0.5), "n": np.int64(3)}
    )
    assert (record.reward, record.params, record.metrics) == (0.5, 7, {"ap": 0.5, "n": 3})
    assert type(record.reward) is float and type(record.params) is int
