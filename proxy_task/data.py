"""Train and reward data at proxy resolution, decoded once and cached for every trial.

Every image is letterboxed once (longer side -> `image_size`, padded bottom/right with
zeros) into one uint8 array (N, 3, S, S) saved as .npy next to its boxes; later trials
memory-map it, so decoding JPEGs never sits in a trial's loop. The cache key hashes the
content of the split (image ids, file names and sizes, boxes and labels) and the resolution,
not where it lies, so a moved or second clone reuses the cache; concurrent builders write
temporary files and rename them into place. The loaded data lives in its `ProxyTask`
(proxy_task/task.py), one per worker process.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from proxy_task.coco_data import (
    CocoSplit,
    coco_split_from_document,
    proxy_split,
    read_coco_file,
    read_coco_split,
    read_image,
    subsample,
)
from proxy_task.config import BCCD_ROOT, ProxyTaskConfig
from proxy_task.synthetic import cache_root, synthetic_dataset
from proxy_task.voc import voc_split_files, voc_to_coco
from space.atomic import atomic_path

log = logging.getLogger(__name__)
repair_log = logging.getLogger(__name__ + ".repairs")  # what a VOC conversion repaired: the same on every node
_CACHE_VERSION = 2


class DataError(ValueError):
    """The dataset cannot be used (no readable image, missing root, ...)."""


@dataclass
class ImageSet:
    """Images letterboxed to S x S with their targets in proxy pixels."""

    images: np.ndarray  # (N, 3, S, S) uint8, possibly memory-mapped
    boxes: list[torch.Tensor]  # per image (n, 4) float32 xyxy
    labels: list[torch.Tensor]  # per image (n,) int64
    image_ids: list[int]
    scales: list[float]  # proxy pixels per original pixel
    skipped: int  # unreadable images left out
    key: str  # split_key of the split it was built from: its content is a function of this

    def __len__(self) -> int:
        return len(self.image_ids)

    def batch(self, index: torch.Tensor | list[int]) -> tuple[torch.Tensor, list[dict]]:
        """uint8 (B, 3, S, S) and targets [{'boxes', 'labels'}] for these positions."""
        idx = [int(i) for i in index]
        images = torch.from_numpy(np.stack([self.images[i] for i in idx]))
        return images, [{"boxes": self.boxes[i], "labels": self.labels[i]} for i in idx]


@dataclass
class ProxyData:
    """Everything a trial reads: train set, reward set and its COCO ground truth."""

    train_key: str  # content hash of the train images and boxes at this size (keys the frozen backbone)
    train: ImageSet
    eval: ImageSet
    ground_truth: dict  # COCO instances dict of the reward images (crowds included)
    category_ids: list[int]
    image_size: int

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """(H, W, 3) uint8 -> ((3, size, size) uint8, scale): resize the longer side, pad with 0."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR)) if (nh, nw) != (h, w) else rgb
    out = np.zeros((3, size, size), np.uint8)
    out[:, :nh, :nw] = resized.transpose(2, 0, 1)
    return out, scale


def split_key(split: CocoSplit, size: int) -> str:
    """Content hash of `split` letterboxed to `size`: per image its id, file name (not its
    folder), stated width and height, file size in bytes, boxes and labels. Pixels are not
    read; the file size catches an image re-encoded or regenerated under the same name (an
    edit that keeps the size to the byte needs a fresh cache_dir)."""
    h = hashlib.sha1(json.dumps([_CACHE_VERSION, size, len(split.records)]).encode())
    for rec in split.records:
        try:
            nbytes = rec.path.stat().st_size
        except OSError:  # unreadable: left out when the set is built, and named then
            nbytes = -1
        h.update(f"{rec.image_id}/{rec.path.name}/{rec.width}x{rec.height}/{nbytes}/{len(rec.boxes)};".encode())
        h.update(np.ascontiguousarray(rec.boxes, np.float64).tobytes())
        h.update(np.ascontiguousarray(rec.labels, np.int64).tobytes())
    return h.hexdigest()[:16]


def build_image_set(split: CocoSplit, size: int, cache_dir: Path) -> ImageSet:
    """Letterbox every image of `split` once (cached on disk), skipping unreadable ones.

    Raises:
        DataError: no image of the split could be read.
    """
    key = split_key(split, size)
    array_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.pt"
    if not (array_path.exists() and meta_path.exists()):
        # the array is moved into place first, then the metadata (the inner block exits first)
        with atomic_path(meta_path) as tmp_meta, atomic_path(array_path) as tmp_array:
            array = np.lib.format.open_memmap(tmp_array, "w+", np.uint8, (len(split.records), 3, size, size))
            kept, meta = 0, {"image_ids": [], "scales": [], "boxes": [], "labels": []}
            for rec in split.records:
                rgb = read_image(rec)
                if rgb is None:
                    continue
                array[kept], scale = letterbox(rgb, size)
                kept += 1
                meta["image_ids"].append(rec.image_id)
                meta["scales"].append(scale)
                meta["boxes"].append(torch.from_numpy(rec.boxes * scale))
                meta["labels"].append(torch.from_numpy(rec.labels))
            array.flush()
            del array
            meta["count"] = kept
            torch.save(meta, tmp_meta)
    meta = torch.load(meta_path, weights_only=True)
    skipped = len(split.records) - meta["count"]
    if skipped:
        log.warning("%d of %d images could not be read and were skipped", skipped, len(split.records))
    if meta["count"] == 0:
        raise DataError(
            f"none of the {len(split.records)} images could be read (first: {split.records[0].path})"
            if split.records
            else "the split has no images"
        )
    images = np.load(array_path, mmap_mode="r")[: meta["count"]]
    return ImageSet(images, meta["boxes"], meta["labels"], meta["image_ids"], meta["scales"], skipped, key)


def dataset_root(cfg: ProxyTaskConfig) -> Path:
    """The dataset's root: the built-in dataset (generated on first use) or `data_root`."""
    if cfg.dataset == "synthetic":
        return synthetic_dataset(
            cfg.synthetic_images, cfg.holdout_images, cfg.synthetic_image_size, cfg.synthetic_seed, cfg.cache_dir
        )
    if not cfg.data_root:
        what = (
            "annotations/, train2017/, val2017/" if cfg.dataset == "coco" else "Annotations/, JPEGImages/, ImageSets/"
        )
        raise DataError(f"dataset={cfg.dataset} needs proxy_task.data_root (the folder holding {what})")
    root = Path(cfg.data_root).expanduser()
    if not root.is_dir():
        if cfg.data_root == BCCD_ROOT:  # a copy installed without the repository's data/
            raise DataError(
                f"the shipped BCCD images are not at {root}: they live in the repository's data/bccd, so run from a"
                " clone (bash .ci/setup installs it editable) or set proxy_task.data_root to a copy of data/bccd/BCCD"
            )
        raise DataError(
            f"{'COCO' if cfg.dataset == 'coco' else 'VOC'} root not found: {root}; set proxy_task.data_root"
        )
    return root


def read_split(cfg: ProxyTaskConfig, which: str) -> CocoSplit:
    """The `which` ("train" or "eval") split of `cfg`'s dataset as COCO records.

    Raises:
        DataError: the split's files are missing or malformed (one line, names the file).
    """
    name = cfg.train_split if which == "train" else cfg.eval_split
    try:
        json_path, images = (cfg.train_json, cfg.train_images) if which == "train" else (cfg.eval_json, cfg.eval_images)
        if json_path:
            return _logged(read_coco_file(Path(json_path).expanduser(), Path(images).expanduser()), json_path)
        if which == "eval" and cfg.train_json:
            raise DataError(f"eval_split={name} with train_json needs eval_json and eval_images too")
        root = dataset_root(cfg)
        if cfg.dataset == "voc":
            return _read_voc(root, name or which)
        return _logged(read_coco_split(root, {"": "train2017", "val": "val2017"}.get(name, name)), f"{root} {name}")
    except (ValueError, FileNotFoundError) as e:  # a malformed or foreign annotation file is a data error
        raise DataError(str(e)) from None


def _logged(split: CocoSplit, source: str) -> CocoSplit:
    """`split`, its repaired annotations reported: a count per kind, then the first ids of each."""
    if summary := split.repair_summary():
        repair_log.warning("COCO %s: annotations %s", source, summary)
        for kind, ids in split.repairs.items():
            if ids:
                repair_log.warning("COCO %s:  %s: ids %s", source, kind, ", ".join(map(str, ids[:10])))
    return split


def _read_voc(root: Path, split: str) -> CocoSplit:
    """A VOC split converted in memory (proxy_task/voc.py; a few hundred files in ~0.1 s)."""
    doc, report = voc_to_coco(voc_split_files(root, split), root / "JPEGImages")
    repair_log.info("VOC %s/%s: %s", root.name, split, report.summary())
    for line in report.details():
        repair_log.warning("VOC %s/%s:%s", root.name, split, line)
    return coco_split_from_document(doc, root / "JPEGImages", f"{root}/ImageSets/Main/{split}.txt")


def load_proxy_data(cfg: ProxyTaskConfig) -> ProxyData:
    """Train and reward sets of `cfg` (proxy split or val2017), letterboxed once (cached on disk).

    Raises:
        DataError, FileNotFoundError: missing or unusable data.
    """
    train_split = read_split(cfg, "train")
    if cfg.eval_split == "proxy":
        train_ids, held_ids = proxy_split([r.image_id for r in train_split.records], cfg.holdout_images, cfg.split_seed)
        eval_split = train_split.subset(held_ids)
        train_split = train_split.subset(train_ids)
    else:
        eval_split = read_split(cfg, "eval")
    train_split = train_split.subset(subsample([r.image_id for r in train_split.records], cfg.train_subsample, 0))
    eval_split = eval_split.subset(subsample([r.image_id for r in eval_split.records], cfg.eval_subsample, 0))
    tensors = cache_root(cfg.cache_dir) / "tensors"
    train = build_image_set(train_split, cfg.image_size, tensors)
    evaluation = build_image_set(eval_split, cfg.image_size, tensors)
    ground_truth = eval_split.subset(evaluation.image_ids).document  # unreadable images leave the reward
    return ProxyData(train.key, train, evaluation, ground_truth, train_split.category_ids, cfg.image_size)
