"""The LSTM policy: emits the space's decisions one by one, each from a masked softmax.

Layout (ENAS/NASNet style). Step t of T = `space.num_steps` decisions feeds the LSTM
with the embedding of the previous action (a start token at t = 0); every decision has
its own linear head on the LSTM output, padded to C = the largest number of choices
(`space.max_pool_size` for the paper space) and masked. Input selection therefore uses
heads sized to the pool with masks (not attention): pool index k means the same
feature at a given step in every sample, so a per-step head can learn it directly.

Masks come from `space.mask(prefix)`: invalid choices get probability exactly 0, so every
sampled sequence decodes to a valid genotype by construction. Logit shaping (ENAS):
logits / temperature, then tanh_constant * tanh(.), then the mask.

Sampling runs through `PolicySampler`, a numpy float32 snapshot of the weights: 28 tiny
steps cost ~1-2 ms in numpy against ~3-4 ms through torch's per-op overhead. Training
recomputes the same log-probabilities in torch (`LSTMPolicy.log_probs`); the tests
check both agree.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from space import SearchSpace


class LSTMPolicy(nn.Module):
    """An LSTM over the decision sequence of `space` with one masked head per decision."""

    def __init__(
        self,
        space: SearchSpace,
        hidden_size: int = 100,
        num_layers: int = 1,
        temperature: float = 1.0,
        tanh_constant: float | None = None,
        init_range: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.space = space
        self.temperature = float(temperature)
        self.tanh_constant = None if tanh_constant is None else float(tanh_constant)
        choices = [d.num_choices for d in space.decisions]
        self.num_steps = len(choices)
        self.max_choices = max(choices)
        # embedding row of (step t, action a) is 1 + offset[t] + a; row 0 is the start token
        self.offsets = [1 + sum(choices[:t]) for t in range(self.num_steps)]
        self.embedding = nn.Embedding(1 + sum(choices), hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers)
        self.head_weight = nn.Parameter(torch.empty(self.num_steps, hidden_size, self.max_choices))  # (T, H, C)
        self.head_bias = nn.Parameter(torch.empty(self.num_steps, self.max_choices))  # (T, C)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=generator)

    def shape_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Temperature, then tanh_constant * tanh (before masking)."""
        logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def masks(self, actions: list[list[int]] | list[tuple[int, ...]]) -> torch.Tensor:
        """Valid-choice masks of B action sequences: bool (T, B, C)."""
        out = np.zeros((self.num_steps, len(actions), self.max_choices), dtype=bool)
        for b, seq in enumerate(actions):
            for t in range(self.num_steps):
                m = self.space.mask(seq[:t])
                out[t, b, : len(m)] = m
        return torch.from_numpy(out)

    def log_probs(self, actions: torch.Tensor, masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step log-probabilities and entropies of given sequences (teacher forcing).

        Args:
            actions: long (B, T).
            masks: bool (T, B, C) from `masks`; computed when None.
        Returns:
            log_probs (B, T) of the actions, entropies (B, T) of each step's distribution.
        """
        if masks is None:
            masks = self.masks(actions.tolist())
        batch = actions.shape[0]
        offsets = torch.tensor(self.offsets[:-1])  # (T-1,)
        rows = torch.cat([torch.zeros(batch, 1, dtype=torch.long), offsets + actions[:, :-1]], dim=1)  # (B, T)
        x = self.embedding(rows.T)  # (T, B, H)
        out, _ = self.lstm(x)  # (T, B, H)
        logits = torch.einsum("tbh,thc->tbc", out, self.head_weight) + self.head_bias[:, None, :]  # (T, B, C)
        # a finite fill: -inf would make exp(lp) * lp = 0 * -inf = nan in the entropy's gradient
        logits = self.shape_logits(logits).masked_fill(~masks, _MASKED)
        log_p = torch.log_softmax(logits, dim=-1)  # (T, B, C)
        chosen = log_p.gather(-1, actions.T.unsqueeze(-1)).squeeze(-1)  # (T, B)
        entropy = -torch.where(masks, log_p.exp() * log_p, torch.zeros(())).sum(-1)  # (T, B)
        return chosen.T, entropy.T

    def sampler(self) -> PolicySampler:
        """A numpy snapshot of the current weights for fast sampling."""
        return PolicySampler(self)


class PolicySampler:
    """Samples action sequences from a float32 numpy copy of an `LSTMPolicy`."""

    def __init__(self, policy: LSTMPolicy) -> None:
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().to(torch.float32).numpy().copy()

        self.space = policy.space
        self.offsets = policy.offsets
        self.temperature = policy.temperature
        self.tanh_constant = policy.tanh_constant
        self.embedding = arr(policy.embedding.weight)  # (R, H)
        lstm = policy.lstm
        self.layers = [
            (
                arr(getattr(lstm, f"weight_ih_l{k}")),  # (4H, H), gates i, f, g, o
                arr(getattr(lstm, f"weight_hh_l{k}")),  # (4H, H)
                arr(getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")),  # (4H,)
            )
            for k in range(lstm.num_layers)
        ]
        self.hidden_size = lstm.hidden_size
        self.head_weight = arr(policy.head_weight)  # (T, H, C)
        self.head_bias = arr(policy.head_bias)  # (T, C)

    def _lstm_step(self, x: np.ndarray, h: list[np.ndarray], c: list[np.ndarray]) -> np.ndarray:
        n = self.hidden_size
        for k, (w_ih, w_hh, bias) in enumerate(self.layers):
            gates = w_ih @ x + w_hh @ h[k] + bias  # (4H,)
            i, f = _sigmoid(gates[:n]), _sigmoid(gates[n : 2 * n])
            g, o = np.tanh(gates[2 * n : 3 * n]), _sigmoid(gates[3 * n :])
            c[k] = f * c[k] + i * g
            h[k] = o * np.tanh(c[k])
            x = h[k]
        return x

    def sample(self, rng: random.Random) -> tuple[list[int], list[float]]:
        """One action sequence and the log-probability of each action."""
        zeros = np.zeros(self.hidden_size, dtype=np.float32)
        h = [zeros] * len(self.layers)
        c = [zeros] * len(self.layers)
        row = 0
        actions: list[int] = []
        log_probs: list[float] = []
        for t in range(len(self.offsets)):
            out = self._lstm_step(self.embedding[row], h, c)  # (H,)
            logits = out @ self.head_weight[t] + self.head_bias[t]  # (C,)
            logits = logits / np.float32(self.temperature)
            if self.tanh_constant is not None:
                logits = np.float32(self.tanh_constant) * np.tanh(logits)
            valid = [a for a, ok in enumerate(self.space.mask(actions)) if ok]
            z = logits[valid]
            z = z - z.max()
            log_p = z - np.log(np.exp(z).sum())  # (V,) log-softmax over the valid choices
            k = _draw(np.exp(log_p).tolist(), rng.random())
            actions.append(valid[k])
            log_probs.append(float(log_p[k]))
            row = self.offsets[t] + valid[k]
        return actions, log_probs


_MASKED = -1e9  # masked logit: exp(-1e9 - max) == 0 exactly in float32


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|, unlike 1 / (1 + exp(-x))


def _draw(probs: list[float], u: float) -> int:
    """Inverse-CDF draw; the last index absorbs rounding so the result is always valid."""
    acc = 0.0
    for k, p in enumerate(probs):
        acc += p
        if u < acc:
            return k
    return len(probs) - 1
