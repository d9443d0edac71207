"""Canonical hash of a genotype: equal for graphs that are the same up to relabelling.

The hash is computed on the expanded computation graph (`expansion.expand`), so it
sees what the builder builds: two independent intermediate cells swapped, or a pair
written (j, i) instead of (i, j), give the same hash; a different op, level, input or
unconnected-feature addition gives a different one.

Method (nasbench-style): every node gets a Merkle label from its own attributes and its
children's labels (operands of `sum` and the unconnected extras as multisets, the
(c, f) roles of `attention` kept in order); nodes are ordered by that label, ties
(structurally identical nodes) are broken by taking the smallest encoding over the
permutations within each tie group; the encoding lists every node with its children as
canonical indices and is hashed with SHA-256. Two graphs give the same encoding exactly
when they are isomorphic.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math

from space.expansion import MergeNode, expand
from space.genotype import Genotype, GenotypeError

HASH_CHARS = 16  # 64 bits: collisions are negligible for the ~1e4-1e5 samples of a search
MAX_TIE_ORDERS = 5040  # 7!: ~0.1 s; 9 identical cells would take ~13 s, 12 about a day


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, separators=(",", ":")).encode()).hexdigest()


def _merkle_labels(genotype: Genotype, nodes: tuple[MergeNode, ...]) -> list[str]:
    labels = [_digest(["in", level]) for level in genotype.levels]
    for n in nodes:
        extras = sorted(labels[e] for e in n.extras)
        if n.op == "sum":
            operands = sorted([labels[n.first], labels[n.second]] + extras)
            labels.append(_digest([n.level, n.op, n.is_output, operands]))
        else:
            labels.append(_digest([n.level, n.op, n.is_output, labels[n.first], labels[n.second], extras]))
    return labels


def _encode(nodes: tuple[MergeNode, ...], order: list[int], n_inputs: int) -> list[list[object]]:
    # position of each pool index in canonical order (inputs keep their level index)
    rank = {idx: idx for idx in range(n_inputs)}
    rank.update({n_inputs + k: n_inputs + pos for pos, k in enumerate(order)})
    out = []
    for k in order:
        n = nodes[k]
        extras = sorted(rank[e] for e in n.extras)
        pair = [rank[n.first], rank[n.second]]
        if n.op == "sum":
            pair = sorted(pair)
        out.append([n.level, n.op, int(n.is_output), pair, extras])
    return out


def _tie_groups(genotype: Genotype, nodes: tuple[MergeNode, ...]) -> list[list[int]]:
    # nodes grouped by Merkle label (a group of several = structurally identical nodes), by label
    labels = _merkle_labels(genotype, nodes)[genotype.num_levels :]
    groups: dict[str, list[int]] = {}
    for k in sorted(range(len(nodes)), key=lambda k: labels[k]):
        groups.setdefault(labels[k], []).append(k)
    return [groups[key] for key in sorted(groups)]


def check_hashable(genotype: Genotype) -> None:
    """Raise GenotypeError if the hash would try more than MAX_TIE_ORDERS orderings of
    structurally identical cells (the tie-break is factorial in their number)."""
    groups = _tie_groups(genotype, expand(genotype))
    if math.prod(math.factorial(len(g)) for g in groups) > MAX_TIE_ORDERS:
        largest = max(len(g) for g in groups)
        raise GenotypeError(
            f"{largest} structurally identical cells: too many to hash canonically"
            f" (at most {MAX_TIE_ORDERS} orderings of identical cells); remove the duplicate cells"
        )


def canonical_encoding(genotype: Genotype) -> list[object]:
    """The relabelling-invariant description that the hash is taken of."""
    nodes = expand(genotype)
    n_in = genotype.num_levels
    ordered_groups = _tie_groups(genotype, nodes)
    best = None
    # Ties are structurally identical nodes: rare, and groups are tiny (usually size 1).
    for perms in itertools.product(*(itertools.permutations(g) for g in ordered_groups)):
        order = [k for group in perms for k in group]
        enc = _encode(nodes, order, n_in)
        if best is None or enc < best:
            best = enc
    return [genotype.min_level, genotype.max_level, best]


def canonical_hash(genotype: Genotype) -> str:
    """Hex digest (HASH_CHARS characters) of `canonical_encoding`."""
    return _digest(canonical_encoding(genotype))[:HASH_CHARS]
