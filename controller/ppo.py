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

from controller.policy_gradient import PolicyGradientStrategy
from space import SearchSpace


class PPO(PolicyGradientStrategy):
    """PPO with an LSTM policy, a moving-average baseline and asynchronous tells."""

    name = "ppo"

    def __init__(
        self,
        space: SearchSpace,
        *,
        lr: float = 3e-3,
        batch_size: int = 5,
        ppo_epochs: int = 10,
        clip: float = 0.2,
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
        if ppo_epochs < 1 or clip <= 0:
            raise ValueError(f"ppo_epochs must be >= 1 and clip > 0, got {ppo_epochs}, {clip}")
        self.ppo_epochs = int(ppo_epochs)
        self.clip = float(clip)
        self.options.update(ppo_epochs=self.ppo_epochs, clip=self.clip)

    def _update(
        self,
        actions: torch.Tensor,
        steps: tuple[torch.Tensor, torch.Tensor],
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
    ) -> tuple[float, float]:
        adv = advantages[:, None]  # (B, 1): shared by every decision of a sequence
        entropy_before = None
        for _ in range(self.ppo_epochs):
            log_probs, entropy = self.policy.log_probs(actions, *steps)  # (B, T), (B, T)
            ratio = torch.exp(log_probs - old_log_probs)  # (B, T)
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - self.clip, 1 + self.clip) * adv)
            entropy_seq = entropy.sum(1)  # (B,)
            loss = -(surrogate.sum(1)).mean() - self.entropy_weight * entropy_seq.mean()
            if entropy_before is None:
                entropy_before = float(entropy_seq.detach().mean())
            self._step(loss)
        return float(loss.detach()), float(entropy_before)
