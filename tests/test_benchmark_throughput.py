"""Trainings per hour of a search, read from its record (benchmarks.search_throughput)."""

import random

import pytest

from benchmarks.search_throughput import throughput
from results import TrialRecord, TrialStore
from space import SearchSpace


def test_throughput_spans_first_start_to_last_end(tmp_path):
    ss = SearchSpace()
    # (end time, duration, status): two workers; the cached and failed records do not count
    plan = [
        (110.0, 10.0, "ok"),
        (112.0, 12.0, "ok"),
        (121.0, 11.0, "ok"),
        (121.5, 0.0, "cached"),
        (130.0, 9.0, "failed"),
    ]
    with TrialStore(tmp_path / "trials.sqlite") as store:
        for k, (end, duration, status) in enumerate(plan):
            store.append(
                TrialRecord.from_genotype(
                    ss.sample(random.Random(k % 3)),
                    trial_id=f"t{k}",
                    step=k,
                    policy_version=0,
                    reward=None if status == "failed" else 0.02,
                    status=status,
                    cache_hit=status == "cached",
                    duration_s=duration,
                    error="boom" if status == "failed" else None,
                    created_at=end,
                )
            )
    per_hour, median_s, hashes = throughput(tmp_path / "trials.sqlite")
    # 3 trainings between the first start (112 - 12 = 100) and the last end (121): 21 s
    assert per_hour == pytest.approx(3600 * 3 / 21)
    assert median_s == 11.0 and len(hashes) == 3
