"""One proposal of a strategy: the genotype plus what learning from its reward needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from space import Genotype, SearchSpace


@dataclass(frozen=True)
class Sample:
    """An architecture handed out by `Strategy.ask`, to be returned with `Strategy.tell`.

    `id` is the ask counter (the controller step, 0, 1, 2, ...). `actions` is the
    decision sequence in `SearchSpace.decisions` order; `genotype == space.decode(actions)`.
    `log_probs` holds the log-probability of every action under the policy that chose it
    (empty for strategies without a policy); `version` is the number of policy updates
    done when it was sampled; `parent` is the id of the evolution parent, if any.
    """

    id: int
    genotype: Genotype
    actions: tuple[int, ...]
    log_probs: tuple[float, ...] = ()
    version: int = 0
    parent: int | None = None

    @property
    def log_prob(self) -> float:
        """Log-probability of the whole action sequence at sampling time."""
        return float(sum(self.log_probs))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (no genotype: it is rebuilt from the actions)."""
        return {
            "id": self.id,
            "actions": list(self.actions),
            "log_probs": list(self.log_probs),
            "version": self.version,
            "parent": self.parent,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], space: SearchSpace) -> Sample:
        """Inverse of `to_dict`. Raises ValueError if the actions are not valid in `space`."""
        actions = tuple(int(a) for a in d["actions"])
        return cls(
            id=int(d["id"]),
            genotype=space.decode(actions),
            actions=actions,
            log_probs=tuple(float(x) for x in d["log_probs"]),
            version=int(d["version"]),
            parent=None if d["parent"] is None else int(d["parent"]),
        )
