"""COCO box AP: faster-coco-eval (C++ matching and accumulation), pycocotools as reference.

Both backends run on the same in-memory ground truth (a COCO instances dict: crowd
annotations are handled by COCO's own rules) and the same detections, and return the six
box APs. No detections scores 0 everywhere (pycocotools' `loadRes([])` would raise). A
`GroundTruth` indexes the ground truth once for many evaluations (one per worker process).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import numpy as np

# The six COCO box APs, in COCOeval.stats order: the one list of AP metric keys (results,
# search and W&B read these keys from a trial's metrics).
AP_KEYS = ("ap", "ap50", "ap75", "aps", "apm", "apl")


def _coco_api(backend: str):
    if backend == "faster":
        from faster_coco_eval import COCO
        from faster_coco_eval.core.faster_eval_api import COCOeval_faster as COCOeval

        return COCO, COCOeval
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval
    raise ValueError(f"unknown COCO backend {backend!r}, expected 'faster' or 'pycocotools'")


# Columns of a detections array, one row per detection (the layout faster-coco-eval's
# `loadNumpyAnnotations` reads): image id, box x, y, w, h (original pixels), score, category id.
DETECTION_COLUMNS = ("image_id", "x", "y", "w", "h", "score", "category_id")


class GroundTruth:
    """A COCO ground truth indexed once, for repeated evaluations (a search worker scores
    every trial on the same images). Holds shallow copies of the annotations: the COCO APIs
    add keys to them ('ignore'), never to the caller's document, and those keys are the
    same at every evaluation."""

    def __init__(self, document: dict, backend: str = "faster") -> None:
        self.backend = backend
        self.coco_class, self.eval_class = _coco_api(backend)
        with _quiet():
            self.coco = self.coco_class()
            self.coco.dataset = {"info": {}, **document, "annotations": [dict(a) for a in document["annotations"]]}
            self.coco.createIndex()


def coco_box_ap(
    ground_truth: dict | GroundTruth, detections: np.ndarray, backend: str | None = None
) -> dict[str, float]:
    """AP, AP50, AP75, APs, APm, APl of `detections` on `ground_truth`.

    Args:
        ground_truth: COCO instances dict (images, annotations, categories; not modified), or
            a `GroundTruth` made from one (indexed once; its own backend is used).
        detections: float64 (N, 7), columns `DETECTION_COLUMNS` (see `to_coco_detections`).
        backend: 'faster' (faster-coco-eval, the default) or 'pycocotools'; a `GroundTruth`
            carries its own (a different one here raises ValueError).
    Returns:
        plain floats; -1 where COCO has no ground truth of that size.
    """
    detections = np.asarray(detections, dtype=np.float64)
    if detections.ndim != 2 or detections.shape[1] != len(DETECTION_COLUMNS):
        raise ValueError(f"detections: expected shape (N, {len(DETECTION_COLUMNS)}), got {detections.shape}")
    if not len(detections):
        return dict.fromkeys(AP_KEYS, 0.0)
    if isinstance(ground_truth, GroundTruth):
        if backend not in (None, ground_truth.backend):
            raise ValueError(f"backend={backend!r} for a ground truth indexed with {ground_truth.backend!r}")
        gt = ground_truth
    else:
        gt = GroundTruth(ground_truth, backend or "faster")
    with _quiet():
        return _evaluate(gt, detections)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress prints (pycocotools) or INFO summaries (faster-coco-eval)."""
    log = logging.getLogger("faster_coco_eval")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        log.setLevel(level)


def _result_annotations(detections: np.ndarray) -> list[dict]:
    """The annotations `COCO.loadRes` would make of these rows (id, area, iscrowd added),
    built column-wise: loadRes copies and completes one dict per detection in Python, which
    cost more than the C++ matching itself. No 'segmentation': box AP never reads it."""
    d = detections
    rows = zip(
        d[:, 0].astype(np.int64).tolist(),
        d[:, 6].astype(np.int64).tolist(),
        d[:, 1:5].tolist(),
        d[:, 5].tolist(),
        (d[:, 3] * d[:, 4]).tolist(),  # area = w * h, as loadRes computes it
    )
    return [
        {"image_id": i, "category_id": c, "bbox": b, "score": s, "area": a, "id": k, "iscrowd": 0}
        for k, (i, c, b, s, a) in enumerate(rows, start=1)
    ]


def _evaluate(gt: GroundTruth, detections: np.ndarray) -> dict[str, float]:
    dt = gt.coco_class()
    dt.dataset = {
        "info": {},
        "images": list(gt.coco.dataset["images"]),
        "categories": [dict(c) for c in gt.coco.dataset["categories"]],
        "annotations": _result_annotations(detections),
    }
    dt.createIndex()
    ev = gt.eval_class(gt.coco, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return {name: float(v) for name, v in zip(AP_KEYS, np.asarray(ev.stats)[:6])}


def to_coco_detections(
    image_ids: list[int], outputs: list[dict], scales: list[float], category_ids: list[int]
) -> np.ndarray:
    """Model outputs (xyxy at proxy resolution, contiguous labels) -> detections array.

    `scales[k]` is the letterbox factor of image k (proxy pixels per original pixel).
    Returns float64 (N, 7), columns `DETECTION_COLUMNS`. Boxes are divided and their width
    and height taken in float32 (the models' precision), then widened exactly.
    """
    lookup = np.asarray(category_ids, dtype=np.float64)
    parts = [np.zeros((0, len(DETECTION_COLUMNS)))]
    for image_id, out, scale in zip(image_ids, outputs, scales):
        boxes = out["boxes"].detach().float().cpu().numpy() / np.float32(scale)  # (n, 4) xyxy float32
        scores = out["scores"].detach().float().cpu().numpy()  # (n,)
        labels = out["labels"].detach().cpu().numpy()  # (n,) contiguous
        rows = np.empty((len(boxes), len(DETECTION_COLUMNS)))
        rows[:, 0] = image_id
        rows[:, 1:3] = boxes[:, :2]
        rows[:, 3:5] = boxes[:, 2:] - boxes[:, :2]
        rows[:, 5] = scores
        rows[:, 6] = lookup[labels]
        parts.append(rows)
    return np.concatenate(parts)
