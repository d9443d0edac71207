"""COCO box AP: faster-coco-eval (C++ matching and accumulation), pycocotools as reference.

Both backends run on the same in-memory ground truth (a COCO instances dict: crowd
annotations are handled by COCO's own rules) and the same detections, and return the six
box APs. No detections scores 0 everywhere (pycocotools' `loadRes([])` would raise).
"""

from __future__ import annotations

import contextlib
import io
import logging

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


def coco_box_ap(ground_truth: dict, detections: list[dict], backend: str = "faster") -> dict[str, float]:
    """AP, AP50, AP75, APs, APm, APl of `detections` on `ground_truth`.

    Args:
        ground_truth: COCO instances dict (images, annotations, categories).
        detections: [{'image_id', 'category_id', 'bbox': [x, y, w, h], 'score'}] (not modified).
        backend: 'faster' (faster-coco-eval) or 'pycocotools'.
    Returns:
        plain floats; -1 where COCO has no ground truth of that size.
    """
    if not detections:
        return dict.fromkeys(AP_KEYS, 0.0)
    COCO, COCOeval = _coco_api(backend)
    gt_doc = {"info": {}, **ground_truth}
    quiet = logging.getLogger("faster_coco_eval")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # faster-coco-eval logs its summary at INFO
    try:
        return _evaluate(COCO, COCOeval, gt_doc, detections)
    finally:
        quiet.setLevel(level)


def _evaluate(COCO, COCOeval, gt_doc: dict, detections: list[dict]) -> dict[str, float]:  # noqa: N803
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO()
        # Shallow copies per record: the APIs add keys to these dicts but never mutate nested values.
        gt.dataset = {**gt_doc, "annotations": [dict(a) for a in gt_doc["annotations"]]}
        gt.createIndex()
        dt = gt.loadRes([dict(d) for d in detections])  # loadRes adds id/area/segmentation
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(AP_KEYS, np.asarray(ev.stats)[:6])}


def to_coco_detections(
    image_ids: list[int], outputs: list[dict], scales: list[float], category_ids: list[int]
) -> list[dict]:
    """Model outputs (xyxy at proxy resolution, contiguous labels) -> COCO results.

    `scales[k]` is the letterbox factor of image k (proxy pixels per original pixel).
    """
    results = []
    for image_id, out, scale in zip(image_ids, outputs, scales):
        boxes = out["boxes"].detach().float().cpu().numpy() / scale
        scores = out["scores"].detach().float().cpu().numpy()
        labels = out["labels"].detach().cpu().numpy()
        for (x0, y0, x1, y1), s, lab in zip(boxes, scores, labels):
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_ids[int(lab)]),
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "score": float(s),
                }
            )
    return results
