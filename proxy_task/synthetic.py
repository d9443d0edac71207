"""The built-in dataset: multi-scale shapes in clutter, written to disk in COCO format.

Generated deterministically from a seed (numpy PCG64 + PIL drawing, no other source of
randomness) and cached under `cache_root()/synthetic/<key>/`, where the key hashes every
generation parameter, so all trials on a node share one copy. The layout is COCO's
(`annotations/instances_train2017.json`, `train2017/`, `val2017/`) and it is read by the
same loader as COCO.

What makes it a detection problem on which the pyramid matters:
* six classes that colour cannot tell apart (every object gets a random colour): disk,
  ring, square, square frame, triangle, cross; filled vs hollow needs context at the
  object's scale, shape needs fine detail;
* object sizes log-uniform from 10 px to 0.9 x the image side, so every pyramid level
  P3..P7 gets objects; object colours keep a minimum contrast to the background;
* clutter: a smooth random background, noise, and unannotated line segments and dots;
* occlusion: later objects cover earlier ones; the box is the visible extent (as COCO), an
  object less than 35% visible is annotated as a crowd region (ignored by training and by
  COCO evaluation).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("disk", "ring", "square", "frame", "triangle", "cross")
# Non-contiguous on purpose, like COCO's: the loader maps them to 0..K-1.
CATEGORY_IDS = (1, 2, 4, 5, 7, 9)
_VERSION = 2
_MIN_VISIBLE = 0.35
_MIN_SIZE = 10.0  # px: below this the six shapes cannot be told apart at all
_MIN_CONTRAST = 70.0  # mean absolute RGB difference between an object and the background


def cache_root(override: str = "") -> Path:
    """Cache directory: `override`, else $NASFPN_CACHE, else ~/.cache/nasfpn."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("NASFPN_CACHE", "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nasfpn"


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind in ("square", "frame"):
        corners = [angle + math.pi / 4 + k * math.pi / 2 for k in range(4)]
    else:  # triangle
        corners = [angle + k * 2 * math.pi / 3 for k in range(3)]
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in corners]


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float) -> None:
    """Draw one shape of radius r filled with 255 on an 'L' mask."""
    if kind in ("disk", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if kind == "ring":
            ri = r * 0.55
            draw.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    elif kind in ("square", "frame", "triangle"):
        draw.polygon(_polygon(kind, cx, cy, r, angle), fill=255)
        if kind == "frame":
            draw.polygon(_polygon(kind, cx, cy, r * 0.55, angle), fill=0)
    elif kind == "cross":
        w = max(1.0, r * 0.35)
        c, s = math.cos(angle), math.sin(angle)
        for dx, dy in ((c, s), (-s, c)):  # two bars at right angles
            px, py = -dy * w, dx * w
            draw.polygon(
                [
                    (cx + dx * r + px, cy + dy * r + py),
                    (cx + dx * r - px, cy + dy * r - py),
                    (cx - dx * r - px, cy - dy * r - py),
                    (cx - dx * r + px, cy - dy * r + py),
                ],
                fill=255,
            )


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    # Smooth colour gradient + pixel noise: (size, size, 3) float in 0..255.
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(40, 215, 3)
    slope = rng.uniform(-60, 60, (2, 3))
    img = base + xx[..., None] * slope[0] + yy[..., None] * slope[1]
    return img + rng.normal(0, 8, img.shape)


def _clutter(rng: np.random.Generator, img: Image.Image, size: int) -> None:
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(2, 6)):
        x0, y0, x1, y1 = rng.uniform(0, size, 4)
        draw.line([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=1)
    for _ in range(rng.integers(5, 20)):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(0.5, 2.0)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))


def render_image(rng: np.random.Generator, size: int, max_objects: int = 8) -> tuple[Image.Image, list[dict]]:
    """One image and its annotations (bbox xywh of the visible part, category_id, iscrowd)."""
    background = np.clip(_background(rng, size), 0, 255)
    canvas = Image.fromarray(background.astype(np.uint8))
    mean_background = background.mean(axis=(0, 1))
    _clutter(rng, canvas, size)
    n = int(rng.integers(1, max_objects + 1))
    owner = np.full((size, size), -1, dtype=np.int32)  # which object each pixel shows
    full_area = []
    objects = []
    log_lo, log_hi = math.log(_MIN_SIZE), math.log(0.9 * size)
    for k in range(n):
        cls = int(rng.integers(len(CLASSES)))
        diameter = math.exp(rng.uniform(log_lo, log_hi))
        r = diameter / 2
        cx, cy = rng.uniform(r * 0.5, size - r * 0.5, 2)
        mask_img = Image.new("L", (size, size), 0)
        _draw_shape(ImageDraw.Draw(mask_img), CLASSES[cls], cx, cy, r, rng.uniform(0, 2 * math.pi))
        mask = np.asarray(mask_img) > 127
        colour = rng.integers(0, 256, 3)
        while np.abs(colour - mean_background).mean() < _MIN_CONTRAST:
            colour = rng.integers(0, 256, 3)
        canvas.paste(Image.new("RGB", (size, size), tuple(int(v) for v in colour)), mask=mask_img)
        owner[mask] = k
        full_area.append(int(mask.sum()))
        objects.append(cls)
    annotations = []
    for k, cls in enumerate(objects):
        ys, xs = np.nonzero(owner == k)
        if full_area[k] == 0 or len(xs) == 0:
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        visible = len(xs) / full_area[k]
        annotations.append(
            {
                "category_id": CATEGORY_IDS[cls],
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "area": float(len(xs)),
                "iscrowd": int(visible < _MIN_VISIBLE),
            }
        )
    return canvas, annotations


def _write_split(root: Path, split: str, rng: np.random.Generator, num_images: int, size: int, first_id: int) -> None:
    (root / split).mkdir(parents=True)
    images, annotations = [], []
    for n in range(num_images):
        image_id = first_id + n
        img, anns = render_image(rng, size)
        name = f"{image_id:012d}.png"
        img.save(root / split / name)
        images.append({"id": image_id, "file_name": name, "width": size, "height": size})
        for a in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **a})
    categories = [{"id": cid, "name": name, "supercategory": "shape"} for cid, name in zip(CATEGORY_IDS, CLASSES)]
    doc = {"info": {"description": "nasfpn synthetic shapes"}, "images": images, "annotations": annotations}
    doc["categories"] = categories
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))


def synthetic_dataset(num_train: int, num_val: int, image_size: int, seed: int, cache_dir: str = "") -> Path:
    """Path to the built-in dataset with these parameters, generating it on first use.

    Safe under concurrent callers: each writes a private temporary directory and renames
    it into place; a loser of the race discards its copy.
    """
    key = hashlib.sha1(json.dumps([_VERSION, num_train, num_val, image_size, seed]).encode()).hexdigest()[:12]
    final = cache_root(cache_dir) / "synthetic" / f"shapes-{image_size}px-{num_train}-{num_val}-s{seed}-{key}"
    if (final / "annotations" / "instances_val2017.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    rng = np.random.Generator(np.random.PCG64(seed))
    _write_split(tmp, "train2017", rng, num_train, image_size, first_id=1)
    _write_split(tmp, "val2017", rng, num_val, image_size, first_id=num_train + 1)
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    return final
