"""Search strategies for NAS-FPN: PPO and REINFORCE on an LSTM policy, random search,
regularized evolution. All speak ask/tell (`Strategy`) and see decisions and rewards only.

    strategy = controller.build("ppo", SearchSpace(), lr=1e-3, seed=0)
    sample = strategy.ask()            # sample.genotype, sample.id
    strategy.tell(sample, reward)      # any order, any time; None = failed trial
    torch.save(strategy.state_dict(), path)
"""

from __future__ import annotations

import inspect
from typing import Any

from controller.evolution import RegularizedEvolution
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

# Named option sets beside each strategy's defaults (Hydra: `controller=ppo_paper`).
# ppo_paper: NASNet's schedule (the published reference for the paper's controller), sized
# for cluster searches of thousands of samples: at a few hundred it leaves the policy uniform.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "ppo_paper": (
        "ppo",
        {
            "lr": 3.5e-4,
            "batch_size": 20,
            "ppo_epochs": 10,
            "baseline_decay": 0.95,
            "tanh_constant": None,
            "normalize_advantage": False,
            "elite_steps": 0,
            "learn_cached": True,
        },
    ),
}


def default_options(name: str) -> dict[str, Any]:
    """The keyword options of strategy `name`'s constructor with their defaults, in order
    (the shared ones, `seed` and `failure_reward`, included)."""
    params = inspect.signature(STRATEGIES[name].__init__).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build(name: str, space: SearchSpace | None = None, **options: Any) -> Strategy:
    """A strategy by name (ppo, reinforce, random, evolution) over `space` (paper space if None).

    Options are the strategy's keyword arguments (e.g. lr, batch_size, seed).

    Raises:
        ValueError: unknown name.
        TypeError: an option the strategy does not take.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}, expected one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](space if space is not None else SearchSpace(), **options)


__all__ = [
    "PPO",
    "PRESETS",
    "STRATEGIES",
    "LSTMPolicy",
    "PolicySampler",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "Sample",
    "Strategy",
    "build",
    "default_options",
]
