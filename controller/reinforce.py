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

from controller.options import ReinforceOptions
from controller.policy_gradient import PolicyGradientStrategy


class Reinforce(PolicyGradientStrategy):
    """REINFORCE with an LSTM policy, a moving-average baseline and asynchronous tells."""

    name = "reinforce"
    options: ReinforceOptions
    options_type = ReinforceOptions

    def _update(
        self,
        actions: torch.Tensor,
        steps: tuple[torch.Tensor, torch.Tensor],
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
    ) -> tuple[float, float]:
        log_probs, entropy = self.policy.log_probs(actions, *steps)  # (B, T), (B, T)
        entropy_seq = entropy.sum(1)  # (B,)
        loss = -(advantages * log_probs.sum(1)).mean() - self.options.entropy_weight * entropy_seq.mean()
        self._step(loss)
        return float(loss.detach()), float(entropy_seq.detach().mean())
