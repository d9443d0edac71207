"""What one proxy-task training returns: `TrialMetrics`, whose field names are the metric keys
every record, table and logger uses (imported from here, never restated)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from proxy_task.evaluator import AP_KEYS


@dataclass(frozen=True)
class TrialMetrics:
    """The metrics of one trained genotype. AP keys are COCO box AP on the reward images
    (-1.0 where pycocotools finds no ground truth of that size, e.g. no large objects)."""

    ap: float
    ap50: float
    ap75: float
    aps: float
    apm: float
    apl: float
    params: int  # the whole detector, frozen backbone included
    pyramid_params: int
    macs: int  # one forward of one image at proxy resolution
    eval_latency_ms: float  # batch 1, backbone + pyramid + head + postprocess
    train_time_s: float
    eval_time_s: float
    total_time_s: float
    total_cpu_s: float  # = one-core seconds when single-threaded
    steps: int
    final_loss: float
    epochs: float
    seed: int
    train_images: int
    eval_images: int
    skipped_images: int  # unreadable images left out of either set
    device: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able; what Tune reports and checkpoints store)."""
        return dataclasses.asdict(self)


METRIC_KEYS = tuple(f.name for f in dataclasses.fields(TrialMetrics))  # AP_KEYS first, in their order

__all__ = ["AP_KEYS", "METRIC_KEYS", "TrialMetrics"]
