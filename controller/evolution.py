"""Regularized (aging) evolution, Real et al. 2019.

The population is the last `population_size` told samples, in the order they were told.
Until it is full, `ask` samples uniformly (as `RandomSearch`); then it draws
`sample_size` members uniformly without replacement, takes the one with the best reward
and mutates one of its decisions (`mutation.mutate`). Every tell appends to the
population and, once full, removes the oldest member. Asking never waits for a tell,
so any number of samples can be outstanding.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from controller.mutation import mutate
from controller.options import EvolutionOptions
from controller.sample import Sample
from controller.strategy import Strategy
from space import SearchSpace


class RegularizedEvolution(Strategy):
    """Tournament selection, one-decision mutation, oldest removed."""

    name = "evolution"
    options: EvolutionOptions
    options_type = EvolutionOptions

    def __init__(self, space: SearchSpace, options: EvolutionOptions | None = None) -> None:
        super().__init__(space, options)
        # (sample id, actions, reward), oldest first
        self.population: deque[tuple[int, tuple[int, ...], float]] = deque()

    def _propose(self) -> tuple[list[int], list[float], int, int | None]:
        if len(self.population) < self.options.population_size:
            return self.space.encode(self.space.sample(self.rng)), [], 0, None
        contestants = self.rng.sample(range(len(self.population)), self.options.sample_size)
        parent_id, parent_actions, _ = max((self.population[k] for k in contestants), key=lambda m: m[2])
        return mutate(self.space, parent_actions, self.rng), [], 0, parent_id

    def _learn(self, sample: Sample, reward: float, *, failed: bool, cached: bool) -> None:
        self.population.append((sample.id, sample.actions, reward))
        if len(self.population) > self.options.population_size:
            self.population.popleft()

    def _extra_stats(self) -> dict[str, Any]:
        rewards = [m[2] for m in self.population]
        return {
            "population": len(rewards),
            "population_mean_reward": sum(rewards) / len(rewards) if rewards else None,
        }

    def _extra_state(self) -> dict[str, Any]:
        return {"population": [{"id": i, "actions": list(a), "reward": r} for i, a, r in self.population]}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.population = deque((int(m["id"]), tuple(m["actions"]), float(m["reward"])) for m in state["population"])
