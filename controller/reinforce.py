"""REINFORCE (Williams 1992; Zoph & Le 2017) with the same policy and baseline as PPO.

One Adam step per batch of told samples on
    -A * sum_t log p_t - entropy_weight * sum_t H_t   (mean over the batch).
Samples drawn by an older policy version are used as if on-policy (plain REINFORCE has
no correction for that; PPO's stored log-probabilities are the corrected variant).
Defaults as PPO's small-budget schedule (batch 5, baseline decay 0.8, normalised
advantages, tanh cap 2.5); one step per batch instead of PPO's ten.
"""

from __future__ import annotations

import torch

from controller.policy_gradient import PolicyGradientStrategy
from space import SearchSpace


class Reinforce(PolicyGradientStrategy):
    """REINFORCE with an LSTM policy, a moving-average baseline and asynchronous tells."""

    name = "reinforce"

    def __init__(
        self,
        space: SearchSpace,
        *,
        lr: float = 3e-3,
        batch_size: int = 5,
        entropy_weight: float = 1e-5,
        baseline_decay: float = 0.8,
        temperature: float = 1.0,
        tanh_constant: float | None = 2.5,
        hidden_size: int = 100,
        num_layers: int = 1,
        grad_clip: float | None = 5.0,
        normalize_advantage: bool = True,
        elite_size: int = 10,
        elite_steps: int = 0,
        learn_cached: bool = False,
        decision_order: str = "paper",
        distance_bias: bool = False,
        failure_reward: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(
            space,
            lr=lr,
            batch_size=batch_size,
            entropy_weight=entropy_weight,
            baseline_decay=baseline_decay,
            temperature=temperature,
            tanh_constant=tanh_constant,
            hidden_size=hidden_size,
            num_layers=num_layers,
            grad_clip=grad_clip,
            normalize_advantage=normalize_advantage,
            elite_size=elite_size,
            elite_steps=elite_steps,
            learn_cached=learn_cached,
            decision_order=decision_order,
            distance_bias=distance_bias,
            failure_reward=failure_reward,
            seed=seed,
        )

    def _update(
        self,
        actions: torch.Tensor,
        steps: tuple[torch.Tensor, torch.Tensor],
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
    ) -> tuple[float, float]:
        log_probs, entropy = self.policy.log_probs(actions, *steps)  # (B, T), (B, T)
        entropy_seq = entropy.sum(1)  # (B,)
        loss = -(advantages * log_probs.sum(1)).mean() - self.entropy_weight * entropy_seq.mean()
        self._step(loss)
        return float(loss.detach()), float(entropy_seq.detach().mean())
