"""Broken labelled data given to the commands a user runs (a search, one training, the box-size
study, the VOC converter): each refuses in one line on stderr with exit status 2, before any
training, naming the file and what is wrong with it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from proxy_task.voc import voc_to_coco
from studies.box_sizes import main as box_sizes

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, cwd):
    r = subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, timeout=180, cwd=cwd)
    lines = r.stderr.strip().splitlines()
    return r.returncode, lines[-1] if lines else "", r.stderr


def _coco_pair(tmp_path, doc):
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    Image.new("RGB", (48, 32), (80, 10, 10)).save(images / "1.png")
    ann = tmp_path / "train.json"
    ann.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return ann, images


def _voc_folder(tmp_path, xml_texts, listing: bytes | None = None):
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for stem, text in xml_texts.items():
        (root / "Annotations" / f"{stem}.xml").write_text(text)
    for split in ("train", "val"):
        (root / "ImageSets" / "Main" / f"{split}.txt").write_bytes(listing or "\n".join(xml_texts).encode())
    return root


COMMANDS = {  # command lines that read the training split first, writing under `out`
    "search": lambda out: ["search.run", "wandb.mode=disabled", "name=bad", f"storage_path={out}"],
    "train": lambda out: ["proxy_task.train", "genotype=paper", f"out_dir={out}"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_malformed_coco_json_is_one_line(tmp_path, command):
    ann, images = _coco_pair(tmp_path, '{"images": [1, 2')
    data = ["proxy_task.dataset=coco", f"proxy_task.train_json={ann}", f"proxy_task.train_images={images}",
            "proxy_task.eval_split=proxy", "proxy_task.holdout_images=1"]  # fmt: skip
    code, last, err = _run(*COMMANDS[command](tmp_path / "runs"), *data, cwd=tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert last.startswith("error: ") and "train.json: malformed annotation JSON" in last


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_voc_folder_of_broken_xml_is_one_line(tmp_path, command):
    root = _voc_folder(tmp_path, {"a": "<annotation><object>", "b": "<html/>"})
    code, last, err = _run(*COMMANDS[command](tmp_path / "runs"), f"proxy_task.data_root={root}", cwd=tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert last.startswith("error: ") and "none of the 2 xml files could be converted" in last


def test_a_split_list_that_is_not_text_is_one_line(tmp_path):
    root = _voc_folder(tmp_path, {"a": "<annotation/>"}, listing=b"\xff\xfe\x00\x81 binary")
    code, last, err = _run("proxy_task.voc2coco", root, "--split", "train", "--out", tmp_path / "x.json", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "train.txt is not a readable text file" in last


def test_non_finite_voc_coordinates_are_dropped_and_counted(tmp_path):
    Image.new("RGB", (64, 48)).save(tmp_path / "a.jpg")
    box = "<bndbox><xmin>{}</xmin><ymin>2</ymin><xmax>20</xmax><ymax>20</ymax></bndbox>"
    objects = "".join(f"<object><name>cell</name>{box.format(x)}</object>" for x in ("nan", "inf", "3"))
    (tmp_path / "a.xml").write_text(f"<annotation><filename>a.jpg</filename>{objects}</annotation>")
    doc, report = voc_to_coco([tmp_path / "a.xml"], tmp_path)
    assert [a["bbox"] for a in doc["annotations"]] == [[2.0, 1.0, 18.0, 19.0]]
    assert report.degenerate == ["a.xml: cell (no finite numeric bndbox)"] * 2


def test_box_sizes_on_a_split_without_boxes_is_one_line(tmp_path, capsys):
    doc = {"images": [{"id": 1, "file_name": "1.png", "width": 48, "height": 32}], "annotations": [],
           "categories": [{"id": 1, "name": "cell"}]}  # fmt: skip
    ann, images = _coco_pair(tmp_path, doc)
    assert box_sizes(["bccd", "dataset=coco", f"train_json={ann}", f"train_images={images}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train split has no boxes (1 images)" in err
