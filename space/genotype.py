"""The NAS-FPN architecture as a frozen, self-validating value (no torch here).

A genotype is a list of merging cells over a candidate pool. The pool starts as the
input features [P_min .. P_max] (indices 0 .. L-1, L = number of levels); every cell
appends its output. A cell is (level, op, (i, j), is_output), exactly the block spec
of the official tensorflow/tpu code. The last L cells are the output cells, one per
level (the official builder takes the last L pool entries as the outputs).

Semantics are defined on the *sorted* input pair (docs/search_space.md): for `attention`
with both inputs at the same level, the lower pool index plays the coarse input. Every
export writes the sorted pairs (`canonical`), so the official builders, which take the first
listed input there, build the same network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

OPS: tuple[str, ...] = ("sum", "attention")
_MAX_SUPPORTED_LEVEL = 12
# The largest genotype any search space here makes (SearchSpace keeps num_cells within it):
# the paper's spaces have 5 + 2 cells; a file with thousands kept every tool busy for minutes.
MAX_CELLS = 64


class GenotypeError(ValueError):
    """A genotype that is not valid. The message names the cell, the field and the rule."""


@dataclass(frozen=True)
class Cell:
    """One merging cell: output `level`, binary `op`, two pool `inputs`, `is_output`."""

    level: int
    op: str
    inputs: tuple[int, int]
    is_output: bool

    def sorted_inputs(self) -> tuple[int, int]:
        """The input pair in ascending order (the canonical form)."""
        i, j = self.inputs
        return (i, j) if i <= j else (j, i)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class Genotype:
    """A pyramid network architecture. Constructed only valid.

    Raises:
        GenotypeError: on any violation, naming the cell index and field.
    """

    cells: tuple[Cell, ...]
    min_level: int = 3
    max_level: int = 7

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(self.cells))
        self._validate()

    # -- derived -------------------------------------------------------------------
    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(range(self.min_level, self.max_level + 1))

    @property
    def num_levels(self) -> int:
        return self.max_level - self.min_level + 1

    @property
    def num_intermediate(self) -> int:
        return len(self.cells) - self.num_levels

    def pool_levels(self) -> list[int]:
        """Level of every pool entry: the L inputs, then one per cell."""
        return list(self.levels) + [c.level for c in self.cells]

    def output_order(self) -> tuple[int, ...]:
        """Levels of the output cells in cell order (paper genotype: 3, 4, 5, 7, 6)."""
        return tuple(c.level for c in self.cells[self.num_intermediate :])

    def canonical(self) -> Genotype:
        """The same architecture with every input pair sorted."""
        cells = tuple(Cell(c.level, c.op, c.sorted_inputs(), c.is_output) for c in self.cells)
        return Genotype(cells, self.min_level, self.max_level)

    def hash(self) -> str:
        """Canonical hash, identical for graphs equal up to relabelling (see canonical.py)."""
        from space.canonical import canonical_hash

        return canonical_hash(self)

    # -- validation ----------------------------------------------------------------
    def _validate(self) -> None:
        if not (_is_int(self.min_level) and _is_int(self.max_level)):
            raise GenotypeError("min_level and max_level must be integers")
        if not (1 <= self.min_level < self.max_level <= _MAX_SUPPORTED_LEVEL):
            raise GenotypeError(
                f"levels must satisfy 1 <= min_level < max_level <= {_MAX_SUPPORTED_LEVEL},"
                f" got min_level={self.min_level}, max_level={self.max_level}"
            )
        n_levels = self.num_levels
        check_cell_count(len(self.cells))
        if len(self.cells) < n_levels:
            raise GenotypeError(
                f"a genotype needs at least {n_levels} cells (one output cell per level"
                f" {self.min_level}..{self.max_level}), got {len(self.cells)}"
            )
        first_output = len(self.cells) - n_levels
        seen_outputs: set[int] = set()
        for k, cell in enumerate(self.cells):
            if not isinstance(cell, Cell):
                raise GenotypeError(f"cell {k}: expected a Cell, got {type(cell).__name__}")
            self._validate_cell(k, cell, pool_size=n_levels + k)
            expect_output = k >= first_output
            if cell.is_output != expect_output:
                what = "an output cell" if expect_output else "an intermediate cell"
                raise GenotypeError(
                    f"cell {k}: is_output={cell.is_output}, expected {what}: the last"
                    f" {n_levels} cells are the output cells, one per level"
                )
            if cell.is_output:
                if cell.level in seen_outputs:
                    raise GenotypeError(
                        f"cell {k}: level {cell.level} is already produced by an earlier"
                        " output cell; each level needs exactly one output cell"
                    )
                seen_outputs.add(cell.level)
        from space.canonical import check_hashable

        check_hashable(self)  # a file with many identical cells must not hang every tool

    def _validate_cell(self, k: int, cell: Cell, pool_size: int) -> None:
        if not _is_int(cell.level) or not (self.min_level <= cell.level <= self.max_level):
            raise GenotypeError(
                f"cell {k}: level={cell.level!r}, expected an integer in {self.min_level}..{self.max_level}"
            )
        if cell.op not in OPS:
            raise GenotypeError(f"cell {k}: op={cell.op!r}, expected one of {list(OPS)}")
        if not isinstance(cell.is_output, bool):
            raise GenotypeError(f"cell {k}: is_output={cell.is_output!r}, expected true/false")
        inputs = cell.inputs
        if not (isinstance(inputs, tuple) and len(inputs) == 2):
            raise GenotypeError(f"cell {k}: inputs={inputs!r}, expected a pair of pool indices")
        for name, idx in zip(("i", "j"), inputs):
            if not _is_int(idx) or not (0 <= idx < pool_size):
                raise GenotypeError(
                    f"cell {k}: input {name}={idx!r}, expected an index into the"
                    f" {pool_size} earlier pool entries (0..{pool_size - 1})"
                )
        if inputs[0] == inputs[1]:
            raise GenotypeError(f"cell {k}: inputs={list(inputs)}, expected two different entries")


def check_cell_count(n: int) -> None:
    """Raise GenotypeError for more than MAX_CELLS cells (checked before any cell is parsed)."""
    if n > MAX_CELLS:
        raise GenotypeError(f"{n} cells: a genotype has at most {MAX_CELLS} (the search spaces' bound)")


def make_genotype(cells: Iterable[Sequence[object]], min_level: int = 3, max_level: int = 7) -> Genotype:
    """Build from (level, op, (i, j), is_output) tuples, the official block-spec form."""
    out = []
    for k, spec in enumerate(cells):
        if len(spec) != 4:
            raise GenotypeError(f"cell {k}: expected (level, op, (i, j), is_output), got {spec!r}")
        level, op, inputs, is_output = spec
        if not isinstance(inputs, (list, tuple)):
            raise GenotypeError(f"cell {k}: inputs={inputs!r}, expected a pair of pool indices")
        out.append(Cell(level, op, tuple(inputs), is_output))  # type: ignore[arg-type]
    return Genotype(tuple(out), min_level, max_level)


def to_block_specs(genotype: Genotype) -> list[tuple[int, str, tuple[int, int], bool]]:
    """The official tensorflow/tpu block-spec tuples, input pairs sorted (see `canonical`)."""
    return [(c.level, c.op, c.sorted_inputs(), c.is_output) for c in genotype.cells]


def from_controller_string(values: Sequence[int], min_level: int = 3, max_level: int = 7) -> Genotype:
    """Parse the integer form [level_index, op, i, j] * n_cells of the earliest public code.

    level_index indexes the levels from the top: 0 -> max_level ... L-1 -> min_level;
    op 0 = sum, 1 = attention. The last L cells are the outputs.
    """
    if not isinstance(values, (list, tuple)):
        raise GenotypeError(f"controller string must be a list of integers, got {type(values).__name__}")
    if not (_is_int(min_level) and _is_int(max_level)):
        raise GenotypeError("min_level and max_level must be integers")
    values = list(values)
    if len(values) % 4 != 0 or not values:
        raise GenotypeError(f"controller string length {len(values)} is not a positive multiple of 4")
    if not all(_is_int(v) for v in values):
        raise GenotypeError("controller string must hold integers only")
    n_levels = max_level - min_level + 1
    n_cells = len(values) // 4
    check_cell_count(n_cells)
    cells = []
    for k in range(n_cells):
        level_index, op_index, i, j = values[4 * k : 4 * k + 4]
        if not (0 <= level_index < n_levels):
            raise GenotypeError(f"cell {k}: level index {level_index}, expected 0..{n_levels - 1}")
        if not (0 <= op_index < len(OPS)):
            raise GenotypeError(f"cell {k}: op index {op_index}, expected 0..{len(OPS) - 1}")
        level = max_level - level_index
        cells.append(Cell(level, OPS[op_index], (i, j), k >= n_cells - n_levels))
    return Genotype(tuple(cells), min_level, max_level)


def to_controller_string(genotype: Genotype) -> list[int]:
    """Inverse of `from_controller_string` up to `canonical` (input pairs are written sorted)."""
    out: list[int] = []
    for c in genotype.cells:
        i, j = c.sorted_inputs()
        out += [genotype.max_level - c.level, OPS.index(c.op), i, j]
    return out
