"""The records-fitted landscape that the controller defaults are tuned on."""

from pathlib import Path

import numpy as np
import pytest

from benchmarks.controller_budget import parse_variant, picked, run_search
from benchmarks.records_landscape import RecordsFitted, conjunction_features, load_records, seed_noise_std
from space import SearchSpace, loads

SPACE = SearchSpace()


@pytest.fixture(scope="module")
def fitted():
    genotypes, rewards = load_records()
    return RecordsFitted(SPACE, genotypes, rewards, seed_noise_std()), genotypes, rewards


def test_features_of_the_paper_genotype_and_fpn():
    paper = loads(Path("space/genotypes/nasfpn_paper.json").read_text())
    fpn = loads(Path("space/genotypes/fpn.json").read_text())
    # paper: P3 reads C3; P4 reads intermediate cells of levels 4 and 3 (nearest distance 0)
    assert conjunction_features(paper).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    # FPN: every output reads its own backbone level
    assert conjunction_features(fpn).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_landscape_is_calibrated_on_the_records(fitted):
    landscape, genotypes, rewards = fitted
    assert len(rewards) >= 240 and 0.015 < rewards.mean() < 0.025
    # reading the same-level backbone feature at P3 is worth the most, distance costs
    assert landscape.weights[0] > 0.005 and landscape.weights[3] < 0 and landscape.weights[4] < 0
    assert landscape.residual_std > 0 and landscape.noise_std == pytest.approx(0.0031, abs=0.0005)
    g = genotypes[0]
    assert landscape.value(g) == landscape.value(g.canonical())  # a fixed value per architecture


def test_budget_simulation_counts_trainings_and_cache_hits(fitted):
    landscape, *_ = fitted
    label, name, options = parse_variant("evolution:population_size=8,sample_size=4")
    assert (name, options) == ("evolution", {"population_size": 8, "sample_size": 4})
    run = run_search(name, options, landscape, seed=0, trainings=40, workers=2)
    assert len(run.values) == len(run.observed) == 40 and run.unique <= 40
    assert picked(run, 40) == run.values[int(np.argmax(run.observed))]
    assert parse_variant("ppo_paper")[1:] == __import__("controller").preset("ppo_paper")
