"""Damage inside a page of the record (it passes SQLite's integrity check) and damaged
settings: every reader refuses in one line naming the recovery; recovery keeps the
settings and every readable row, before and after the damage."""

import random
import sqlite3

import pytest

from benchmarks.reliability import random_page_damage, replace_bytes
from results import RecordError, TrialRecord, TrialStore
from results.__main__ import main as results_main
from results.recover import recover_record
from search.driver import run_search
from search.errors import SearchSetupError
from space import SearchSpace
from studies.retrain import RetrainError, resolve_spec
from tests.search_helpers import compose_search

N = 40


def _record(k: int, genotype) -> TrialRecord:
    return TrialRecord.from_genotype(genotype, trial_id=f"t{k}", step=k, policy_version=0, reward=0.01 * k,
                                     metrics={"ap": 0.01 * k}, node=f"node-{k:04d}-abcdefgh", strategy="ppo")  # fmt: skip


@pytest.fixture
def run_dir(tmp_path):
    """A finished run of N records with its settings, closed (WAL checkpointed)."""
    space, rng = SearchSpace(), random.Random(0)
    run = tmp_path / "run"
    with TrialStore(run / "trials.sqlite") as store:
        store.set_meta("strategy", "ppo")
        store.set_meta("config", {"seed": 0, "name": "run"})
        for k in range(N):
            store.append(_record(k, space.sample(rng)))
    return run


def _one_line_2(capsys, code):
    err = capsys.readouterr().err.strip()
    return code == 2 and "\n" not in err and "Traceback" not in err, err


def _readers_refuse(run, capsys, tmp_path, words):
    for argv in (["top", str(run)], ["export", str(run), "--out", str(tmp_path / "g.json")],
                 ["report", str(run), "--out", str(tmp_path / "rep")]):  # fmt: skip
        ok, err = _one_line_2(capsys, results_main(argv))
        assert ok and words in err and "results recover" in err, (argv, err)
    with pytest.raises(RetrainError, match=words):
        resolve_spec(f"best:{run}")
    cfg = compose_search(run.parent, "name=run", "wandb.mode=disabled")
    with pytest.raises(SearchSetupError) as e:
        run_search(cfg)
    assert "\n" not in str(e.value) and words in str(e.value)


def test_non_utf8_bytes_inside_a_row_pass_the_integrity_check_but_are_refused(run_dir, capsys, tmp_path):
    db = run_dir / "trials.sqlite"
    assert replace_bytes(db, b"node-0007-abcdefgh", b"\xff" * 18) == 1
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    _readers_refuse(run_dir, capsys, tmp_path, "damaged trial record")
    salvage = recover_record(db, tmp_path / "recovered.sqlite")
    assert [r.trial_id for r in salvage.records] == [f"t{k}" for k in range(N) if k != 7]  # rows after it too
    assert salvage.lost_rows == [8] and salvage.meta_keys == ["strategy", "config"]
    with TrialStore(tmp_path / "recovered.sqlite", readonly=True) as store:
        assert store.meta() == {"strategy": "ppo", "config": {"seed": 0, "name": "run"}}  # still guards a resume


def test_damaged_settings_json_is_refused_in_one_line(run_dir, capsys, tmp_path):
    db = run_dir / "trials.sqlite"
    assert replace_bytes(db, b'"ppo"', b'{ppo"') == 1  # the meta value; trial rows hold ppo unquoted
    _readers_refuse(run_dir, capsys, tmp_path, "damaged trial record")
    salvage = recover_record(db, tmp_path / "recovered.sqlite")
    assert len(salvage.records) == N and salvage.lost_meta == ["strategy"] and salvage.meta_keys == ["config"]


def test_recover_summary_is_one_line(run_dir, capsys, tmp_path):
    replace_bytes(run_dir / "trials.sqlite", b"node-0003-abcdefgh", b"\xfe" * 18)
    assert results_main(["recover", str(run_dir), "--out", str(tmp_path / "r.sqlite")]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{N - 1} records and the run's settings (strategy, config) salvaged into")
    assert "1 unreadable trial rows skipped (seq 4)" in out and "\n" not in out


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_in_a_page_never_give_a_traceback(run_dir, capsys, tmp_path, seed):
    db = run_dir / "trials.sqlite"
    random_page_damage(db, seed)
    code = results_main(["top", str(run_dir)])
    err = capsys.readouterr().err.strip()
    assert code in (0, 2) and "\n" not in err and "Traceback" not in err
    try:
        with TrialStore(db, readonly=True) as store:
            store.records()
    except RecordError as e:
        assert "\n" not in str(e)
    salvage = recover_record(db, tmp_path / "recovered.sqlite")
    assert len(salvage.records) >= N // 2  # one damaged page of ~8 holds a few rows only


def test_open_reports_the_real_error_not_the_commit(tmp_path, monkeypatch):
    db = tmp_path / "t.sqlite"
    TrialStore(db).close()

    def broken(self, app_id):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(TrialStore, "_check_integrity", broken)
    with pytest.raises(RecordError, match="database disk image is malformed"):
        TrialStore(db, readonly=True)


def test_a_record_behind_the_controller_state_is_refused(tmp_path):
    """A kill -9 whose record lost its -wal file: the state was told trials the record lacks."""
    import shutil

    from search.driver import _build_strategy, _open_record
    from search.searcher import ControllerSearcher
    from search.settings import SearchSettings

    cfg = compose_search(tmp_path, "name=run", "wandb.mode=disabled", "controller=random")
    s = SearchSettings.from_dict(cfg)
    run = tmp_path / "run"
    run.mkdir()
    ok = {"final": True, "status": "ok", "ap": 0.1, "ap50": 0.2, "params": 1, "macs": 1, "node": "n"}
    store = _open_record(run, s)
    searcher = ControllerSearcher(_build_strategy(s), s.strategy, store, run / "controller_state.pt")
    for t in ("a", "b"):
        searcher.suggest(t)
        searcher.on_trial_complete(trial_id=t, result=ok)
    store.close()  # checkpointed into trials.sqlite
    store = TrialStore(run / "trials.sqlite")
    searcher.store = store
    searcher.suggest("c")
    searcher.on_trial_complete(trial_id="c", result=ok)  # in trials.sqlite-wal only, and told
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("trials.sqlite", "controller_state.pt"):  # the -wal is lost
        shutil.copy(run / name, copy / name)
    store.close()
    with pytest.raises(SearchSetupError) as e:
        run_search(compose_search(tmp_path, "name=copy", "wandb.mode=disabled", "controller=random"))
    message = str(e.value)
    assert "\n" not in message and "the record holds 2 trials but controller_state.pt has been told 3" in message
    assert "delete" in message and "rebuild the state from the record" in message
