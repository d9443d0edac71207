"""Statistics of the variance study: Kendall tau-b and the SNR summary."""

import math
import statistics

import pytest

from studies.variance import genotypes, kendall_tau, summarize


def test_kendall_tau_known_values():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    # tau-b with a tie in x: (C - D) / sqrt((n0 - n1) (n0 - n2)) = 4 / sqrt(5 * 6)
    assert kendall_tau([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(5 * 6))
    assert math.isnan(kendall_tau([1.0], [2.0]))


def test_summary_separates_seed_effect_from_noise():
    # genotype effect 0, 1, 2; seed effect +0.5 for seed 1; a little interaction noise
    values = {"a": [0.0, 0.5], "b": [1.0, 1.6], "c": [2.0, 2.4]}
    s = summarize(values, {"a": 0.1, "b": 0.2, "c": 0.3})
    assert s["between_std"] == pytest.approx(statistics.stdev([0.25, 1.3, 2.2]))
    assert s["within_std"] == pytest.approx(math.sqrt((0.125 + 0.18 + 0.08) / 3))
    assert s["crn_residual_std"] < 0.1 < s["within_std"]  # the shared seed effect cancels
    assert s["kendall_tau"] == 1.0 and s["ratio"] == pytest.approx(s["between_std"] / s["within_std"])


def test_genotypes_are_paper_fpn_and_distinct_random_samples():
    gs = genotypes(8, 2019)
    assert list(gs)[:2] == ["paper", "fpn"] and len(gs) == 10
    assert len({g.hash() for g in gs.values()}) == 10
    assert list(genotypes(8, 2019)) == list(gs)  # deterministic


def test_compare_matches_genotypes_by_hash():
    from studies.variance import compare

    ref = {"rows": [{"hash": h, "mean": m} for h, m in (("a", 0.1), ("b", 0.2), ("c", 0.3), ("x", 0.9))]}
    cand = {
        "rows": [{"hash": h, "mean": m} for h, m in (("c", 0.35), ("a", 0.05), ("b", 0.3))],
        "summary": {"ratio": 3.0},
    }
    out = compare(ref, cand)
    assert out["genotypes"] == 3 and out["kendall_tau"] == 1.0 and out["ratio"] == 3.0
    assert abs(out["mean_shift"] - (0.05 - 0.05 + 0.1) / 3) < 1e-12
    cand["rows"][0]["mean"] = 0.0  # c now ranks last
    assert compare(ref, cand)["kendall_tau"] == -1 / 3


def test_without_long_runs_tau_is_nan_not_minus_one():
    import math

    from studies.variance import summarize

    out = summarize({"a": [0.1, 0.2], "b": [0.3, 0.4]}, {"a": float("nan"), "b": float("nan")})
    assert math.isnan(out["kendall_tau"]) and out["ratio"] > 0


def test_a_bad_reference_is_refused_before_any_training(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = subprocess.run(
        [sys.executable, "-m", "studies.variance", "random=0", f"against={bad}", f"out_dir={tmp_path}/out"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: against={bad}: not a readable variance.json")
    assert not (tmp_path / "out" / "variance.json").exists()
