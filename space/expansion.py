"""Expansion of a genotype into the exact computation the builder performs (no torch).

This is the one place where the paper's semantics live; the pyramid builder and the
canonical hash both read it:

* the input pair is sorted; for `attention` the input at the higher (coarser) level is
  the coarse input c, the other is f; at equal levels the lower pool index is c;
* unconnected features: when an output cell is built, every earlier pool entry (the
  raw inputs included) at the same level that no cell has consumed so far is added to
  the combined tensor before the post-op, and then counts as consumed (official
  `_build_feature_pyramid`: `num_output_connections`).
"""

from __future__ import annotations

from dataclasses import dataclass

from space.genotype import Genotype


@dataclass(frozen=True)
class MergeNode:
    """One cell as computed: out = op(first, second) + sum(extras), at `level`.

    For `attention`, first is the coarse input c and second the fine input f:
    out = c + f * sigmoid(global_max(c)). For `sum`, first < second.
    """

    level: int
    op: str
    first: int
    second: int
    extras: tuple[int, ...]
    is_output: bool


def expand(genotype: Genotype) -> tuple[MergeNode, ...]:
    """The merge nodes of one pyramid network, in build order (pool index L + k)."""
    levels = genotype.pool_levels()
    consumed = [0] * genotype.num_levels
    nodes = []
    for cell in genotype.cells:
        a, b = cell.sorted_inputs()
        if cell.op == "attention" and levels[b] > levels[a]:
            a, b = b, a  # b is coarser: it plays c
        consumed[a] += 1
        consumed[b] += 1
        extras: list[int] = []
        if cell.is_output:
            for idx, count in enumerate(consumed):
                if count == 0 and levels[idx] == cell.level:
                    consumed[idx] += 1
                    extras.append(idx)
        nodes.append(MergeNode(cell.level, cell.op, a, b, tuple(extras), cell.is_output))
        consumed.append(0)
    return tuple(nodes)


def output_indices(genotype: Genotype) -> dict[int, int]:
    """Map level -> pool index of the output cell that produces it."""
    first = genotype.num_levels + genotype.num_intermediate
    return {c.level: first + k for k, c in enumerate(genotype.cells[genotype.num_intermediate :])}
