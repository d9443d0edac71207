"""Pascal VOC conversion and the any-layout COCO loader, on the shipped BCCD files and on
hand-made broken inputs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from proxy_task import DataError, ProxyTaskConfig
from proxy_task.config import BCCD_ROOT, bccd_config, bccd_retrain_config
from proxy_task.data import load_proxy_data, read_split
from proxy_task.voc import VocError, voc_split_files, voc_to_coco

ROOT = Path(__file__).resolve().parents[1]
BCCD = Path(BCCD_ROOT)

# the shipped BCCD splits: (images, boxes per class) after conversion; two 1x1-pixel RBC boxes
# (BloodImage_00338 in val, BloodImage_00343 in train) are the only ones dropped
SPLITS = {
    "train": (205, {"Platelets": 209, "RBC": 2381, "WBC": 214}),
    "val": (87, {"Platelets": 83, "RBC": 967, "WBC": 87}),
    "test": (72, {"Platelets": 69, "RBC": 805, "WBC": 71}),
    "trainval": (292, {"Platelets": 292, "RBC": 3348, "WBC": 301}),
}


@pytest.mark.parametrize("split", list(SPLITS))
def test_shipped_bccd_splits_convert_with_every_box_counted(split):
    doc, report = voc_to_coco(voc_split_files(BCCD, split), BCCD / "JPEGImages")
    images, per_class = SPLITS[split]
    assert len(doc["images"]) == report.images == images
    assert dict(report.boxes) == per_class and len(doc["annotations"]) == sum(per_class.values())
    assert [c["name"] for c in doc["categories"]] == ["Platelets", "RBC", "WBC"]
    assert {(im["width"], im["height"]) for im in doc["images"]} == {(640, 480)}
    assert report.broken == [] and report.clipped == 0 and report.difficult == 0
    assert len(report.degenerate) == {"train": 1, "val": 1, "trainval": 2}.get(split, 0)


def test_bccd_splits_are_disjoint_and_cover_the_dataset():
    stems = {s: {p.stem for p in voc_split_files(BCCD, s)} for s in ("train", "val", "test")}
    assert not stems["train"] & stems["val"] and not stems["train"] & stems["test"] and not stems["val"] & stems["test"]
    assert len(stems["train"] | stems["val"] | stems["test"]) == len(list((BCCD / "Annotations").glob("*.xml"))) == 364


def test_first_bccd_box_follows_the_voc_to_coco_convention():
    doc, _ = voc_to_coco([BCCD / "Annotations" / "BloodImage_00000.xml"], BCCD / "JPEGImages")
    first = doc["annotations"][0]  # <xmin>260 <ymin>177 <xmax>491 <ymax>376, 1-based inclusive
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert first["bbox"] == [259.0, 176.0, 232.0, 200.0] and names[first["category_id"]] == "WBC"
    assert doc["images"][0]["file_name"] == "BloodImage_00000.jpg"


def test_bccd_presets_read_their_splits():
    train, val = read_split(bccd_config(), "train"), read_split(bccd_config(), "eval")
    assert len(train.records) == 205 and len(val.records) == 87 and train.num_classes == 3
    assert sum(len(r.boxes) for r in train.records) == 2804
    test = read_split(bccd_retrain_config(), "eval")
    assert len(test.records) == 72 and len(read_split(bccd_retrain_config(), "train").records) == 292


def test_bccd_proxy_data_at_a_small_size(tmp_path):
    data = load_proxy_data(bccd_config().replace(image_size=64, cache_dir=str(tmp_path)))
    assert len(data.train) == 205 and len(data.eval) == 87 and data.num_classes == 3
    assert data.train.images.shape == (205, 3, 64, 64)
    assert data.train.scales[0] == pytest.approx(0.1)  # 640 -> 64
    assert data.train.images[0, :, 48:].max() == 0  # 480 * 0.1 = 48 rows of image, then padding
    assert len(data.ground_truth["annotations"]) == 1137  # val's boxes (its 1x1 box dropped)


# -- a hand-made VOC folder with every awkward case ----------------------------------------------
def _xml(name, objects, size=(64, 48), filename=None):
    sz = "" if size is None else f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
    objs = "".join(
        f"<object><name>{c}</name><truncated>{t}</truncated><difficult>{d}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for c, b, t, d in objects
    )
    return f"<annotation><filename>{filename or name + '.jpg'}</filename>{sz}{objs}</annotation>"


@pytest.fixture
def voc_dir(tmp_path):
    xml, img = tmp_path / "labels", tmp_path / "pictures"  # not the VOC folder names: any layout
    xml.mkdir()
    img.mkdir()
    for stem in ("a", "b", "c", "d", "e"):
        Image.new("RGB", (64, 48), (90, 20, 20)).save(img / f"{stem}.jpg")
    Image.new("RGB", (40, 30)).save(img / "f.png")  # found by stem, size from the header
    files = {
        "a": _xml("a", [("cat", (1, 1, 10, 10), 0, 0), ("dog", (20, 20, 80, 60), 1, 0)]),  # 2nd clipped
        "b": _xml("b", [("cat", (5, 5, 20, 20), 0, 1), ("dog", (30, 30, 30, 30), 0, 0)]),  # difficult; 1 px
        "c": _xml("c", []),  # background image
        "d": _xml("d", [("bird", (1, 1, 5, 5), 0, 0)], filename="elsewhere/d.jpg"),
        "f": _xml("f", [("cat", (2, 2, 12, 12), 0, 0)], size=None, filename="f.jpeg"),
        "g": _xml("g", [("cat", (1, 1, 5, 5), 0, 0)]),  # no image g.*
    }
    for stem, text in files.items():
        (xml / f"{stem}.xml").write_text(text)
    (xml / "h.xml").write_text("<annotation><filename>a.jpg</filename><object>")  # truncated file
    (xml / "i.xml").write_text("<html/>")
    return xml, img


def test_awkward_voc_cases_are_repaired_and_counted(voc_dir):
    xml, img = voc_dir
    doc, report = voc_to_coco(sorted(xml.glob("*.xml")), img)
    assert report.files == 8 and report.images == 5  # g (no image), h (broken), i (not VOC) left out
    assert [b.split(":")[0] for b in report.broken] == ["g.xml", "h.xml", "i.xml"]
    assert dict(report.boxes) == {"cat": 3, "dog": 1, "bird": 1}
    assert report.clipped == 1 and report.difficult == 1 and report.truncated == 1 and report.empty == 1
    assert report.degenerate == ["b.xml: dog [30, 30, 30, 30]"]
    by_file = {im["file_name"]: im for im in doc["images"]}
    assert by_file["f.png"]["width"] == 40 and by_file["f.png"]["height"] == 30
    anns = {(a["image_id"], a["category_id"]): a for a in doc["annotations"]}
    cats = {c["name"]: c["id"] for c in doc["categories"]}
    assert cats == {"bird": 1, "cat": 2, "dog": 3}
    a_id, b_id = by_file["a.jpg"]["id"], by_file["b.jpg"]["id"]
    assert anns[(a_id, cats["dog"])]["bbox"] == [19.0, 19.0, 45.0, 29.0]  # clipped to 64 x 48
    assert anns[(b_id, cats["cat"])]["iscrowd"] == 1 and anns[(b_id, cats["cat"])]["difficult"] == 1
    assert "5 images from 8 xml files" in report.summary() and "3 files left out" in report.summary()


def test_classes_fix_the_ids_and_count_the_others(voc_dir):
    xml, img = voc_dir
    doc, report = voc_to_coco(sorted(xml.glob("*.xml")), img, classes=["dog", "cat"])
    assert [(c["id"], c["name"]) for c in doc["categories"]] == [(1, "dog"), (2, "cat")]
    assert report.unknown_class == ["d.xml: 'bird'"] and "bird" not in report.boxes


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "proxy_task.voc2coco", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)  # fmt: skip


def test_cli_any_layout_writes_a_loadable_coco_file(voc_dir, tmp_path):
    xml, img = voc_dir
    out = tmp_path / "out" / "train.json"
    r = _cli("--annotations", xml, "--images", img, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "5 images from 8 xml files" in r.stdout and "left out: h.xml" in r.stdout
    cfg = ProxyTaskConfig(dataset="coco", train_json=str(out), train_images=str(img), holdout_images=2,
                          image_size=32, cache_dir=str(tmp_path / "c"))  # fmt: skip
    data = load_proxy_data(cfg)
    assert len(data.train) == 3 and len(data.eval) == 2 and data.num_classes == 3


@pytest.mark.parametrize(
    "args,words",
    [
        (["nope"], "not a Pascal VOC folder"),
        (["--annotations", "nope", "--images", "."], "annotation folder not found"),
        (["--images", "."], "give a VOC folder, or both"),
        ([BCCD, "--split", "nope"], "split list"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, words):
    r = _cli(*args, "--out", tmp_path / "x.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and words in r.stderr


def test_a_folder_of_only_broken_files_is_one_line(voc_dir, tmp_path):
    xml, img = voc_dir
    for p in xml.glob("*.xml"):
        if p.stem not in ("h", "i"):
            p.unlink()
    with pytest.raises(VocError, match="none of the 2 xml files could be converted"):
        voc_to_coco(sorted(xml.glob("*.xml")), img)
    r = _cli("--annotations", xml, "--images", img, "--out", tmp_path / "x.json")
    assert r.returncode == 2 and r.stderr.startswith("error: none of the 2 xml files")
    assert not (tmp_path / "x.json").exists()


# -- COCO JSON + image folder in any layout ------------------------------------------------------
def _pair(tmp_path, doc):
    img = tmp_path / "my_images"
    img.mkdir(exist_ok=True)
    for k in range(1, 5):
        Image.fromarray(np.full((32, 48, 3), 40 * k, np.uint8)).save(img / f"{k}.png")
    ann = tmp_path / "labels" / "export.json"
    ann.parent.mkdir(exist_ok=True)
    ann.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return ann, img


def _doc(n=4):
    images = [{"id": k, "file_name": f"{k}.png", "width": 48, "height": 32} for k in range(1, n + 1)]
    anns = [{"id": k, "image_id": k, "category_id": 7, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0}
            for k in range(1, n + 1)]  # fmt: skip
    return {"images": images, "annotations": anns, "categories": [{"id": 7, "name": "cell"}]}


def test_coco_pair_for_train_and_eval(tmp_path):
    ann, img = _pair(tmp_path, _doc())
    cfg = ProxyTaskConfig(dataset="coco", train_json=str(ann), train_images=str(img), eval_split="val",
                          eval_json=str(ann), eval_images=str(img), image_size=32, cache_dir=str(tmp_path / "c"))  # fmt: skip
    data = load_proxy_data(cfg)
    assert len(data.train) == 4 and len(data.eval) == 4 and data.category_ids == [7]


@pytest.mark.parametrize(
    "doc,words",
    [
        ("[1, 2", "malformed annotation JSON"),
        ([], "not a COCO instances file"),
        ({"images": [{"id": 1}], "annotations": [], "categories": []}, "malformed COCO entry (KeyError"),
        ({**_doc(), "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": "x"}]}, "malformed COCO entry"),
    ],
)
def test_malformed_coco_pair_is_a_data_error(tmp_path, doc, words):
    ann, img = _pair(tmp_path, doc)
    cfg = ProxyTaskConfig(dataset="coco", train_json=str(ann), train_images=str(img), cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match=words.replace("(", r"\(")) as e:
        load_proxy_data(cfg)
    assert "\n" not in str(e.value) and "export.json" in str(e.value)


def test_coco_pair_settings_are_checked():
    with pytest.raises(ValueError, match="go together"):
        ProxyTaskConfig(dataset="coco", train_json="a.json")
    with pytest.raises(ValueError, match="need dataset=coco"):
        ProxyTaskConfig(dataset="voc", train_json="a.json", train_images="x")
    with pytest.raises(DataError, match="needs eval_json"):
        read_split(ProxyTaskConfig(dataset="coco", train_json="a.json", train_images="x", eval_split="val"), "eval")
    with pytest.raises(DataError, match="VOC root not found"):
        read_split(ProxyTaskConfig(dataset="voc", data_root="/nope"), "train")


def test_search_cli_on_a_bad_voc_root_is_one_line(tmp_path):
    cmd = [sys.executable, "-m", "search.run", f"storage_path={tmp_path}", "proxy_task=bccd",
           f"proxy_task.data_root={tmp_path / 'nope'}", "wandb.mode=disabled"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: proxy_task data: VOC root not found")


@pytest.mark.slow
def test_search_on_bccd_and_on_a_converted_coco_pair(tmp_path):
    """`python -m search.run proxy_task=bccd` on the shipped images (smaller and shorter here),
    then the same search on the COCO file that voc2coco writes, as the README shows."""
    small = ["proxy_task.image_size=64", "proxy_task.backbone_pretrain_steps=4", "proxy_task.epochs=0.3",
             "proxy_task.eval_subsample=12", "proxy_task.repeats=1", "proxy_task.channels=8",
             "num_trials=2", "concurrency=1", "wandb.mode=disabled", f"storage_path={tmp_path}"]  # fmt: skip
    env = {**os.environ, "NASFPN_CACHE": str(tmp_path / "cache")}
    run = [sys.executable, "-m", "search.run", "proxy_task=bccd"]
    r = subprocess.run([*run, "name=voc", *small], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2/2 trials trained" in r.stdout and (tmp_path / "voc" / "best_genotype.json").is_file()
    train = tmp_path / "train.json"
    assert _cli(BCCD, "--split", "train", "--out", train).returncode == 0
    pair = ["proxy_task.dataset=coco", f"proxy_task.train_json={train}", f"proxy_task.train_images={BCCD / 'JPEGImages'}",
            "proxy_task.eval_split=proxy", "proxy_task.holdout_images=20"]  # fmt: skip
    r = subprocess.run(
        [*run, "name=coco", *small, *pair], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2/2 trials trained" in r.stdout


def test_shipped_bccd_missing_from_an_install_says_where_it_lives(tmp_path, monkeypatch):
    import proxy_task.data

    gone = str(tmp_path / "site-packages" / "data" / "bccd" / "BCCD")  # an install without the repository's data/
    monkeypatch.setattr(proxy_task.data, "BCCD_ROOT", gone)
    with pytest.raises(DataError, match="shipped BCCD images are not at .*run from a clone"):
        read_split(bccd_config().replace(data_root=gone), "train")
