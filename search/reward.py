"""The reward of a trial: COCO AP, or MnasNet's AP * (cost / target) ** weight."""

from __future__ import annotations

import math
from typing import Any

COST_KEYS = {"macs": "macs", "latency": "eval_latency_ms"}


def reward_from_metrics(
    metrics: dict[str, Any], enabled: bool = False, cost: str = "macs", target: float = 1.0, weight: float = -0.07
) -> float:
    """AP (0..1), optionally scaled by the cost term. Raises KeyError/ValueError on bad input."""
    ap = float(metrics["ap"])
    if not enabled:
        return ap
    value = float(metrics[COST_KEYS[cost]])
    if not (math.isfinite(value) and value > 0 and target > 0):
        raise ValueError(f"cost {cost}={value!r} and target {target!r} must be positive")
    return ap * (value / target) ** weight
