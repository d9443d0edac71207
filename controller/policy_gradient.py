"""What PPO and REINFORCE share: the LSTM policy, Adam, the moving-average baseline,
the buffer of told samples, the update schedule, and elite replay.

Every trained reward gets advantage = reward - baseline, with the baseline an exponential
moving average of the trained rewards told before it (initialised to the first reward);
with `normalize_advantage` the advantage is divided by the standard deviation of every
trained reward so far (Welford) and clipped to [-3, 3], so the step size does not depend
on the reward's scale (AP 0.02 on the built-in proxy, 0.3 on COCO, any objective).
Failed trials get `failure_reward` as their reward but never move the baseline or the
scale (a 0.0 among rewards of 0.02 +- 0.01 would drag the baseline down for ~20 tells).
Cache hits (the architecture was trained before) are not learned from again unless
`learn_cached`: one lucky architecture sampled hundreds of times would fill update after
update with copies of one reward.

After `batch_size` trained tells the buffer is consumed by one update (`_update`, the
subclass's loss) and the policy version increases. Samples keep the log-probabilities of
the version that drew them, so rewards that arrive late or out of order are used as
they come. With `elite_steps > 0`, each update is followed by that many Adam steps of
imitation (maximum likelihood) on the `elite_size` best architectures told so far, as in
priority-queue training (Abolafia et al. 2018): at a budget of a few hundred samples the
policy gradient alone hardly moves a 28-decision policy away from uniform.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch

from controller.options import PolicyGradientOptions, StrategyOptions
from controller.policy import LSTMPolicy, PolicySampler
from controller.sample import Sample
from controller.strategy import Strategy
from space import SearchSpace


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch single-threaded inside the block, then restore the caller's setting.

    The update's tensors are tiny (batch 20 x 28 steps x 100 units): intra-op threads only
    add synchronisation, and on a busy 2-core machine 2 threads turned 12 ms updates into
    seconds.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class PolicyGradientStrategy(Strategy):
    """Base of `PPO` and `Reinforce`; subclasses define `_update` and their `options_type`."""

    options: PolicyGradientOptions
    options_type: ClassVar[type[StrategyOptions]] = PolicyGradientOptions

    def __init__(self, space: SearchSpace, options: PolicyGradientOptions | None = None) -> None:
        """Raises ValueError for a policy the options do not allow (see `LSTMPolicy`)."""
        super().__init__(space, options)
        o = self.options
        self.policy = LSTMPolicy(
            space,
            o.hidden_size,
            o.num_layers,
            o.temperature,
            o.tanh_constant,
            seed=o.seed,
            decision_order=o.decision_order,
            distance_bias=o.distance_bias,
        )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=o.lr)
        self.baseline: float | None = None
        self._moments = [0, 0.0, 0.0]  # Welford count, mean, sum of squared deviations of trained rewards
        self._elite: list[dict[str, Any]] = []  # {"actions", "reward", "hash"}, best first, unique hashes
        self.policy_version = 0
        self._buffer: list[dict[str, Any]] = []  # {"sample": Sample.to_dict(), "reward", "advantage"}
        self._sampler: PolicySampler = self.policy.sampler()
        self._last: dict[str, float | None] = {"loss": None, "entropy": None, "update_seconds": None}

    # -- ask / tell ----------------------------------------------------------------------
    def _propose(self) -> tuple[list[int], list[float], int, int | None]:
        actions, log_probs = self._sampler.sample(self.rng)
        return actions, log_probs, self.policy_version, None

    def _score(self, actions: list[int]) -> tuple[list[float], int]:
        batch = [actions]
        with torch.no_grad():
            log_probs, _ = self.policy.log_probs(
                torch.tensor(batch), self.policy.masks(batch), self.policy.distances(batch)
            )  # (1, T)
        return log_probs[0].tolist(), self.policy_version

    def _learn(self, sample: Sample, reward: float, *, failed: bool, cached: bool) -> None:
        if cached and not self.options.learn_cached:
            return
        if self.baseline is None:
            if failed:
                return  # nothing to compare a failure with yet
            self.baseline = reward
        if not failed:
            self._add_moment(reward)  # first, so the second reward already has a scale
        advantage = reward - self.baseline
        if self.options.normalize_advantage:
            scale = self._reward_scale()
            if scale is None:  # all trained rewards so far are equal
                advantage = -3.0 if advantage < 0 else 0.0
            else:
                advantage = max(-3.0, min(3.0, advantage / scale))
        if not failed:
            decay = self.options.baseline_decay
            self.baseline = decay * self.baseline + (1.0 - decay) * reward
            if self.options.elite_size and not cached:
                self._add_elite(sample, reward)
        self._buffer.append({"sample": sample.to_dict(), "reward": reward, "advantage": advantage})
        if len(self._buffer) >= self.options.batch_size:
            self._run_update()

    def _add_moment(self, reward: float) -> None:
        n, mean, m2 = self._moments
        n += 1
        delta = reward - mean
        mean += delta / n
        self._moments = [n, mean, m2 + delta * (reward - mean)]

    def _reward_scale(self) -> float | None:
        """Standard deviation of the trained rewards so far (None until two differ)."""
        n, _, m2 = self._moments
        std = (m2 / (n - 1)) ** 0.5 if n >= 2 else 0.0
        return std if std > 0 else None

    def _add_elite(self, sample: Sample, reward: float) -> None:
        key = sample.genotype.hash()
        if any(e["hash"] == key for e in self._elite):
            return
        self._elite.append({"actions": list(sample.actions), "reward": reward, "hash": key})
        self._elite.sort(key=lambda e: -e["reward"])  # stable: ties keep the earlier
        del self._elite[self.options.elite_size :]

    def _run_update(self) -> None:
        start = time.perf_counter()
        batch, self._buffer = self._buffer, []
        actions = torch.tensor([b["sample"]["actions"] for b in batch])  # (B, T)
        old_log_probs = torch.tensor([b["sample"]["log_probs"] for b in batch])  # (B, T)
        advantages = torch.tensor([b["advantage"] for b in batch])  # (B,)
        masks = self.policy.masks(actions.tolist())  # (T, B, C)
        distances = self.policy.distances(actions.tolist())  # (T, B, C)
        with _one_thread():
            loss, entropy = self._update(actions, (masks, distances), old_log_probs, advantages)
            if self.options.elite_steps:
                self._imitate_elite()
        self.policy_version += 1
        self._sampler = self.policy.sampler()
        self._last = {"loss": loss, "entropy": entropy, "update_seconds": time.perf_counter() - start}

    def _step(self, loss: torch.Tensor) -> None:
        """One optimizer step on `loss`, with gradient-norm clipping."""
        self.optimizer.zero_grad()
        loss.backward()
        if self.options.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.options.grad_clip)
        self.optimizer.step()

    def _imitate_elite(self) -> None:
        """`elite_steps` Adam steps on -mean log pi(elite architecture)."""
        actions = torch.tensor([e["actions"] for e in self._elite])  # (E, T)
        masks = self.policy.masks(actions.tolist())  # (T, E, C)
        distances = self.policy.distances(actions.tolist())  # (T, E, C)
        for _ in range(self.options.elite_steps):
            log_probs, _ = self.policy.log_probs(actions, masks, distances)  # (E, T)
            self._step(-log_probs.sum(1).mean())

    def _update(
        self,
        actions: torch.Tensor,
        steps: tuple[torch.Tensor, torch.Tensor],
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
    ) -> tuple[float, float]:
        """Train on one batch; return (last loss, mean sequence entropy before the update).

        `steps` = (masks, distances) of the batch, from `LSTMPolicy.masks` / `.distances`.
        """
        raise NotImplementedError

    # -- stats and state -----------------------------------------------------------------
    def _extra_stats(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "baseline": self.baseline,
            "reward_scale": self._reward_scale(),
            "elite_best": self._elite[0]["reward"] if self._elite else None,
            "buffered": len(self._buffer),
            "loss": self._last["loss"],
            "entropy": self._last["entropy"],
            "update_seconds": self._last["update_seconds"],
        }

    def _extra_state(self) -> dict[str, Any]:
        return {
            # deep copies: the live tensors keep changing after the state is taken
            "policy": copy.deepcopy(self.policy.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "baseline": self.baseline,
            "moments": list(self._moments),
            "elite": [dict(e) for e in self._elite],
            "policy_version": self.policy_version,
            "buffer": [dict(b) for b in self._buffer],
            "last": dict(self._last),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
        n, mean, m2 = state["moments"]
        self._moments = [int(n), float(mean), float(m2)]
        self._elite = [dict(e) for e in state["elite"]]
        self.policy_version = int(state["policy_version"])
        self._buffer = [dict(b) for b in state["buffer"]]
        self._last = dict(state["last"])
        self._sampler = self.policy.sampler()
