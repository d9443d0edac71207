"""Random search: independent uniform samples over the architectures of the space.

Uniformity is `SearchSpace.sample`'s: every decision is drawn uniformly among its valid
choices, so an input pair is two pool entries without replacement, ordered uniformly,
then sorted; each unordered pair {i, j} comes out with probability 2 / (n (n - 1)),
uniform over sorted pairs. The sample's actions are the sorted (canonical) ones.
"""

from __future__ import annotations

from controller.options import RandomOptions
from controller.sample import Sample
from controller.strategy import Strategy


class RandomSearch(Strategy):
    """Uniform sampling; rewards are only counted."""

    name = "random"
    options_type = RandomOptions

    def _propose(self) -> tuple[list[int], list[float], int, int | None]:
        return self.space.encode(self.space.sample(self.rng)), [], 0, None

    def _learn(self, sample: Sample, reward: float, *, failed: bool, cached: bool) -> None:
        pass
