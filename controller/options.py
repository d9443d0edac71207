"""The options of every search strategy: one frozen dataclass per strategy, each option with
its default, and the named option sets (`PRESETS`) beside those defaults.

These classes are the only place an option is spelled with its default: `controller.build`
makes one from keyword arguments, the strategies read it, `search.config` turns it into
the Hydra schema of `controller=<name>`, and `results.run` names a run by the options it
changed from them. Each class checks its values when it is made and raises ValueError.

`failure_reward` and `seed` are shared by every strategy; the search sets them once at the
top level of its config (`failure_reward=`, `seed=`), not under `controller`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class StrategyOptions:
    """What every strategy takes."""

    failure_reward: float = 0.0  # the reward a failed trial is told with
    seed: int = 0  # the strategy's random stream and, with a policy, its initial weights


@dataclass(frozen=True, kw_only=True)
class RandomOptions(StrategyOptions):
    """Random search: nothing beyond the shared options."""


@dataclass(frozen=True, kw_only=True)
class EvolutionOptions(StrategyOptions):
    """Regularized evolution (`controller.evolution`)."""

    population_size: int = 50  # the last this many told samples; the oldest is removed
    sample_size: int = 10  # tournament: members drawn per ask, the best one is mutated

    def __post_init__(self) -> None:
        if not 1 <= self.sample_size <= self.population_size:
            raise ValueError(
                f"need 1 <= sample_size <= population_size, got {self.sample_size}, {self.population_size}"
            )


@dataclass(frozen=True, kw_only=True)
class PolicyGradientOptions(StrategyOptions):
    """What PPO and REINFORCE share (`controller.policy_gradient`, `controller.policy`).

    Defaults are the small-budget schedule (a few hundred trainings): see `controller.ppo`.
    """

    lr: float = 3e-3  # Adam step size
    batch_size: int = 5  # trained tells per policy update
    entropy_weight: float = 1e-5  # weight of the summed decision entropies in the loss
    baseline_decay: float = 0.8  # moving-average baseline, in [0, 1): 0.8 forgets in ~5 rewards
    temperature: float = 1.0  # logits are divided by it before the tanh cap
    tanh_constant: float | None = 2.5  # logits capped to c * tanh(.); None: no cap, the policy narrows fast
    hidden_size: int = 100  # LSTM and embedding width
    num_layers: int = 1  # stacked LSTM layers
    grad_clip: float | None = 5.0  # gradient-norm clip of every Adam step; None: none
    normalize_advantage: bool = True  # advantages in reward standard deviations, clipped to [-3, 3]
    elite_size: int = 10  # best distinct architectures kept for imitation
    elite_steps: int = 0  # imitation Adam steps on the elite after each update; 0: none
    learn_cached: bool = False  # learn again from cache hits (one lucky architecture would fill batches)
    decision_order: str = "paper"  # paper (inputs, level, op) or level_first (level, op, inputs)
    distance_bias: bool = False  # learned input bias per level distance; needs level_first

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {self.baseline_decay}")
        if self.elite_size < 0 or self.elite_steps < 0 or (self.elite_steps > 0 and self.elite_size == 0):
            raise ValueError(f"need elite_size >= 1 when elite_steps > 0, got {self.elite_size}, {self.elite_steps}")


@dataclass(frozen=True, kw_only=True)
class ReinforceOptions(PolicyGradientOptions):
    """REINFORCE (`controller.reinforce`): one Adam step per batch, nothing beyond the shared."""


@dataclass(frozen=True, kw_only=True)
class PPOOptions(PolicyGradientOptions):
    """PPO (`controller.ppo`)."""

    ppo_epochs: int = 10  # full-batch Adam steps on the clipped surrogate per batch
    clip: float = 0.2  # per-decision probability ratios are clipped to [1 - clip, 1 + clip]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ppo_epochs < 1 or self.clip <= 0:
            raise ValueError(f"ppo_epochs must be >= 1 and clip > 0, got {self.ppo_epochs}, {self.clip}")


# Named option sets beside each strategy's defaults (Hydra: `controller=ppo_paper`).
# ppo_paper: NASNet's schedule (the published reference for the paper's controller), sized
# for cluster searches of thousands of samples: at a few hundred it leaves the policy uniform.
PRESETS: dict[str, StrategyOptions] = {
    "ppo_paper": PPOOptions(
        lr=3.5e-4,
        batch_size=20,
        ppo_epochs=10,
        baseline_decay=0.95,
        tanh_constant=None,
        normalize_advantage=False,
        elite_steps=0,
        learn_cached=True,
    ),
}
