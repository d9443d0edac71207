"""The NAS-FPN search space as a sequence of controller decisions (no torch).

Per cell k (pool size n_k = L + k, L levels) the controller makes four decisions, in the
paper's order: input i (n_k choices), input j (n_k choices, j != i), output level (L
choices, indices into `levels`), op (|ops| choices). Masks:
  * input j: every pool index but i (two of n without replacement);
  * level, intermediate cells: only `intermediate_levels` (paper: not the finest level);
  * level, output cells: the levels no earlier output cell has produced (a permutation).

Size of the space with sorted input pairs (the paper's count):
    prod_{k=0}^{C-1} C(L + k, 2)  *  |intermediate_levels|^I  *  L!  *  |ops|^C
with C = I + L cells. Paper space (L=5, I=2, 4 intermediate levels, 2 ops):
    (10*15*21*28*36*45*55) * 4^2 * 120 * 2^7 = 1,931,334,451,200,000 ~ 1.9e15.
The controller's ordered decision sequences number 2^C times more (each unordered pair
is reached as (i, j) and (j, i)); uniform ordered choice is uniform over sorted pairs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from space.genotype import OPS, Cell, Genotype, GenotypeError

KINDS = ("input_i", "input_j", "level", "op")


@dataclass(frozen=True)
class Decision:
    """One controller step: which cell, which kind of choice, how many choices."""

    cell: int
    kind: str
    num_choices: int


@dataclass(frozen=True)
class SearchSpace:
    """Parameters of the scalable cross-scale space. Defaults are the paper's."""

    min_level: int = 3
    max_level: int = 7
    num_intermediate: int = 2
    intermediate_levels: tuple[int, ...] | None = None  # None: every level but min_level
    ops: tuple[str, ...] = OPS
    decisions: tuple[Decision, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.min_level < self.max_level):
            raise ValueError(f"min_level {self.min_level} must be below max_level {self.max_level}")
        if self.num_intermediate < 0:
            raise ValueError(f"num_intermediate must be >= 0, got {self.num_intermediate}")
        if self.intermediate_levels is None:
            object.__setattr__(self, "intermediate_levels", self.levels[1:])
        object.__setattr__(self, "intermediate_levels", tuple(self.intermediate_levels))
        object.__setattr__(self, "ops", tuple(self.ops))
        bad = [lv for lv in self.intermediate_levels if lv not in self.levels]
        if bad or not self.intermediate_levels:
            raise ValueError(f"intermediate_levels {self.intermediate_levels} must be non-empty, within {self.levels}")
        unknown = [op for op in self.ops if op not in OPS]
        if unknown or not self.ops:
            raise ValueError(f"ops {self.ops} must be a non-empty subset of {OPS}")
        decisions = []
        for k in range(self.num_cells):
            n = self.num_levels + k
            decisions += [
                Decision(k, "input_i", n),
                Decision(k, "input_j", n),
                Decision(k, "level", self.num_levels),
                Decision(k, "op", len(self.ops)),
            ]
        object.__setattr__(self, "decisions", tuple(decisions))

    # -- shape of the space --------------------------------------------------------
    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(range(self.min_level, self.max_level + 1))

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    @property
    def num_cells(self) -> int:
        return self.num_intermediate + self.num_levels

    @property
    def num_steps(self) -> int:
        return len(self.decisions)

    @property
    def max_pool_size(self) -> int:
        """Largest candidate pool (the last cell's): size of an input head with masks."""
        return self.num_levels + self.num_cells - 1

    def size(self, ordered_pairs: bool = False) -> int:
        """Exact number of architectures (sorted pairs), or of decision sequences."""
        pairs = math.prod(math.comb(self.num_levels + k, 2) for k in range(self.num_cells))
        if ordered_pairs:
            pairs *= 2**self.num_cells
        levels = len(self.intermediate_levels) ** self.num_intermediate * math.factorial(self.num_levels)
        return pairs * levels * len(self.ops) ** self.num_cells

    # -- masks ---------------------------------------------------------------------
    def mask(self, prefix: list[int] | tuple[int, ...]) -> list[bool]:
        """Valid choices for decision number len(prefix), given the earlier actions."""
        step = len(prefix)
        if step >= self.num_steps:
            raise ValueError(f"all {self.num_steps} decisions are already made")
        d = self.decisions[step]
        if d.kind == "input_i" or d.kind == "op":
            return [True] * d.num_choices
        if d.kind == "input_j":
            i = prefix[step - 1]
            return [c != i for c in range(d.num_choices)]
        # level
        if d.cell < self.num_intermediate:
            return [lv in self.intermediate_levels for lv in self.levels]
        used = {prefix[4 * c + 2] for c in range(self.num_intermediate, d.cell)}
        return [c not in used for c in range(d.num_choices)]

    # -- actions <-> genotype --------------------------------------------------------
    def decode(self, actions: list[int] | tuple[int, ...]) -> Genotype:
        """Turn a full decision sequence into a genotype. Raises ValueError if invalid."""
        actions = [int(a) for a in actions]
        if len(actions) != self.num_steps:
            raise ValueError(f"expected {self.num_steps} actions, got {len(actions)}")
        for step, a in enumerate(actions):
            m = self.mask(actions[:step])
            if not (0 <= a < len(m) and m[a]):
                d = self.decisions[step]
                raise ValueError(f"action {step} (cell {d.cell} {d.kind}) = {a} is not a valid choice")
        cells = []
        for k in range(self.num_cells):
            i, j, lv, op = actions[4 * k : 4 * k + 4]
            cells.append(Cell(self.levels[lv], self.ops[op], (i, j), k >= self.num_intermediate))
        return Genotype(tuple(cells), self.min_level, self.max_level)

    def contains(self, genotype: Genotype) -> None:
        """Raise GenotypeError naming the first way `genotype` lies outside this space."""
        if (genotype.min_level, genotype.max_level) != (self.min_level, self.max_level):
            raise GenotypeError(
                f"levels {genotype.min_level}..{genotype.max_level} differ from the space's"
                f" {self.min_level}..{self.max_level}"
            )
        if genotype.num_intermediate != self.num_intermediate:
            raise GenotypeError(
                f"{genotype.num_intermediate} intermediate cells, the space has {self.num_intermediate}"
            )
        for k, c in enumerate(genotype.cells[: self.num_intermediate]):
            if c.level not in self.intermediate_levels:
                raise GenotypeError(
                    f"cell {k}: level {c.level} is not allowed for an intermediate cell"
                    f" (allowed: {list(self.intermediate_levels)})"
                )
        for k, c in enumerate(genotype.cells):
            if c.op not in self.ops:
                raise GenotypeError(f"cell {k}: op {c.op!r} is not in the space's ops {list(self.ops)}")

    def encode(self, genotype: Genotype) -> list[int]:
        """Inverse of `decode` (inputs kept in the genotype's order). Raises GenotypeError."""
        self.contains(genotype)
        out: list[int] = []
        for c in genotype.cells:
            out += [c.inputs[0], c.inputs[1], self.levels.index(c.level), self.ops.index(c.op)]
        return out

    def sample(self, rng: random.Random) -> Genotype:
        """A uniform sample over the space with sorted pairs (pairs drawn without replacement)."""
        actions: list[int] = []
        for _ in range(self.num_steps):
            valid = [c for c, ok in enumerate(self.mask(actions)) if ok]
            actions.append(rng.choice(valid))
        return self.decode(actions).canonical()
