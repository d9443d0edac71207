"""Canonical hash: invariant under relabelling, sensitive to every real change."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from space import Cell, Genotype, SearchSpace, load_builtin, make_genotype
from space.canonical import canonical_encoding

SPACE = SearchSpace()


def _swap_independent_intermediates(g: Genotype) -> Genotype | None:
    """Swap cells 0 and 1 when cell 1 does not read cell 0, relabelling pool indices."""
    c0, c1 = g.cells[0], g.cells[1]
    if 5 in c1.inputs:
        return None
    # The tie rule makes the lower index the coarse input of an equal-level attention:
    # a cell reading both swapped cells that way really changes, so it is not a relabelling.
    if c0.level == c1.level and any(c.op == "attention" and set(c.inputs) == {5, 6} for c in g.cells):
        return None
    relabel = {5: 6, 6: 5}

    def fix(c: Cell) -> Cell:
        return Cell(c.level, c.op, tuple(relabel.get(i, i) for i in c.inputs), c.is_output)

    return Genotype((c1, c0) + tuple(fix(c) for c in g.cells[2:]), g.min_level, g.max_level)


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_hash_invariant_under_pair_order_and_independent_swaps(seed):
    g = SPACE.sample(random.Random(seed))
    flipped = Genotype(tuple(Cell(c.level, c.op, (c.inputs[1], c.inputs[0]), c.is_output) for c in g.cells))
    assert flipped.hash() == g.hash()
    swapped = _swap_independent_intermediates(g)
    if swapped is not None:
        assert swapped.hash() == g.hash()
        assert swapped != g or g.cells[0] == g.cells[1]


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 6))
def test_hash_changes_with_op(seed, k):
    g = SPACE.sample(random.Random(seed))
    c = g.cells[k]
    other = "sum" if c.op == "attention" else "attention"
    cells = list(g.cells)
    cells[k] = Cell(c.level, other, c.inputs, c.is_output)
    assert Genotype(tuple(cells)).hash() != g.hash()


def test_distinct_random_genotypes_rarely_collide():
    rng = random.Random(3)
    gs = {SPACE.sample(rng) for _ in range(5000)}
    hashes = {g.hash() for g in gs}
    encodings = {str(canonical_encoding(g)) for g in gs}
    assert len(hashes) == len(encodings)  # no truncation collision
    assert len(hashes) >= len(gs) - 5  # only isomorphic duplicates merge


def test_known_isomorphic_and_distinct_pairs():
    paper = load_builtin("nasfpn_paper")
    assert paper.hash() == load_builtin("nasfpn_paper").canonical().hash()
    # changing one input or one level changes the hash
    specs = [(c.level, c.op, c.inputs, c.is_output) for c in paper.cells]
    moved = specs.copy()
    moved[0] = (5, "attention", (1, 3), False)
    rewired = specs.copy()
    rewired[1] = (4, "sum", (2, 5), False)
    assert make_genotype(moved).hash() != paper.hash()
    assert make_genotype(rewired).hash() != paper.hash()


def test_identical_twin_cells_are_distinguished_from_one_shared_cell():
    # two identical intermediates each read once vs one intermediate read twice
    outs = [(3, "sum", (0, 5), True), (4, "sum", (1, 6), True), (5, "sum", (2, 7), True),
            (6, "sum", (3, 8), True), (7, "sum", (4, 9), True)]  # fmt: skip
    twins = make_genotype([(5, "sum", (0, 1), False), (5, "sum", (0, 1), False)] + outs)
    shared_outs = [outs[0], (4, "sum", (1, 5), True)] + outs[2:]
    shared = make_genotype([(5, "sum", (0, 1), False), (5, "sum", (0, 1), False)] + shared_outs)
    assert twins.hash() != shared.hash()
    swapped_twins = make_genotype(
        [(5, "sum", (0, 1), False), (5, "sum", (1, 0), False)] + [outs[0], (4, "sum", (1, 5), True)] + outs[2:]
    )
    # cell 6 read instead of cell 5: an automorphism of the twins, same graph
    assert (
        make_genotype(
            [(5, "sum", (0, 1), False), (5, "sum", (0, 1), False)]
            + [(3, "sum", (0, 6), True), (4, "sum", (1, 5), True)]
            + outs[2:]
        ).hash()
        == twins.hash()
    )
    assert swapped_twins.hash() == shared.hash()
