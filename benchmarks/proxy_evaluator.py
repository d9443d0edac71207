"""Our COCO evaluator (faster-coco-eval) against pycocotools on the same detections.

`python -m benchmarks.proxy_evaluator [images] [detections_per_image]`: ground truth from the
built-in dataset's train2017, detections are jittered copies of the boxes plus random ones.
"""

from __future__ import annotations

import json
import random
import sys
import time

from proxy_task.config import ProxyTaskConfig
from proxy_task.data import dataset_root
from proxy_task.evaluator import coco_box_ap


def main() -> None:
    n_images = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    per_image = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    doc = json.loads((dataset_root(ProxyTaskConfig()) / "annotations" / "instances_train2017.json").read_text())
    keep = {im["id"] for im in doc["images"][:n_images]}
    gt = {
        **doc,
        "images": [im for im in doc["images"] if im["id"] in keep],
        "annotations": [a for a in doc["annotations"] if a["image_id"] in keep],
    }
    rng = random.Random(0)
    cats = [c["id"] for c in doc["categories"]]
    dets = []
    for im in gt["images"]:
        for _ in range(per_image):
            x, y = rng.uniform(0, 100), rng.uniform(0, 100)
            dets.append(
                {
                    "image_id": im["id"],
                    "category_id": rng.choice(cats),
                    "bbox": [x, y, rng.uniform(5, 60), rng.uniform(5, 60)],
                    "score": rng.random(),
                }
            )
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        dets.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": [x + rng.gauss(0, 2), y + rng.gauss(0, 2), w, h],
                "score": rng.random(),
            }
        )
    times, stats = {}, {}
    for backend in ("faster", "pycocotools"):
        start = time.perf_counter()
        stats[backend] = coco_box_ap(gt, dets, backend)
        times[backend] = time.perf_counter() - start
    same = all(abs(stats["faster"][k] - stats["pycocotools"][k]) < 1e-12 for k in stats["faster"])
    print(
        json.dumps(
            {
                "images": len(gt["images"]),
                "detections": len(dets),
                "seconds": times,
                "speedup": times["pycocotools"] / times["faster"],
                "identical_stats": same,
                "stats": stats["faster"],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
