"""The ask/tell protocol shared by every search strategy, with its bookkeeping.

A strategy sees decisions and rewards only. `ask` hands out a `Sample`; `tell` returns
its reward in any order and at any time (asynchronous workers finish out of order, a
sample may come back several policy updates later). Everything mutable lives in
`state_dict()`, which holds plain data and tensors only, so it survives
`torch.save` / `torch.load(weights_only=True)` and a restored strategy continues exactly
as the original would have.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from typing import Any, ClassVar

from controller.options import StrategyOptions
from controller.sample import Sample
from space import SearchSpace

# Keys of `Strategy.stats()` that loggers plot for every strategy publishing them (the
# policy-gradient ones: loss of the last update, mean sequence entropy before it, reward
# baseline, number of updates); random search and evolution publish none of them.
PLOTTED_STATS = ("entropy", "loss", "baseline", "policy_version")

STATE_FORMAT = "nasfpn-controller"
STATE_VERSION = 1
# Options that may differ between the strategy that saved a state and the one loading it.
_FREE_OPTIONS = ("seed",)


def rng_state(rng: random.Random) -> dict[str, Any]:
    """A random.Random state as plain data."""
    version, internal, gauss = rng.getstate()
    return {"version": version, "internal": list(internal), "gauss": gauss}


def set_rng_state(rng: random.Random, state: dict[str, Any]) -> None:
    """Inverse of `rng_state`."""
    rng.setstate((state["version"], tuple(int(x) for x in state["internal"]), state["gauss"]))


def space_signature(space: SearchSpace) -> list[list[Any]]:
    """The decision sequence of a space, to check that a state belongs to it."""
    return [[d.cell, d.kind, d.num_choices] for d in space.decisions] + [
        [space.min_level, space.max_level, list(space.intermediate_levels), list(space.ops)]
    ]


class Strategy:
    """Base class: ids, outstanding samples, failure rewards, counters, state.

    Subclasses set `name` and `options_type` (the dataclass of their options) and implement
    `_propose` (choose actions), `_learn` (use one reward) and, if they hold more state,
    `_extra_state` / `_load_extra_state` / `_extra_stats`.
    """

    name = "strategy"
    options_type: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, space: SearchSpace, options: StrategyOptions | None = None) -> None:
        """`options` None: the defaults of `options_type`.

        Raises:
            TypeError: `options` are another strategy's (their own options would go unread).
        """
        options = self.options_type() if options is None else options
        if type(options) is not self.options_type:
            raise TypeError(f"{type(self).__name__} takes {self.options_type.__name__}, got {type(options).__name__}")
        self.space = space
        self.options = options
        self.rng = random.Random(options.seed)
        self._next_id = 0
        self._pending: dict[int, Sample] = {}
        self._num_told = 0
        self._num_failed = 0
        self._best_reward: float | None = None

    # -- the protocol ------------------------------------------------------------------
    def ask(self, actions: Sequence[int] | None = None) -> Sample:
        """Propose the next architecture. It stays outstanding until told.

        `actions` hands out that decision sequence instead (rebuilding a state from a
        record), with the log-probabilities the current policy gives it. A proposal is still
        drawn and dropped, so the random stream advances as the recorded ask's did: a
        replayed strategy then continues with the proposals the original would have made,
        not with the recorded ones again.
        Raises ValueError if `actions` is not a valid sequence of the space.
        """
        if actions is None:
            actions, log_probs, version, parent = self._propose()
            genotype = self.space.decode(actions)
        else:
            actions = [int(a) for a in actions]
            genotype = self.space.decode(actions)  # validates
            self._propose()  # advance the random stream; the proposal itself is dropped
            log_probs, version = self._score(actions)
            parent = None
        sample = Sample(
            id=self._next_id,
            genotype=genotype,
            actions=tuple(actions),
            log_probs=tuple(log_probs),
            version=version,
            parent=parent,
        )
        self._next_id += 1
        self._pending[sample.id] = sample
        return sample

    def tell(self, sample: Sample, reward: float | None, failed: bool = False, cached: bool = False) -> None:
        """Return the reward of an outstanding sample.

        `reward=None` or `failed=True` records a failed trial with `failure_reward`.
        `cached=True` says the reward was not trained for this sample but looked up (the same
        architecture was trained before); strategies decide whether to learn from it again.

        Raises:
            ValueError: the sample was never asked from this strategy, was already told,
                or the reward is not a finite number.
        """
        stored = self._pending.get(sample.id)
        if stored is None:
            if 0 <= sample.id < self._next_id:
                raise ValueError(f"sample {sample.id} was already told")
            raise ValueError(f"sample {sample.id} is unknown: it was never asked from this strategy")
        if stored.actions != tuple(sample.actions):
            raise ValueError(f"sample {sample.id} does not match the sample this strategy handed out with that id")
        if failed or reward is None:
            value = float(self.options.failure_reward)
            self._num_failed += 1
        else:
            value = float(reward)
            if not math.isfinite(value):
                raise ValueError(f"reward {reward!r} for sample {sample.id} is not finite; tell failed=True instead")
        del self._pending[sample.id]
        self._num_told += 1
        if self._best_reward is None or value > self._best_reward:
            self._best_reward = value
        self._learn(stored, value, failed=failed or reward is None, cached=cached)

    @property
    def num_asked(self) -> int:
        """Samples handed out so far; the next sample's id."""
        return self._next_id

    @property
    def pending(self) -> tuple[Sample, ...]:
        """Samples asked but not yet told, oldest first."""
        return tuple(self._pending.values())

    def stats(self) -> dict[str, Any]:
        """Numbers for logging: counters, best reward, plus the strategy's own."""
        out: dict[str, Any] = {
            "num_asked": self._next_id,
            "num_told": self._num_told,
            "num_failed": self._num_failed,
            "num_pending": len(self._pending),
            "best_reward": self._best_reward,
        }
        out.update(self._extra_stats())
        return out

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything mutable, as plain data and tensors (safe for weights_only loading)."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "strategy": self.name,
            "options": dataclasses.asdict(self.options),
            "space": space_signature(self.space),
            "rng": rng_state(self.rng),
            "next_id": self._next_id,
            "num_told": self._num_told,
            "num_failed": self._num_failed,
            "best_reward": self._best_reward,
            "pending": [s.to_dict() for s in self._pending.values()],
            **self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output.

        Raises:
            ValueError: the state is of another format, strategy or space, or was saved with
                different options (all but `seed` must match).
        """
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ValueError(f"not a controller state of format {STATE_FORMAT} version {STATE_VERSION}")
        if state["strategy"] != self.name:
            raise ValueError(f"state is of strategy {state['strategy']!r}, this one is {self.name!r}")
        if state["space"] != space_signature(self.space):
            raise ValueError("state was saved for a different search space")
        options = dataclasses.asdict(self.options)
        differ = sorted(
            k
            for k in set(state["options"]) | set(options)
            if k not in _FREE_OPTIONS and state["options"].get(k) != options.get(k)
        )
        if differ:
            raise ValueError(f"state was saved with different options: {differ}")
        set_rng_state(self.rng, state["rng"])
        self._next_id = int(state["next_id"])
        self._num_told = int(state["num_told"])
        self._num_failed = int(state["num_failed"])
        self._best_reward = state["best_reward"]
        pending = [Sample.from_dict(d, self.space) for d in state["pending"]]
        self._pending = {s.id: s for s in pending}
        self._load_extra_state(state)

    # -- for subclasses ------------------------------------------------------------------
    def _propose(self) -> tuple[list[int], list[float], int, int | None]:
        """(actions, per-action log-probabilities, policy version, parent id)."""
        raise NotImplementedError

    def _score(self, actions: list[int]) -> tuple[list[float], int]:
        """(per-action log-probabilities, policy version) of given actions; no policy: ([], 0)."""
        return [], 0

    def _learn(self, sample: Sample, reward: float, *, failed: bool, cached: bool) -> None:
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def _extra_stats(self) -> dict[str, Any]:
        return {}
