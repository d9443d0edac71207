"""Genotype value: validation messages, JSON and official forms, golden expansion."""

import json
import random

import pytest

from space import Genotype, GenotypeError, SearchSpace, expand, load_builtin, loads, make_genotype
from space.genotype import from_controller_string, to_block_specs, to_controller_string
from space.serialization import dumps, from_dict

PAPER_SPECS = [
    (4, "attention", (1, 3), False),
    (4, "sum", (1, 5), False),
    (3, "sum", (0, 6), True),
    (4, "sum", (6, 7), True),
    (5, "attention", (7, 8), True),
    (7, "attention", (6, 9), True),
    (6, "attention", (9, 10), True),
]
PAPER_STRING = [3, 1, 1, 3, 3, 0, 1, 5, 4, 0, 0, 6, 3, 0, 6, 7, 2, 1, 7, 8, 0, 1, 6, 9, 1, 1, 9, 10]


def test_shipped_paper_genotype_is_the_papers():
    g = load_builtin("nasfpn_paper")
    assert to_block_specs(g) == PAPER_SPECS
    assert g.output_order() == (3, 4, 5, 7, 6)
    assert to_controller_string(g) == PAPER_STRING
    assert from_controller_string(PAPER_STRING) == g


def test_golden_expansion_of_paper_genotype():
    # (level, op, coarse/first, second, unconnected features added) per cell, by hand from
    # docs/search_space.md: n9 (P5 out) also takes raw P5 (index 2), n10 (P7 out) raw P7 (index 4); raw
    # P6 (3) is consumed by n5, raw P3/P4 by n7/n5, so nothing else is added.
    got = [(n.level, n.op, n.first, n.second, n.extras, n.is_output) for n in expand(load_builtin("nasfpn_paper"))]
    assert got == [
        (4, "attention", 3, 1, (), False),  # P6 is coarser than P4: P6 plays c
        (4, "sum", 1, 5, (), False),
        (3, "sum", 0, 6, (), True),
        (4, "sum", 6, 7, (), True),
        (5, "attention", 8, 7, (2,), True),  # n8@P4 coarser than n7@P3
        (7, "attention", 9, 6, (4,), True),  # n9@P5 coarser than n6@P4
        (6, "attention", 10, 9, (), True),  # n10@P7 coarser than n9@P5
    ]


def test_fpn_baseline_is_top_down():
    g = load_builtin("fpn")
    nodes = expand(g)
    assert g.output_order() == (7, 6, 5, 4, 3)
    # every cell after the first takes the raw input at its level plus the output above it
    for k, n in enumerate(nodes[1:], start=1):
        assert {n.first, n.second} == {g.levels.index(n.level), 5 + k - 1}
    assert all(n.op == "sum" and n.extras == () for n in nodes)


def test_unconnected_rule_respects_build_order():
    # P5 raw consumed only AFTER the P5 output is built: it is added to that output.
    g = make_genotype(
        [
            (5, "sum", (0, 1), True),
            (3, "sum", (2, 5), True),
            (4, "sum", (5, 6), True),
            (6, "sum", (3, 4), True),
            (7, "sum", (7, 8), True),
        ]  # fmt: skip
    )
    extras = [n.extras for n in expand(g)]
    assert extras == [(2,), (), (), (), ()]


@pytest.mark.parametrize(
    "cells, message",
    [
        ([(3, "sum", (0, 0), True)] + PAPER_SPECS[3:], "cell 0: inputs=[0, 0], expected two different entries"),
        ([(3, "sum", (0, 9), True)] + PAPER_SPECS[3:], "cell 0: input j=9, expected an index into the 5 earlier"),
        ([(4, "max", (1, 3), False)] + PAPER_SPECS[1:], "cell 0: op='max', expected one of"),
        ([(8, "sum", (1, 3), False)] + PAPER_SPECS[1:], "cell 0: level=8, expected an integer in 3..7"),
        (PAPER_SPECS[:6] + [(7, "sum", (9, 10), True)], "cell 6: level 7 is already produced"),
        (
            PAPER_SPECS[:2] + [(3, "sum", (0, 6), False)] + PAPER_SPECS[3:],
            "cell 2: is_output=False, expected an output",
        ),
        (PAPER_SPECS[:3], "a genotype needs at least 5 cells"),
        ([(4, "sum", (1, "3"), False)] + PAPER_SPECS[1:], "cell 0: input j='3'"),
        ([(4, "sum", (1, True), False)] + PAPER_SPECS[1:], "cell 0: input j=True"),
    ],
)
def test_invalid_genotypes_are_rejected_with_their_message(cells, message):
    with pytest.raises(GenotypeError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        make_genotype(cells)


def test_intermediate_level_outside_space_is_named():
    g = make_genotype([(3, "sum", (0, 1), False)] + PAPER_SPECS[1:])
    with pytest.raises(GenotypeError, match="cell 0: level 3 is not allowed for an intermediate cell"):
        SearchSpace().contains(g)


def test_json_round_trip_and_forms():
    g = load_builtin("nasfpn_paper")
    assert loads(dumps(g)) == g
    assert from_dict([list(c[:2]) + [list(c[2]), c[3]] for c in PAPER_SPECS]) == g
    assert from_dict({"controller_string": PAPER_STRING}) == g
    d = json.loads(dumps(g))
    d["cells"][0]["inputs"] = [1, 2]
    with pytest.raises(GenotypeError, match="stored hash .* does not match"):
        from_dict(d)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "malformed JSON"),
        ('{"cells": "x"}', "'cells' must be a list"),
        ('{"min_level": 3}', "missing field 'cells'"),
        ('{"cells": [{"level": 4}]}', "cell 0: missing field"),
        ('{"version": 9, "cells": []}', "format version 9 is not supported"),
        ('{"cells": [{"level": 4, "op": "sum", "inputs": [1, 2], "is_output": false, "x": 1}]}', "unknown field"),
        ('"hello"', "expected a JSON object or list"),
    ],
)
def test_malformed_json_messages(text, message):
    with pytest.raises(GenotypeError, match=message):
        loads(text)


def test_genotype_is_immutable_and_hashable():
    g = load_builtin("nasfpn_paper")
    with pytest.raises(AttributeError):
        g.min_level = 2  # type: ignore[misc]
    assert len({g, load_builtin("nasfpn_paper")}) == 1
    assert isinstance(g, Genotype)


def test_random_genotypes_round_trip_json():
    space, rng = SearchSpace(), random.Random(0)
    for _ in range(300):
        g = space.sample(rng)
        assert loads(dumps(g)) == g
        assert from_controller_string(to_controller_string(g)) == g
