"""Our COCO evaluator against the textbook pycocotools path on the same detections.

`python -m benchmarks.proxy_evaluator [images] [detections_per_image] [repeats]`: ground
truth from the built-in dataset's train2017; detections are jittered copies of the boxes
plus random ones. Three ways to the same six APs, each timed `repeats` times (median):

  reference     pycocotools: result dicts -> COCO.loadRes -> COCOeval (what most code does)
  fce_loadres   faster-coco-eval through its own loadRes from the same dicts
  ours          proxy_task.evaluator.coco_box_ap: a (N, 7) array -> faster-coco-eval, the
                result annotations built column-wise (no per-detection loadRes pass), the
                ground truth indexed once (`GroundTruth`, timed apart as index_seconds), as
                a search worker does for all its trials

Prints seconds, ratios against the reference measured in this run, and whether all three
give identical stats.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import statistics
import sys
import time

import numpy as np

from proxy_task.config import ProxyTaskConfig
from proxy_task.data import dataset_root
from proxy_task.evaluator import AP_KEYS, GroundTruth, coco_box_ap


def textbook_box_ap(ground_truth: dict, detections: np.ndarray, backend: str = "pycocotools") -> dict[str, float]:
    """The six box APs the usual way: one result dict per detection through `loadRes`."""
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval.core.faster_eval_api import COCOeval_faster as COCOeval
    results = [
        {"image_id": int(i), "bbox": [x, y, w, h], "score": s, "category_id": int(c)}
        for i, x, y, w, h, s, c in detections.tolist()
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"info": {}, **ground_truth, "annotations": [dict(a) for a in ground_truth["annotations"]]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(AP_KEYS, np.asarray(ev.stats)[:6].tolist()))


def _data(n_images: int, per_image: int) -> tuple[dict, np.ndarray]:
    doc = json.loads((dataset_root(ProxyTaskConfig()) / "annotations" / "instances_train2017.json").read_text())
    keep = {im["id"] for im in doc["images"][:n_images]}
    gt = {
        **doc,
        "images": [im for im in doc["images"] if im["id"] in keep],
        "annotations": [a for a in doc["annotations"] if a["image_id"] in keep],
    }
    rng = random.Random(0)
    cats = [c["id"] for c in doc["categories"]]
    rows = []
    for im in gt["images"]:
        for _ in range(per_image):
            x, y = rng.uniform(0, 100), rng.uniform(0, 100)
            rows.append([im["id"], x, y, rng.uniform(5, 60), rng.uniform(5, 60), rng.random(), rng.choice(cats)])
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        rows.append([a["image_id"], x + rng.gauss(0, 2), y + rng.gauss(0, 2), w, h, rng.random(), a["category_id"]])
    return gt, np.array(rows)


def main() -> None:
    n_images = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    per_image = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    gt, dets = _data(n_images, per_image)
    logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
    start = time.perf_counter()
    indexed = GroundTruth(gt, "faster")
    index_seconds = time.perf_counter() - start
    ways = {
        "reference": lambda: textbook_box_ap(gt, dets, "pycocotools"),
        "fce_loadres": lambda: textbook_box_ap(gt, dets, "faster"),
        "ours": lambda: coco_box_ap(indexed, dets),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    stats = {}
    for _ in range(repeats):
        for name, way in ways.items():  # interleaved, so machine load hits all alike
            start = time.perf_counter()
            stats[name] = way()
            times[name].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "images": len(gt["images"]),
                "detections": len(dets),
                "repeats": repeats,
                "median_seconds": median,
                "index_seconds": index_seconds,
                "speedup_vs_reference": {k: median["reference"] / v for k, v in median.items()},
                "identical_stats": all(stats[k] == stats["reference"] for k in stats),
                "stats": stats["ours"],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
