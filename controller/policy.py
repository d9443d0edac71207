"""The LSTM policy: emits the space's decisions one by one, each from a masked softmax.

Layout (ENAS/NASNet style). Step t of T = `space.num_steps` decisions feeds the LSTM
with the embedding of the previous action (a start token at t = 0); every decision has
its own linear head on the LSTM output, padded to C = the largest number of choices
(`space.max_pool_size` for the paper space) and masked. Input selection therefore uses
heads sized to the pool with masks (not attention): pool index k means the same
feature at a given step in every sample, so a per-step head can learn it directly.

Masks come from `space.mask(prefix)`: invalid choices get probability exactly 0, so every
sampled sequence decodes to a valid genotype by construction.

Decision order. `decision_order="paper"` emits each cell's decisions as the space lists
them (input i, input j, level, op). `"level_first"` emits level and op first, then the
inputs, so the inputs are chosen knowing the level they will be resampled to (the reward
of the built-in proxy depends on such combinations: an output cell reading the backbone
feature of its own level). The space's masks allow it: a cell's level and op masks never
depend on its own inputs. Actions and log-probabilities are always stored in the space's
order. With `distance_bias` (level_first only) the input logits get a learned bias per
level distance |level(input) - level(cell)|, shared by every cell: an ENAS-like pointer
prior that learns "near inputs are better" once instead of once per cell and pool entry. Logit shaping (ENAS):
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
        decision_order: str = "paper",
        distance_bias: bool = False,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if decision_order not in ORDERS:
            raise ValueError(f"decision_order={decision_order!r}: expected one of {ORDERS}")
        if distance_bias and decision_order != "level_first":
            raise ValueError("distance_bias needs decision_order='level_first' (the level must be known first)")
        self.space = space
        self.decision_order = decision_order
        self.use_distance_bias = bool(distance_bias)
        # order[p] = the space step emitted at policy position p
        self.order = _policy_order(space, decision_order)
        self.temperature = float(temperature)
        self.tanh_constant = None if tanh_constant is None else float(tanh_constant)
        choices = [d.num_choices for d in space.decisions]
        self.num_steps = len(choices)
        self.max_choices = max(choices)
        # embedding row of (space step t, action a) is offset[t] + a; row 0 is the start token
        self.offsets = [1 + sum(choices[:t]) for t in range(self.num_steps)]
        self.embedding = nn.Embedding(1 + sum(choices), hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers)
        self.head_weight = nn.Parameter(torch.empty(self.num_steps, hidden_size, self.max_choices))  # (T, H, C)
        self.head_bias = nn.Parameter(torch.empty(self.num_steps, self.max_choices))  # (T, C)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=generator)
        # bias per level distance 0..L-1, plus a fixed 0 slot (index L) for non-input steps
        self.distance_bias = nn.Parameter(torch.zeros(space.num_levels), requires_grad=self.use_distance_bias)

    def shape_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Temperature, then tanh_constant * tanh (before masking)."""
        logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def masks(self, actions: list[int] | list[tuple[int, ...]]) -> torch.Tensor:
        """Valid-choice masks of B action sequences (space order), in policy order: bool (T, B, C)."""
        out = np.zeros((self.num_steps, len(actions), self.max_choices), dtype=bool)
        for b, seq in enumerate(actions):
            for p, t in enumerate(self.order):
                m = self.space.mask(_known_prefix(seq, t))
                out[p, b, : len(m)] = m
        return torch.from_numpy(out)

    def distances(self, actions: list[int] | list[tuple[int, ...]]) -> torch.Tensor:
        """Distance-bias index per choice, policy order: long (T, B, C); L where no bias applies."""
        num_levels = self.space.num_levels
        out = np.full((self.num_steps, len(actions), self.max_choices), num_levels, dtype=np.int64)
        if self.use_distance_bias:
            for b, seq in enumerate(actions):
                for p, t in enumerate(self.order):
                    d = _input_distances(self.space, seq, t)
                    if d is not None:
                        out[p, b, : len(d)] = d
        return torch.from_numpy(out)

    def log_probs(
        self, actions: torch.Tensor, masks: torch.Tensor | None = None, distances: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step log-probabilities and entropies of given sequences (teacher forcing).

        Args:
            actions: long (B, T), space order.
            masks: bool (T, B, C) from `masks`; computed when None.
            distances: long (T, B, C) from `distances`; computed when None.
        Returns:
            log_probs (B, T) of the actions, entropies (B, T) of each step's distribution,
            both in space order.
        """
        if masks is None:
            masks = self.masks(actions.tolist())
        if distances is None:
            distances = self.distances(actions.tolist())
        batch = actions.shape[0]
        order = torch.tensor(self.order)  # (T,) space step of each policy position
        acts = actions[:, order]  # (B, T) policy order
        offsets = torch.tensor(self.offsets)[order[:-1]]  # (T-1,)
        rows = torch.cat([torch.zeros(batch, 1, dtype=torch.long), offsets + acts[:, :-1]], dim=1)  # (B, T)
        x = self.embedding(rows.T)  # (T, B, H)
        out, _ = self.lstm(x)  # (T, B, H)
        logits = torch.einsum("tbh,thc->tbc", out, self.head_weight[order]) + self.head_bias[order][:, None, :]
        bias = torch.cat([self.distance_bias, torch.zeros(1)])  # (L+1,)
        logits = logits + bias[distances]  # (T, B, C)
        # a finite fill: -inf would make exp(lp) * lp = 0 * -inf = nan in the entropy's gradient
        logits = self.shape_logits(logits).masked_fill(~masks, _MASKED)
        log_p = torch.log_softmax(logits, dim=-1)  # (T, B, C)
        chosen = log_p.gather(-1, acts.T.unsqueeze(-1)).squeeze(-1)  # (T, B) policy order
        entropy = -torch.where(masks, log_p.exp() * log_p, torch.zeros(())).sum(-1)  # (T, B)
        back = torch.argsort(order)  # space step t sits at policy position back[t]
        return chosen.T[:, back], entropy.T[:, back]

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
        self.order = policy.order
        self.use_distance_bias = policy.use_distance_bias
        self.distance_bias = arr(policy.distance_bias)  # (L,)
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
        """One action sequence and the log-probability of each action (space order)."""
        zeros = np.zeros(self.hidden_size, dtype=np.float32)
        h = [zeros] * len(self.layers)
        c = [zeros] * len(self.layers)
        row = 0
        actions = [0] * len(self.order)
        log_probs = [0.0] * len(self.order)
        for t in self.order:
            out = self._lstm_step(self.embedding[row], h, c)  # (H,)
            logits = out @ self.head_weight[t] + self.head_bias[t]  # (C,)
            if self.use_distance_bias:
                d = _input_distances(self.space, actions, t)
                if d is not None:
                    logits = logits.copy()
                    logits[: len(d)] += self.distance_bias[d]
            logits = logits / np.float32(self.temperature)
            if self.tanh_constant is not None:
                logits = np.float32(self.tanh_constant) * np.tanh(logits)
            valid = [a for a, ok in enumerate(self.space.mask(_known_prefix(actions, t))) if ok]
            z = logits[valid]
            z = z - z.max()
            log_p = z - np.log(np.exp(z).sum())  # (V,) log-softmax over the valid choices
            k = _draw(np.exp(log_p).tolist(), rng.random())
            actions[t] = valid[k]
            log_probs[t] = float(log_p[k])
            row = self.offsets[t] + valid[k]
        return actions, log_probs


ORDERS = ("paper", "level_first")


def _policy_order(space: SearchSpace, decision_order: str) -> list[int]:
    """Space step emitted at each policy position."""
    if decision_order == "paper":
        return list(range(space.num_steps))
    first = {"level": 0, "op": 1, "input_i": 2, "input_j": 3}  # level, op, then i, j
    return sorted(range(space.num_steps), key=lambda t: (space.decisions[t].cell, first[space.decisions[t].kind]))


def _known_prefix(actions: list[int] | tuple[int, ...], t: int) -> list[int]:
    """The space-order prefix for the mask of step t. Under level_first a cell's inputs are
    not chosen yet when its level and op are: their placeholders are never read, as the
    level and op masks depend only on earlier cells."""
    return list(actions[:t])


def _input_distances(space: SearchSpace, actions: list[int] | tuple[int, ...], t: int) -> np.ndarray | None:
    """|level(pool entry) - level(cell)| for every pool entry if step t is an input step, else None."""
    decision = space.decisions[t]
    if decision.kind not in ("input_i", "input_j"):
        return None
    cell = decision.cell
    levels = list(space.levels)
    level_step = {d.cell: t for t, d in enumerate(space.decisions) if d.kind == "level"}
    pool = levels + [levels[actions[level_step[c]]] for c in range(cell)]  # levels of the pool entries
    level = levels[actions[level_step[cell]]]
    return np.abs(np.array(pool) - level)


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
