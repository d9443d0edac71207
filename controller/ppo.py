"""PPO (Schulman et al. 2017) on architecture sequences, as in the NAS-FPN paper.

Per batch of told samples, `ppo_epochs` full-batch Adam steps on the clipped surrogate
against the log-probabilities stored at sampling time. The ratio is taken per decision
and every decision of a sequence shares the sequence's advantage: a per-sequence ratio
over 28 decisions leaves the clip range after tiny per-step changes and then stops
learning. Loss per sequence, summed over decisions:
    -sum_t min(r_t * A, clip(r_t, 1 - clip, 1 + clip) * A) - entropy_weight * sum_t H_t

Defaults are SPEC.md's (NASNet's PPO controller) except lr 1e-3 (not 3.5e-4) and 4 epochs
per batch: on the structured landscape of benchmarks/controller_landscape.py they reach
random search's best-of-2000 in ~200 samples with an update of ~40-80 ms on one CPU
thread; 10 epochs at 3.5e-4 learn about as fast but cost twice the update time.
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
        lr: float = 1e-3,
        batch_size: int = 20,
        ppo_epochs: int = 4,
        clip: float = 0.2,
        entropy_weight: float = 1e-5,
        baseline_decay: float = 0.95,
        temperature: float = 1.0,
        tanh_constant: float | None = None,
        hidden_size: int = 100,
        num_layers: int = 1,
        grad_clip: float | None = 5.0,
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
            failure_reward=failure_reward,
            seed=seed,
        )
        if ppo_epochs < 1 or clip <= 0:
            raise ValueError(f"ppo_epochs must be >= 1 and clip > 0, got {ppo_epochs}, {clip}")
        self.ppo_epochs = int(ppo_epochs)
        self.clip = float(clip)
        self.options.update(ppo_epochs=self.ppo_epochs, clip=self.clip)

    def _update(
        self, actions: torch.Tensor, masks: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor
    ) -> tuple[float, float]:
        adv = advantages[:, None]  # (B, 1): shared by every decision of a sequence
        entropy_before = None
        for _ in range(self.ppo_epochs):
            log_probs, entropy = self.policy.log_probs(actions, masks)  # (B, T), (B, T)
            ratio = torch.exp(log_probs - old_log_probs)  # (B, T)
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - self.clip, 1 + self.clip) * adv)
            entropy_seq = entropy.sum(1)  # (B,)
            loss = -(surrogate.sum(1)).mean() - self.entropy_weight * entropy_seq.mean()
            if entropy_before is None:
                entropy_before = float(entropy_seq.detach().mean())
            self._step(loss)
        return float(loss.detach()), float(entropy_before)
