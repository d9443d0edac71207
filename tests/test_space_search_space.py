"""Search space: size formula, masks, decode/encode round trip, uniform sampling."""

import math
import random
from collections import Counter

import pytest

from space import GenotypeError, SearchSpace, load_builtin


def test_paper_space_size_matches_formula():
    s = SearchSpace()
    pairs = 10 * 15 * 21 * 28 * 36 * 45 * 55
    assert s.size() == pairs * 4**2 * math.factorial(5) * 2**7 == 1_931_334_451_200_000
    assert s.size(ordered_pairs=True) == s.size() * 2**7
    assert s.num_steps == 28 and s.max_pool_size == 11


def _random_actions(space, rng):
    actions = []
    for _ in range(space.num_steps):
        m = space.mask(actions)
        actions.append(rng.choice([c for c, ok in enumerate(m) if ok]))
    return actions


def test_masked_sequences_always_decode_and_round_trip():
    s, rng = SearchSpace(), random.Random(1)
    for _ in range(2000):
        a = _random_actions(s, rng)
        g = s.decode(a)  # would raise if the masks admitted an invalid genotype
        s.contains(g)
        assert s.encode(g) == a
        assert s.decode(s.encode(g)) == g


def test_masks_forbid_exactly_the_invalid_choices():
    s = SearchSpace()
    assert s.mask([]) == [True] * 5
    assert s.mask([2]) == [True, True, False, True, True]
    assert s.mask([2, 0]) == [False, True, True, True, True]  # no level 3 for intermediate cells
    prefix = [0, 1, 1, 0, 0, 1, 1, 0]  # two intermediate cells at level 4
    prefix += [0, 1, 0, 0]  # first output cell: level 3
    assert s.mask(prefix + [2, 3]) == [False, True, True, True, True]
    assert s.mask(prefix + [2, 3, 4, 1, 0, 1]) == [False, True, True, True, False]


def test_decode_rejects_invalid_actions():
    s = SearchSpace()
    a = s.encode(load_builtin("nasfpn_paper"))
    with pytest.raises(ValueError, match="action 1 .cell 0 input_j. = 1 is not a valid choice"):
        s.decode([1, 1] + a[2:])
    with pytest.raises(ValueError, match="expected 28 actions"):
        s.decode(a[:-1])


def test_encode_rejects_genotype_outside_space():
    with pytest.raises(GenotypeError, match="0 intermediate cells, the space has 2"):
        SearchSpace().encode(load_builtin("fpn"))


def test_uniform_sampling_over_sorted_pairs():
    # first cell: 10 unordered pairs of 5 inputs, each ~ 1/10; ops and levels uniform too
    s, rng = SearchSpace(), random.Random(2)
    n = 6000
    gs = [s.sample(rng) for _ in range(n)]
    pairs = Counter(g.cells[0].inputs for g in gs)
    assert set(pairs) == {(i, j) for i in range(5) for j in range(i + 1, 5)}
    chi2 = sum((c - n / 10) ** 2 / (n / 10) for c in pairs.values())
    assert chi2 < 27.9  # chi-square, 9 dof, p = 0.001
    assert all(g.cells[0].inputs[0] < g.cells[0].inputs[1] for g in gs)
    orders = Counter(g.output_order() for g in gs)
    assert len(orders) == 120


def test_custom_space_parameters():
    s = SearchSpace(min_level=3, max_level=6, num_intermediate=3, intermediate_levels=(5, 6), ops=("sum",))
    g = s.sample(random.Random(0))
    assert g.num_intermediate == 3 and all(c.level in (5, 6) for c in g.cells[:3])
    assert all(c.op == "sum" for c in g.cells)
    with pytest.raises(ValueError, match="intermediate_levels"):
        SearchSpace(intermediate_levels=(9,))
