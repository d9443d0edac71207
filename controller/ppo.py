"""PPO (Schulman et al. 2017) on architecture sequences, as in the NAS-FPN paper.

Per batch of told samples, `ppo_epochs` full-batch Adam steps on the clipped surrogate
against the log-probabilities stored at sampling time. The ratio is taken per decision
and every decision of a sequence shares the sequence's advantage: a per-sequence ratio
over 28 decisions leaves the clip range after tiny per-step changes and then stops
learning. Loss per sequence, summed over decisions:
    -sum_t min(r_t * A, clip(r_t, 1 - clip, 1 + clip) * A) - entropy_weight * sum_t H_t

Defaults are sized for searches of a few hundred trainings (one machine, a small cluster):
a batch of 5, 10 epochs per batch at lr 3e-3, a short baseline (decay 0.8), advantages in
units of the reward's standard deviation, logits capped by 2.5 * tanh, cache hits not
learned from. On the records-fitted landscape (`python -m benchmarks.controller_budget`)
this matches regularized evolution at 100 and 200 trainings and beats random search; the
NASNet schedule (`controller=ppo_paper`: lr 3.5e-4, batch 20, baseline 0.95, no cap) hardly
moves the policy in that budget and is meant for cluster searches of thousands of samples.
Without the tanh cap the policy narrows onto few architectures (hundreds of cache hits per
200 trainings on the benchmark; 500 in a row end a search).
"""

from __future__ import annotations

import torch

from controller.options import PPOOptions
from controller.policy_gradient import PolicyGradientStrategy


class PPO(PolicyGradientStrategy):
    """PPO with an LSTM policy, a moving-average baseline and asynchronous tells."""

    name = "ppo"
    options: PPOOptions
    options_type = PPOOptions

    def _update(
        self,
        actions: torch.Tensor,
        steps: tuple[torch.Tensor, torch.Tensor],
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
    ) -> tuple[float, float]:
        adv = advantages[:, None]  # (B, 1): shared by every decision of a sequence
        clip = self.options.clip
        entropy_before = None
        for _ in range(self.options.ppo_epochs):
            log_probs, entropy = self.policy.log_probs(actions, *steps)  # (B, T), (B, T)
            ratio = torch.exp(log_probs - old_log_probs)  # (B, T)
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
            entropy_seq = entropy.sum(1)  # (B,)
            loss = -(surrogate.sum(1)).mean() - self.options.entropy_weight * entropy_seq.mean()
            if entropy_before is None:
                entropy_before = float(entropy_seq.detach().mean())
            self._step(loss)
        return float(loss.detach()), float(entropy_before)
