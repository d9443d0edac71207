"""Our COCO evaluator (faster-coco-eval) against the pycocotools reference."""

import random

import pytest

from proxy_task.evaluator import AP_KEYS, coco_box_ap


def _ground_truth() -> dict:
    images = [{"id": k, "width": 200, "height": 150, "file_name": f"{k}.jpg"} for k in (1, 2, 5)]
    cats = [{"id": 3, "name": "a"}, {"id": 8, "name": "b"}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 30], "area": 600, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 8, "bbox": [50, 40, 100, 80], "area": 8000, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": [0, 0, 60, 60], "area": 3600, "iscrowd": 1},
        {"id": 4, "image_id": 2, "category_id": 3, "bbox": [100, 20, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 5, "image_id": 5, "category_id": 8, "bbox": [5, 5, 8, 6], "area": 48, "iscrowd": 0},
    ]
    return {"images": images, "annotations": anns, "categories": cats}


def _detections(seed: int) -> list[dict]:
    rng = random.Random(seed)
    dets = []
    for a in _ground_truth()["annotations"]:
        for _ in range(3):
            x, y, w, h = a["bbox"]
            box = [x + rng.gauss(0, 3), y + rng.gauss(0, 3), w * rng.uniform(0.7, 1.3), h * rng.uniform(0.7, 1.3)]
            cat = a["category_id"] if rng.random() < 0.8 else 11 - a["category_id"]
            dets.append({"image_id": a["image_id"], "category_id": cat, "bbox": box, "score": rng.random()})
    return dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_faster_equals_pycocotools(seed):
    gt, dets = _ground_truth(), _detections(seed)
    ours = coco_box_ap(gt, dets, "faster")
    reference = coco_box_ap(gt, dets, "pycocotools")
    assert set(ours) == set(AP_KEYS)
    assert ours == pytest.approx(reference, abs=1e-12)
    assert 0.0 < ours["ap"] < 1.0


def test_perfect_detections_score_one_and_crowd_is_ignored():
    gt = _ground_truth()
    dets = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
        for a in gt["annotations"]
        if not a["iscrowd"]
    ]
    # a detection on the crowd region is neither a true nor a false positive
    dets.append({"image_id": 2, "category_id": 3, "bbox": [0, 0, 60, 60], "score": 0.95})
    assert coco_box_ap(gt, dets)["ap"] == pytest.approx(1.0)
    assert coco_box_ap(gt, dets, "pycocotools")["ap"] == pytest.approx(1.0)


def test_no_detections_is_zero_not_an_error():
    assert coco_box_ap(_ground_truth(), []) == dict.fromkeys(AP_KEYS, 0.0)


def test_inputs_are_not_mutated():
    gt, dets = _ground_truth(), _detections(0)
    before = repr(dets)
    coco_box_ap(gt, dets)
    assert repr(dets) == before


def test_results_table_columns_follow_the_ap_keys():
    from results.ranking import METRIC_COLUMNS

    assert tuple(key for key, _ in METRIC_COLUMNS) == AP_KEYS
