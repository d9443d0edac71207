"""Search strategies for NAS-FPN: PPO and REINFORCE on an LSTM policy, random search,
regularized evolution. All speak ask/tell (`Strategy`) and see decisions and rewards only.

    strategy = controller.build("ppo", SearchSpace(), lr=1e-3, seed=0)
    sample = strategy.ask()            # sample.genotype, sample.id
    strategy.tell(sample, reward)      # any order, any time; None = failed trial
    torch.save(strategy.state_dict(), path)

A strategy's options are one frozen dataclass (`PPOOptions`, ... in `controller.options`);
`build` makes it from keyword arguments, `PPO(space, PPOOptions(lr=1e-3))` is the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from controller.evolution import RegularizedEvolution
from controller.options import (
    PRESETS,
    EvolutionOptions,
    PolicyGradientOptions,
    PPOOptions,
    RandomOptions,
    ReinforceOptions,
    StrategyOptions,
)
from controller.policy import LSTMPolicy, PolicySampler
from controller.ppo import PPO
from controller.random_search import RandomSearch
from controller.reinforce import Reinforce
from controller.sample import Sample
from controller.strategy import Strategy
from space import SearchSpace

STRATEGIES: dict[str, type[Strategy]] = {
    "ppo": PPO,
    "reinforce": Reinforce,
    "random": RandomSearch,
    "evolution": RegularizedEvolution,
}


def default_options(name: str) -> dict[str, Any]:
    """The options of strategy `name` with their defaults, in order (the shared ones,
    `failure_reward` and `seed`, first). Raises KeyError for an unknown name."""
    return dataclasses.asdict(STRATEGIES[name].options_type())


def label(name: str, options: Mapping[str, Any]) -> str:
    """The strategy and the options set away from its defaults, in the options' order:
    'ppo', or 'ppo (decision_order=level_first, distance_bias=True)'. Keys the strategy does
    not have (a record of an older or newer version, the config's `name`) are not named."""
    defaults = default_options(name) if name in STRATEGIES else {}
    changed = [f"{k}={v}" for k, v in options.items() if k in defaults and _differs(v, defaults[k])]
    return f"{name} ({', '.join(changed)})" if changed else name


def _differs(value: Any, default: Any) -> bool:
    if isinstance(default, (tuple, list)) and isinstance(value, (tuple, list)):  # a config's lists, tuples here
        return list(default) != list(value)
    return default != value


def preset(name: str) -> tuple[str, dict[str, Any]]:
    """The strategy of `PRESETS[name]` and the options it sets away from that strategy's
    defaults, as `build` takes them. Raises KeyError for an unknown preset."""
    options = PRESETS[name]
    strategy = next(n for n, s in STRATEGIES.items() if s.options_type is type(options))
    defaults = default_options(strategy)
    return strategy, {k: v for k, v in dataclasses.asdict(options).items() if v != defaults[k]}


def build(name: str, space: SearchSpace | None = None, **options: Any) -> Strategy:
    """A strategy by name (ppo, reinforce, random, evolution) over `space` (paper space if None).

    Options are the fields of the strategy's options dataclass (e.g. lr, batch_size, seed).

    Raises:
        ValueError: unknown name, or an option out of its range.
        TypeError: an option the strategy does not take.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}, expected one of {sorted(STRATEGIES)}")
    strategy = STRATEGIES[name]
    return strategy(space if space is not None else SearchSpace(), strategy.options_type(**options))


__all__ = [
    "PPO",
    "PRESETS",
    "STRATEGIES",
    "EvolutionOptions",
    "LSTMPolicy",
    "PPOOptions",
    "PolicyGradientOptions",
    "PolicySampler",
    "RandomOptions",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "ReinforceOptions",
    "Sample",
    "Strategy",
    "StrategyOptions",
    "build",
    "default_options",
    "label",
    "preset",
]
