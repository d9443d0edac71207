"""Our COCO evaluator (faster-coco-eval) against the pycocotools reference."""

import random

import numpy as np
import pytest
import torch

from benchmarks.proxy_evaluator import textbook_box_ap  # pycocotools' own loadRes path
from proxy_task.evaluator import AP_KEYS, GroundTruth, coco_box_ap, to_coco_detections


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


def _detections(seed: int) -> np.ndarray:
    """(N, 7) rows: image id, x, y, w, h, score, category id."""
    rng = random.Random(seed)
    dets = []
    for a in _ground_truth()["annotations"]:
        for _ in range(3):
            x, y, w, h = a["bbox"]
            box = [x + rng.gauss(0, 3), y + rng.gauss(0, 3), w * rng.uniform(0.7, 1.3), h * rng.uniform(0.7, 1.3)]
            cat = a["category_id"] if rng.random() < 0.8 else 11 - a["category_id"]
            dets.append([a["image_id"], *box, rng.random(), cat])
    return np.array(dets)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_backends_equal_pycocotools_loadres(seed):
    gt, dets = _ground_truth(), _detections(seed)
    reference = textbook_box_ap(gt, dets)
    for backend in ("faster", "pycocotools"):
        ours = coco_box_ap(gt, dets, backend)
        assert tuple(ours) == AP_KEYS
        assert ours == pytest.approx(reference, abs=1e-12), backend
    assert 0.0 < reference["ap"] < 1.0


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_an_indexed_ground_truth_serves_many_evaluations(backend):
    gt = _ground_truth()
    indexed = GroundTruth(gt, backend)
    for seed in (0, 1, 2, 0):
        assert coco_box_ap(indexed, _detections(seed)) == pytest.approx(
            textbook_box_ap(gt, _detections(seed)), abs=1e-12
        )
    assert coco_box_ap(indexed, np.zeros((0, 7))) == dict.fromkeys(AP_KEYS, 0.0)
    other = "pycocotools" if backend == "faster" else "faster"
    with pytest.raises(ValueError, match="indexed with"):
        coco_box_ap(indexed, _detections(0), other)


def test_to_coco_detections_rows():
    outputs = [
        {
            "boxes": torch.tensor([[10.0, 20.0, 30.5, 60.0]]),
            "scores": torch.tensor([0.75]),
            "labels": torch.tensor([1]),
        },
        {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)},
        {
            "boxes": torch.tensor([[0.0, 0.0, 3.0, 3.0], [1.0, 1.0, 2.0, 5.0]]),
            "scores": torch.tensor([0.5, 0.25]),
            "labels": torch.tensor([0, 1]),
        },
    ]
    rows = to_coco_detections([7, 8, 9], outputs, [0.5, 1.0, 2.0], [3, 8])
    assert rows.dtype == np.float64 and rows.tolist() == [
        [7, 20.0, 40.0, 41.0, 80.0, 0.75, 8],  # boxes / scale, xyxy -> xywh, label -> category id
        [9, 0.0, 0.0, 1.5, 1.5, 0.5, 3],
        [9, 0.5, 0.5, 0.5, 2.0, 0.25, 8],
    ]
    assert to_coco_detections([1], outputs[1:2], [1.0], [3]).shape == (0, 7)


def test_perfect_detections_score_one_and_crowd_is_ignored():
    gt = _ground_truth()
    dets = [[a["image_id"], *a["bbox"], 0.9, a["category_id"]] for a in gt["annotations"] if not a["iscrowd"]]
    # a detection on the crowd region is neither a true nor a false positive
    dets = np.array([*dets, [2, 0, 0, 60, 60, 0.95, 3]])
    assert coco_box_ap(gt, dets)["ap"] == pytest.approx(1.0)
    assert coco_box_ap(gt, dets, "pycocotools")["ap"] == pytest.approx(1.0)


def test_no_detections_is_zero_not_an_error():
    assert coco_box_ap(_ground_truth(), np.zeros((0, 7))) == dict.fromkeys(AP_KEYS, 0.0)
    with pytest.raises(ValueError, match="expected shape"):
        coco_box_ap(_ground_truth(), np.zeros((3, 5)))


def test_inputs_are_not_mutated():
    gt, dets = _ground_truth(), _detections(0)
    before = repr(gt), dets.copy()
    for backend in ("faster", "pycocotools"):
        coco_box_ap(gt, dets, backend)
    assert repr(gt) == before[0] and np.array_equal(dets, before[1])


def test_results_table_columns_follow_the_ap_keys():
    from results.ranking import METRIC_COLUMNS

    assert tuple(key for key, _ in METRIC_COLUMNS) == AP_KEYS
