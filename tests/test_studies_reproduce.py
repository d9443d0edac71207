"""Reproduction study: a run's records retrained here; selection, summary, errors."""

from __future__ import annotations

import math

import pytest

from proxy_task.config import tiny_config
from proxy_task.task import ProxyTask
from results import TrialRecord, TrialStore
from space import load_builtin
from studies.reproduce import main, pick, reproduce, summarize


def _record(step, genotype, ap, **kw):
    fields = dict(trial_id=f"t{step}", step=step, policy_version=0, reward=ap, metrics={"ap": ap}, status="ok")
    return TrialRecord.from_genotype(genotype, **{**fields, **kw})


def test_pick_spreads_over_trained_ok_records():
    g = load_builtin("fpn")
    records = [_record(k, g, 0.1) for k in range(10)]
    records[3] = _record(3, g, None, status="failed")
    records[4] = _record(4, g, 0.1, status="cached", cache_hit=True)
    assert [r.step for r in pick(records, 3)] == [0, 6, 9]
    assert len(pick(records, 50)) == 8


def test_summarize_shift_noise_and_ranking():
    s = summarize([0.1, 0.2, 0.3, 0.4], [0.1, 0.25, 0.3, 0.45])
    assert s["n"] == 4 and s["identical"] == 2 and s["kendall_tau"] == 1.0
    assert s["shift"] == pytest.approx(0.025) and s["diff_std"] == pytest.approx(math.sqrt(1 / 3) * 0.05)
    assert s["shift_se"] == pytest.approx(s["diff_std"] / 2)


def test_records_made_here_reproduce_bit_for_bit(tmp_path, nasfpn_cache, capsys):
    task = tiny_config()
    genotypes = [load_builtin("fpn"), load_builtin("nasfpn_paper")]
    proxy = ProxyTask(task, "cpu")
    aps = [proxy.train(g, seed=3).ap for g in genotypes]
    with TrialStore(tmp_path / "run" / "trials.sqlite") as store:
        store.set_meta("config", {"proxy_task": task.to_dict(), "seed": 3})
        for step, (g, ap) in enumerate(zip(genotypes, aps)):
            store.append(_record(step, g, ap))
    result = reproduce(str(tmp_path / "run"), n=2, out=str(tmp_path / "r.json"))
    assert [r["new"] for r in result["rows"]] == aps
    assert result["summary"]["identical"] == 2 and result["summary"]["shift"] == 0.0
    assert (tmp_path / "r.json").exists()
    assert main([str(tmp_path / "run"), "--n", "1"]) == 0
    assert "1 retrained, 1 identical" in capsys.readouterr().out


def test_bad_run_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no such run" in err[0]


def test_a_record_of_another_version_is_one_line(tmp_path, capsys):
    with TrialStore(tmp_path / "run" / "trials.sqlite") as store:
        store.set_meta("config", {"proxy_task": {"no_such_setting": 1}, "seed": 0})
        store.append(_record(0, load_builtin("fpn"), 0.1))
    assert main([str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit this version" in err[0]
