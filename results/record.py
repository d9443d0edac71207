"""One finished trial of a search, as a validated value (`TrialRecord`).

A record is built by the search driver when a trial ends and stored by `TrialStore`.
Rules checked on construction (ValueError naming the field):
  * status is one of STATUSES; "ok" and "cached" records carry a finite reward;
  * cache_hit is True exactly when status == "cached" (a reward copied from the cache);
  * reward, duration_s and every number in metrics are finite: a NaN/inf result is
    recorded as status "nonfinite" with reward None, never as a number;
  * metrics is a JSON object with string keys; it is normalised through JSON
    (tuples become lists) so a record equals itself after a store round trip.
Records hold results only: no environment, no credentials. `error` should be the
one-line cause of a failure, not a traceback with locals.
"""

from __future__ import annotations

import json
import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from space import Genotype, dumps, loads


class TrialStatus(str, Enum):
    """How a trial ended: the record's `status` (stored and compared as its string value)."""

    OK = "ok"  # trained and rewarded
    FAILED = "failed"  # crashed (exception, lost worker) after every retry: the failure reward
    NONFINITE = "nonfinite"  # the loss became NaN or infinite: the failure reward, not retried
    TIMEOUT = "timeout"  # ran past trial_timeout_s: the failure reward, not retried
    CACHED = "cached"  # the reward of an earlier record of the same architecture

    def __str__(self) -> str:  # the value, as a plain string would print
        return self.value


STATUSES: tuple[str, ...] = tuple(s.value for s in TrialStatus)
REWARD_STATUSES: tuple[str, ...] = (TrialStatus.OK.value, TrialStatus.CACHED.value)


def _check_int(name: str, x: object, allow_none: bool) -> int | None:
    # numbers.Integral admits numpy integers; bool is excluded on purpose.
    if x is None and allow_none:
        return None
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 0:
        raise ValueError(f"{name}={x!r}: expected {'None or ' if allow_none else ''}an integer >= 0")
    return int(x)


def _check_finite(name: str, x: object, allow_none: bool) -> float | None:
    if x is None and allow_none:
        return None
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
        raise ValueError(f"{name}={x!r}: expected a finite number")
    return float(x)


def _plain_number(x: object) -> int | float:
    # json.dumps `default`: numpy scalars and other numbers become plain int/float.
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x)
    raise TypeError(f"{type(x).__name__} is not JSON-serialisable")


def _normalise_metrics(metrics: object) -> dict[str, Any]:
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics: expected a dict, got {type(metrics).__name__}")
    bad = [k for k in metrics if not isinstance(k, str)]
    if bad:
        raise ValueError(f"metrics: keys must be strings, got {bad!r}")
    try:
        return json.loads(json.dumps(metrics, allow_nan=False, default=_plain_number))
    except ValueError:
        raise ValueError(
            f"metrics {metrics!r} hold a NaN or infinity: record the trial with status 'nonfinite' and drop the value"
        ) from None
    except TypeError as e:
        raise ValueError(f"metrics: not JSON-serialisable ({e})") from None


@dataclass(frozen=True)
class TrialRecord:
    """The outcome of one trial. See the module docstring for the rules.

    Raises:
        ValueError: a field of the wrong type or value, naming the field.
    """

    trial_id: str
    step: int  # the controller's sample index
    policy_version: int
    genotype_json: str = field(repr=False)  # space.dumps(genotype)
    genotype_hash: str  # genotype.hash(), the canonical hash
    reward: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # ap, ap50, ap75, aps, apm, apl, ...
    params: int | None = None
    macs: int | None = None  # multiply-adds
    duration_s: float = 0.0
    node: str = ""
    status: str = TrialStatus.OK.value
    error: str | None = None
    cache_hit: bool = False
    strategy: str = ""
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        for name in ("trial_id", "genotype_json", "genotype_hash"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name}={value!r}: expected a non-empty string")
        for name in ("node", "strategy"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a string")
        for name in ("step", "policy_version", "params", "macs"):
            allow_none = name in ("params", "macs")
            object.__setattr__(self, name, _check_int(name, getattr(self, name), allow_none))
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r}: expected one of {list(STATUSES)}")
        object.__setattr__(self, "status", TrialStatus(self.status).value)  # a plain str in the record
        if not isinstance(self.cache_hit, bool) or self.cache_hit != (self.status == TrialStatus.CACHED):
            raise ValueError(
                f"cache_hit={self.cache_hit!r} with status={self.status!r}: cache_hit must be True exactly"
                " for status 'cached'"
            )
        reward = _check_finite("reward", self.reward, allow_none=True)
        if reward is None and self.status in REWARD_STATUSES:
            raise ValueError(f"status={self.status!r} needs a finite reward, got None")
        if self.error is not None and not isinstance(self.error, str):
            raise ValueError(f"error={self.error!r}: expected None or a string")
        object.__setattr__(self, "reward", reward)
        object.__setattr__(self, "duration_s", _check_finite("duration_s", self.duration_s, allow_none=False))
        object.__setattr__(self, "created_at", _check_finite("created_at", self.created_at, allow_none=False))
        object.__setattr__(self, "metrics", _normalise_metrics(self.metrics))
        if self.duration_s < 0:
            raise ValueError(f"duration_s={self.duration_s!r}: expected >= 0")

    @property
    def rewarded(self) -> bool:
        """True when the record carries a reward (status 'ok' or 'cached'); the others are
        failures, told to a strategy as its failure reward."""
        return self.status in REWARD_STATUSES

    @classmethod
    def from_genotype(cls, genotype: Genotype, **fields: Any) -> TrialRecord:
        """A record for `genotype`, filling genotype_json and genotype_hash from it."""
        return cls(genotype_json=dumps(genotype), genotype_hash=genotype.hash(), **fields)

    def genotype(self) -> Genotype:
        """The stored genotype. Raises space.GenotypeError if genotype_json is not valid."""
        return loads(self.genotype_json)

    def same_trial(self, other: TrialRecord) -> bool:
        """Equal in every field but created_at (the time a retried append was made)."""
        return self.to_row()[:-1] == other.to_row()[:-1]

    def to_row(self) -> tuple[Any, ...]:
        """Column values in FIELDS order (metrics as JSON text, cache_hit as 0/1)."""
        return (
            self.trial_id,
            self.step,
            self.policy_version,
            self.genotype_json,
            self.genotype_hash,
            self.reward,
            json.dumps(self.metrics, sort_keys=True, allow_nan=False),
            self.params,
            self.macs,
            self.duration_s,
            self.node,
            self.status,
            self.error,
            int(self.cache_hit),
            self.strategy,
            self.created_at,
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> TrialRecord:
        """Inverse of `to_row`. Raises ValueError on a row that breaks the rules."""
        values = dict(zip(FIELDS, row))
        values["metrics"] = json.loads(values["metrics"])
        values["cache_hit"] = bool(values["cache_hit"])
        return cls(**values)


FIELDS: tuple[str, ...] = (
    "trial_id",
    "step",
    "policy_version",
    "genotype_json",
    "genotype_hash",
    "reward",
    "metrics",
    "params",
    "macs",
    "duration_s",
    "node",
    "status",
    "error",
    "cache_hit",
    "strategy",
    "created_at",
)


def in_step_order(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Records sorted by controller step; ties (a re-run of a step) keep insertion order."""
    return [r for _, r in sorted(enumerate(records), key=lambda ir: (ir[1].step, ir[0]))]
