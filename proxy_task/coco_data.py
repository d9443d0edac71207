"""COCO-layout annotations -> per-image records, the paper's proxy split, robust image reading.

Layout: `<root>/annotations/instances_<split>.json` and `<root>/<split>/<file_name>`.

* Category ids (COCO's are 1..90 with gaps) map to contiguous labels 0..K-1 in id order.
* Crowd annotations (`iscrowd=1`) are kept apart: training ignores them; evaluation uses the
  original annotations, so COCO's own crowd matching applies.
* Images without annotations are kept (they teach the background).
* Boxes are xywh in JSON, xyxy in records. Boxes reaching outside the image are clipped to
  it; boxes with a non-finite coordinate or no width or height left, and annotations of an
  image or category the file does not list, are dropped. Each is counted (`CocoSplit.repairs`,
  logged by the loader with the first ids), never dropped silently; the evaluation document
  holds the same repaired boxes as the training records.

Proxy split (docs/proxy_task.md): the reward is measured on `holdout` images of train2017,
never val2017. They are the first `holdout` ids of the sorted train image ids permuted by
numpy's PCG64 generator seeded with `split_seed`; training uses all other images. So the
split depends only on the id set, the count and the seed (not on file order or platform).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)


@dataclass
class ImageRecord:
    """One image: where it is, its size, boxes xyxy (float32) and contiguous labels (int64)."""

    image_id: int
    path: Path
    width: int
    height: int
    boxes: np.ndarray  # (n, 4) xyxy, non-crowd
    labels: np.ndarray  # (n,) in 0..K-1
    crowd_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))


@dataclass
class CocoSplit:
    """An annotation file read into records plus the raw document for evaluation."""

    records: list[ImageRecord]
    category_ids: list[int]  # label k <-> category_ids[k]
    document: dict  # the instances JSON (images, annotations, categories) with the repaired boxes
    repairs: dict[str, list[int]] = field(default_factory=dict)  # kind -> annotation ids (see _records)

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def subset(self, image_ids: set[int] | list[int]) -> CocoSplit:
        """Records and ground-truth document restricted to `image_ids` (order of records kept)."""
        keep = set(image_ids)
        doc = dict(self.document)
        doc["images"] = [im for im in self.document["images"] if im["id"] in keep]
        doc["annotations"] = [a for a in self.document["annotations"] if a["image_id"] in keep]
        return CocoSplit([r for r in self.records if r.image_id in keep], self.category_ids, doc, self.repairs)

    def repair_summary(self) -> str:
        """One line: how many annotations were clipped or dropped, and why ('' if none)."""
        return "; ".join(f"{len(ids)} {kind}" for kind, ids in self.repairs.items() if ids)


def read_coco_split(root: Path, split: str) -> CocoSplit:
    """Parse `<root>/annotations/instances_<split>.json`, images in `<root>/<split>/`; where
    that file is absent, the COCO-2017 names (`train` finds `instances_train2017.json`, `train2017/`).

    Raises:
        FileNotFoundError: the annotation file is missing.
        ValueError: the file is not a COCO instances document.
    """
    root = Path(root)
    ann = root / "annotations"
    if not (ann / f"instances_{split}.json").is_file() and (ann / f"instances_{split}2017.json").is_file():
        split += "2017"  # train -> train2017, val -> val2017
    return read_coco_file(ann / f"instances_{split}.json", root / split)


def read_coco_file(ann_path: Path, image_root: Path) -> CocoSplit:
    """Parse any COCO instances JSON whose `file_name`s are relative to `image_root` (the
    pair detectron2's `register_coco_instances(name, {}, json_file, image_root)` takes).

    Raises:
        FileNotFoundError: the annotation file is missing.
        ValueError: the file is not a COCO instances document.
    """
    ann_path = Path(ann_path)
    if not ann_path.is_file():
        raise FileNotFoundError(f"COCO annotations not found: {ann_path}")
    try:
        doc = json.loads(ann_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{ann_path}: malformed annotation JSON ({e})") from None
    return coco_split_from_document(doc, Path(image_root), str(ann_path))


def coco_split_from_document(doc: object, image_root: Path, source: str) -> CocoSplit:
    """Records of a parsed COCO instances document (`source` names it in errors).

    Raises:
        ValueError: the document is not a COCO instances document.
    """
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise ValueError(f"{source}: not a COCO instances file (needs lists images, annotations, categories)")
    try:
        return _records(doc, image_root)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{source}: malformed COCO entry ({type(e).__name__}: {e})") from None


REPAIRS = (
    "of an unknown image dropped",
    "of an unknown category dropped",
    "with a non-finite coordinate dropped",
    "clipped to the image",
    "without width or height dropped",
)


def _records(doc: dict, root: Path) -> CocoSplit:
    category_ids = sorted(c["id"] for c in doc["categories"])
    label_of = {cid: k for k, cid in enumerate(category_ids)}
    size = {im["id"]: (float(im["width"]), float(im["height"])) for im in doc["images"]}
    repairs: dict[str, list[int]] = {kind: [] for kind in REPAIRS}
    unknown_image, unknown_category, non_finite, clipped, empty = (repairs[k] for k in REPAIRS)
    per_image: dict[int, list[dict]] = {image_id: [] for image_id in size}
    kept = []  # the document's annotations, boxes repaired as the records' are
    for a in doc["annotations"]:
        aid = a.get("id", -1)
        if a["image_id"] not in size:
            unknown_image.append(aid)
            continue
        if a["category_id"] not in label_of:
            unknown_category.append(aid)
            continue
        x, y, w, h = (float(v) for v in a["bbox"])
        if not np.isfinite([x, y, w, h]).all():
            non_finite.append(aid)
            continue
        width, height = size[a["image_id"]]
        x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)
        if x1 <= x0 or y1 <= y0:
            empty.append(aid)
            continue
        if (x0, y0, x1, y1) != (x, y, x + w, y + h):
            clipped.append(aid)
            a = {**a, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": min(float(a.get("area", 0.0)), (x1 - x0) * (y1 - y0))}
        per_image[a["image_id"]].append(a)
        kept.append(a)
    records = []
    for im in sorted(doc["images"], key=lambda im: im["id"]):
        boxes, labels, crowd = [], [], []
        for a in per_image[im["id"]]:
            x, y, w, h = a["bbox"]
            (crowd if a.get("iscrowd", 0) else boxes).append([x, y, x + w, y + h])
            if not a.get("iscrowd", 0):
                labels.append(label_of[a["category_id"]])
        records.append(
            ImageRecord(
                image_id=im["id"],
                path=root / im["file_name"],
                width=int(im["width"]),
                height=int(im["height"]),
                boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                labels=np.asarray(labels, np.int64),
                crowd_boxes=np.asarray(crowd, np.float32).reshape(-1, 4),
            )
        )
    document = {"info": {}, **doc, "annotations": kept}
    return CocoSplit(records, category_ids, document, repairs)


def proxy_split(image_ids: list[int], holdout: int, seed: int) -> tuple[list[int], list[int]]:
    """(train ids, held-out ids), both sorted. See the module docstring for the rule.

    Raises:
        ValueError: `holdout` leaves no training image.
    """
    ids = np.array(sorted(image_ids), dtype=np.int64)
    if not (0 <= holdout < len(ids)):
        raise ValueError(f"cannot hold out {holdout} of {len(ids)} images and still train")
    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(ids))
    held = np.sort(ids[order[:holdout]])
    train = np.sort(ids[order[holdout:]])
    return train.tolist(), held.tolist()


def subsample(image_ids: list[int], n: int, seed: int) -> list[int]:
    """A deterministic subset of n ids (all if n <= 0 or n >= len)."""
    if n <= 0 or n >= len(image_ids):
        return list(image_ids)
    order = np.random.Generator(np.random.PCG64(seed + 1)).permutation(len(image_ids))
    return sorted(int(image_ids[k]) for k in order[:n])


def read_image(record: ImageRecord) -> np.ndarray | None:
    """RGB uint8 (H, W, 3), or None (logged) if the file is missing or corrupt.

    Grayscale, palette, CMYK and alpha images are converted to RGB. EXIF orientation is
    applied when the JSON's width/height match the rotated image (annotations were made on
    what the annotator saw); otherwise the stored pixels are used as they are.
    """
    try:
        with Image.open(record.path) as im:
            im.load()
            rotated = ImageOps.exif_transpose(im)
            if rotated.size == (record.width, record.height) or im.size != (record.width, record.height):
                im = rotated
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        log.warning("skipping image %d (%s): %s", record.image_id, record.path, e)
        return None
