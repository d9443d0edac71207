"""Strategy comparison from records alone: budgets in trainings, cache hits apart."""

from __future__ import annotations

import random

import pytest

from results import TrialRecord, TrialStore
from results.__main__ import main
from results.compare import compare_table, strategy_table, summarize_run
from results.run import load_run
from space import SearchSpace

# step: (architecture seed, status, reward); step 3 is a cache hit of step 2's architecture.
PLAN = [(0, "ok", 0.1), (1, "failed", None), (2, "ok", 0.3), (2, "cached", 0.3), (4, "ok", 0.2), (5, "ok", 0.5)]


@pytest.fixture()
def run_dir(tmp_path):
    return _write_run(tmp_path, PLAN, "ppo")


def _write_run(path, plan, strategy):
    ss = SearchSpace()
    with TrialStore(path / "trials.sqlite") as store:
        store.set_meta("strategy", strategy)
        for step in [len(plan) - 1, *range(len(plan) - 1)]:  # out of step order, as parallel trials finish
            arch, status, reward = plan[step]
            store.append(
                TrialRecord.from_genotype(
                    ss.sample(random.Random(arch)),
                    trial_id=f"t{step}",
                    step=step,
                    policy_version=0,
                    reward=reward,
                    status=status,
                    cache_hit=status == "cached",
                    duration_s=0.0 if status == "cached" else 360.0,
                    error="boom" if status == "failed" else None,
                )
            )
    return path


def test_summary_counts_trainings_in_step_order(run_dir):
    s = summarize_run(load_run(run_dir), budgets=(2, 3, 10), last=2)
    assert (s.trained, s.failed, s.cache_hits, s.unique) == (5, 1, 1, 5)
    assert s.best == 0.5 and s.best_at_trial == 5
    assert s.best_within == {2: 0.1, 3: 0.3, 10: None}
    assert s.mean_first == pytest.approx(0.2) and s.mean_last == pytest.approx(0.35)
    assert s.training_hours == pytest.approx(0.5)


def test_cli_prints_and_writes_the_table(run_dir, tmp_path, capsys):
    out = tmp_path / "compare.md"
    assert main(["compare", str(run_dir), "--budgets", "2", "3", "--last", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text() == compare_table([load_run(run_dir)], (2, 3), 2)
    row = printed.splitlines()[2].split(" | ")
    assert row[1:6] == ["ppo", "5", "1", "1", "5"] and row[6:10] == ["0.1000", "0.3000", "0.5000", "#5"]
    assert row[-2:] == ["0.50", "360.0 |"]  # 5 trainings of 360 s: 0.5 h, the median one 360 s (cached: none)
    assert main(["compare", str(tmp_path / "missing")]) == 2


def test_strategy_table_averages_runs_of_one_strategy(run_dir, tmp_path):
    other = [(a, st, None if r is None else r + 0.1) for a, st, r in PLAN]  # every reward 0.1 higher
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    runs = [load_run(run_dir), load_run(_write_run(tmp_path / "b", other, "ppo"))]
    runs.append(load_run(_write_run(tmp_path / "c", PLAN[:2], "random")))  # 2 trainings: short of budget 3
    lines = strategy_table(runs, (2, 3), last=2).splitlines()
    assert lines[0] == "| strategy | runs | best @2 | best @3 | mean first 2 | mean last 2 | median s per training |"
    # best@2 of the ppo runs: 0.1 and 0.2 -> mean 0.15, s.e. 0.05
    assert (
        lines[2] == "| ppo | 2 | 0.1500 ± 0.0500 (2) | 0.3500 ± 0.0500 (2) | 0.2500 ± 0.0500 (2) | 0.4000 ± 0.0500 (2) "
        "| 360.0 ± 0.0 (2) |"
    )
    assert lines[3] == "| random | 1 | 0.1000 (1) | - | - | - | 360.0 (1) |"


def test_variants_of_a_strategy_are_named_by_the_options_they_changed(run_dir, tmp_path):
    (tmp_path / "lf").mkdir()
    variant = _write_run(tmp_path / "lf", PLAN, "ppo")
    config = {"controller": {"name": "ppo", "decision_order": "level_first", "lr": 3e-3, "gone": 1}}
    with TrialStore(variant / "trials.sqlite") as store:
        store.set_meta("config", config)  # lr at its default and an option this code lacks: not named
    with TrialStore(run_dir / "trials.sqlite") as store:
        store.set_meta("config", {"controller": {"name": "ppo", "decision_order": "paper"}})
    runs = [load_run(run_dir), load_run(variant)]
    assert [r.strategy for r in runs] == ["ppo", "ppo (decision_order=level_first)"]
    rows = strategy_table(runs, (2,), last=2).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| ppo", "| ppo (decision_order=level_first)"]
