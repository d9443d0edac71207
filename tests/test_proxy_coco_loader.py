"""The COCO-layout loader on a small hand-made directory with every awkward case."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

from proxy_task import DataError, ProxyTaskConfig
from proxy_task.coco_data import proxy_split, read_coco_split, read_image
from proxy_task.config import PRESETS
from proxy_task.data import build_image_set, load_proxy_data, read_split


def _write(root, images, annotations):
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    cats = [{"id": 3, "name": "cat"}, {"id": 17, "name": "dog"}, {"id": 90, "name": "toothbrush"}]
    doc = {"images": images, "annotations": annotations, "categories": cats}
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(doc))


@pytest.fixture
def coco_dir(tmp_path):
    root = tmp_path / "coco"
    split = root / "train2017"
    split.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(split / "rgb.jpg")
    Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8), "L").save(split / "gray.png")
    Image.new("CMYK", (50, 30), (10, 20, 30, 40)).save(split / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40 wide x 20 high, shown rotated by 90 degrees: 20 x 40
    Image.new("RGB", (40, 20), (200, 0, 0)).save(split / "rotated.jpg", exif=exif)
    Image.new("RGB", (32, 32)).save(split / "empty.png")
    (split / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    names = [
        ("rgb.jpg", 80, 60),
        ("gray.png", 40, 40),
        ("cmyk.jpg", 50, 30),
        ("rotated.jpg", 20, 40),
        ("empty.png", 32, 32),
        ("corrupt.jpg", 64, 64),
        ("missing.jpg", 64, 64),
    ]
    images = [{"id": 10 * (k + 1), "file_name": n, "width": w, "height": h} for k, (n, w, h) in enumerate(names)]
    anns = [
        {"id": 1, "image_id": 10, "category_id": 17, "bbox": [5, 5, 20, 10], "area": 200, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 90, "bbox": [30, 20, 40, 30], "area": 1200, "iscrowd": 0},
        {"id": 3, "image_id": 10, "category_id": 3, "bbox": [0, 0, 80, 60], "area": 4800, "iscrowd": 1},
        {"id": 4, "image_id": 20, "category_id": 3, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 5, "image_id": 20, "category_id": 3, "bbox": [1, 1, 0, 10], "area": 0, "iscrowd": 0},
        {"id": 6, "image_id": 30, "category_id": 90, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 7, "image_id": 40, "category_id": 17, "bbox": [2, 2, 10, 30], "area": 300, "iscrowd": 0},
        {"id": 8, "image_id": 60, "category_id": 17, "bbox": [2, 2, 10, 30], "area": 300, "iscrowd": 0},
    ]
    _write(root, images, anns)
    return root


def test_records_labels_and_crowds(coco_dir):
    split = read_coco_split(coco_dir, "train2017")
    assert split.category_ids == [3, 17, 90] and split.num_classes == 3
    rec = {r.image_id: r for r in split.records}
    assert len(rec) == 7  # the empty image is kept
    np.testing.assert_array_equal(rec[10].labels, [1, 2])  # 17 -> 1, 90 -> 2
    np.testing.assert_allclose(rec[10].boxes, [[5, 5, 25, 15], [30, 20, 70, 50]])
    np.testing.assert_allclose(rec[10].crowd_boxes, [[0, 0, 80, 60]])
    assert len(rec[20].boxes) == 1  # the zero-width box is dropped
    assert len(rec[50].boxes) == 0 and len(rec[50].labels) == 0


def test_read_image_handles_modes_exif_and_bad_files(coco_dir, caplog):
    rec = {r.image_id: r for r in read_coco_split(coco_dir, "train2017").records}
    assert read_image(rec[10]).shape == (60, 80, 3)
    assert read_image(rec[20]).shape == (40, 40, 3)  # grayscale -> RGB
    assert read_image(rec[30]).shape == (30, 50, 3)  # CMYK -> RGB
    assert read_image(rec[40]).shape == (40, 20, 3)  # EXIF orientation applied: matches the JSON size
    with caplog.at_level(logging.WARNING):
        assert read_image(rec[60]) is None
        assert read_image(rec[70]) is None
    assert "skipping image 60" in caplog.text and "skipping image 70" in caplog.text


def test_tensor_cache_skips_and_counts_unreadable(coco_dir, tmp_path):
    split = read_coco_split(coco_dir, "train2017")
    images = build_image_set(split, 64, tmp_path / "cache")
    assert images.skipped == 2 and len(images) == 5
    assert images.images.shape == (5, 3, 64, 64) and images.images.dtype == np.uint8
    k = images.image_ids.index(10)
    assert images.scales[k] == pytest.approx(64 / 80)
    np.testing.assert_allclose(images.boxes[k].numpy(), np.array([[5, 5, 25, 15], [30, 20, 70, 50]]) * 0.8)
    assert images.images[images.image_ids.index(50)].max() == 0  # black image, zero padding
    again = build_image_set(split, 64, tmp_path / "cache")  # from the cache
    np.testing.assert_array_equal(again.images, images.images)


def test_nothing_readable_is_a_clear_error(coco_dir, tmp_path):
    split = read_coco_split(coco_dir, "train2017").subset([60, 70])
    with pytest.raises(DataError, match="none of the 2 images"):
        build_image_set(split, 64, tmp_path / "cache")


def test_proxy_split_is_deterministic_and_disjoint():
    ids = list(range(1, 1001, 3))
    train, held = proxy_split(ids, 50, seed=0)
    assert len(held) == 50 and len(train) == len(ids) - 50
    assert not set(train) & set(held) and sorted(train + held) == ids
    assert proxy_split(list(reversed(ids)), 50, seed=0) == (train, held)  # order of the input does not matter
    assert proxy_split(ids, 50, seed=1)[1] != held
    with pytest.raises(ValueError):
        proxy_split(ids, len(ids), 0)


def test_load_proxy_data_on_coco_layout(coco_dir, tmp_path):
    cfg = ProxyTaskConfig(
        dataset="coco", data_root=str(coco_dir), cache_dir=str(tmp_path / "c"), holdout_images=2, image_size=64
    )
    data = load_proxy_data(cfg)
    assert len(data.train) + len(data.eval) + data.train.skipped + data.eval.skipped == 7
    assert {im["id"] for im in data.ground_truth["images"]} == set(data.eval.image_ids)
    assert data.num_classes == 3


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="COCO root not found"):
        load_proxy_data(ProxyTaskConfig(dataset="coco", data_root=str(tmp_path / "nope"), cache_dir=str(tmp_path)))


def test_boxes_are_clipped_and_every_drop_is_counted(tmp_path, caplog):
    root = tmp_path / "coco"
    (root / "train2017").mkdir(parents=True)
    images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}]
    ann = {"image_id": 1, "category_id": 3, "area": 900.0, "iscrowd": 0}
    anns = [
        {**ann, "id": 1, "bbox": [90, -10, 30, 30]},  # reaches out right and above: [90, 0, 100, 20]
        {**ann, "id": 2, "bbox": [10, 10, 20, 20]},  # inside: unchanged
        {**ann, "id": 3, "image_id": 9, "bbox": [1, 1, 5, 5]},  # an image the file does not list
        {**ann, "id": 4, "category_id": 5, "bbox": [1, 1, 5, 5]},  # a category it does not list
        {**ann, "id": 5, "bbox": [float("nan"), 1, 5, 5]},
        {**ann, "id": 6, "bbox": [120, 10, 5, 5]},  # wholly outside: nothing left after clipping
        {**ann, "id": 7, "bbox": [1, 1, 0, 5]},
    ]
    _write(root, images, anns)
    # the bccd preset's split names on a COCO-2017 folder: train finds instances_train2017.json
    cfg = PRESETS["bccd"]().replace(dataset="coco", data_root=str(root))
    with caplog.at_level(logging.WARNING, logger="proxy_task.data.repairs"):
        split = read_split(cfg, "train")
    assert {kind: ids for kind, ids in split.repairs.items() if ids} == {
        "of an unknown image dropped": [3],
        "of an unknown category dropped": [4],
        "with a non-finite coordinate dropped": [5],
        "clipped to the image": [1],
        "without width or height dropped": [6, 7],
    }
    np.testing.assert_allclose(split.records[0].boxes, [[90, 0, 100, 20], [10, 10, 30, 30]])
    kept = {a["id"]: a for a in split.document["annotations"]}  # the evaluation sees the same boxes
    assert sorted(kept) == [1, 2] and kept[1]["bbox"] == [90, 0, 10, 20] and kept[1]["area"] == 200
    assert kept[2]["bbox"] == [10, 10, 20, 20] and kept[2]["area"] == 900
    assert "1 clipped to the image; 2 without width or height dropped" in caplog.text
    assert "without width or height dropped: ids 6, 7" in caplog.text
