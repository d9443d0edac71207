"""Retraining study: specs, resume, parity with a single training, parallel = serial, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import studies.retrain as rt
from proxy_task.config import tiny_config
from proxy_task.task import ProxyTask
from results import TrialRecord, TrialStore
from space import load_builtin

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def task(nasfpn_cache):
    return tiny_config()


@pytest.fixture()
def search_run(tmp_path):
    """A record whose best trial is the FPN genotype (reward 0.3) and worse one the paper's."""
    with TrialStore(tmp_path / "run" / "trials.sqlite") as store:
        for step, (name, reward) in enumerate([("nasfpn_paper", 0.1), ("fpn", 0.3)]):
            store.append(
                TrialRecord.from_genotype(
                    load_builtin(name),
                    trial_id=f"t{step}",
                    step=step,
                    policy_version=0,
                    reward=reward,
                    metrics={"ap": reward},
                    params=1,
                    macs=1,
                    duration_s=1.0,
                    node="n",
                    status="ok",
                    error=None,
                    strategy="ppo",
                    created_at=float(step),
                )
            )
    return tmp_path / "run"


def test_specs_resolve_builtin_best_and_rank(search_run):
    name, g = rt.resolve_spec(f"best:{search_run}")
    assert name == "best of run" and g.hash() == load_builtin("fpn").hash()
    name, g = rt.resolve_spec(f"best:{search_run}@2")
    assert name == "best of run #2" and g.hash() == load_builtin("nasfpn_paper").hash()
    assert rt.resolve_spec("paper")[0] == "paper"


def test_duplicates_train_once_under_both_names_and_random_is_the_variance_draw(search_run):
    from studies.variance import genotypes

    entries = rt.collect_genotypes(["paper", "fpn", f"best:{search_run}"], 2, 2019)
    names = [e["name"] for e in entries.values()]
    assert names[:2] == ["paper", "fpn = best of run"] and len(entries) == 4
    randoms = [g.hash() for n, g in genotypes(2, 2019).items() if n.startswith("random-")]
    assert list(entries)[2:] == randoms


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("best:/no/such/run", "best:/no/such/run"),
        ("best:{run}@x", "rank after '@'"),
        ("best:{run}@5", "rank"),
        ("/no/such/genotype.json", "genotype file not found"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, fragment, search_run):
    with pytest.raises(rt.RetrainError, match=fragment.replace("@", "@")) as e:
        rt.resolve_spec(spec.format(run=search_run))
    assert "\n" not in str(e.value)


def test_retrain_matches_single_trainings_resumes_and_refuses_another_config(task, tmp_path, monkeypatch):
    entries = rt.collect_genotypes(["fpn"], 0, 0)
    rows = rt.retrain(entries, task, seeds=2, out_dir=tmp_path)
    assert len(rows) == 1 and len(rows[0]["ap"]) == 2
    proxy = ProxyTask(task, "cpu")
    direct = [proxy.train(load_builtin("fpn"), s).ap for s in range(2)]
    assert rows[0]["ap"] == direct  # the same trainings as one ProxyTask's, bit for bit
    assert rows[0]["pyramid_macs"] > 0 and rows[0]["params"] > rows[0]["pyramid_params"] > 0
    saved = json.loads((tmp_path / "retrain.json").read_text())
    assert saved["rows"][0]["ap"] == direct and "| fpn |" in (tmp_path / "retrain.md").read_text()
    assert (tmp_path / "retrain.png").read_bytes()[:4] == b"\x89PNG"

    calls = []
    real = rt._train_one
    monkeypatch.setattr(rt, "_train_one", lambda *a: calls.append(a[2]) or real(*a))
    again = rt.retrain(entries, task, seeds=3, out_dir=tmp_path)  # only seed 2 is new
    assert calls == [2] and again[0]["ap"][:2] == direct and len(again[0]["ap"]) == 3
    with pytest.raises(rt.RetrainError, match="different proxy_task config"):
        rt.retrain(entries, task.replace(epochs=2.0), seeds=1, out_dir=tmp_path)


def test_parallel_workers_give_the_serial_results(task, tmp_path):
    entries = rt.collect_genotypes(["paper"], 0, 0)
    serial = rt.retrain(entries, task, seeds=2, out_dir=tmp_path / "serial")
    parallel = rt.retrain(entries, task, seeds=2, out_dir=tmp_path / "parallel", workers=2)
    assert parallel[0]["ap"] == serial[0]["ap"]


def test_cli_reports_a_bad_spec_in_one_line(tmp_path, nasfpn_cache):
    p = subprocess.run(
        [sys.executable, "-m", "studies.retrain", "genotypes=[missing.json]", "random=0", f"out_dir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert "genotype file not found" in p.stderr
