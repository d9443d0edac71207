"""Pascal VOC xml -> COCO instances JSON, with every repair counted and reported.

The library side of `python -m proxy_task.voc2coco` (the command line), also used by the
loader for `dataset=voc`, which converts in memory.

What labelling tools export as "Pascal VOC" varies; the conversion is explicit about each case:

* boxes: VOC pixel indices are 1-based and inclusive, so a box becomes COCO
  [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1] (detectron2's convention), clipped to
  the image; a box smaller than `min_size` pixels (default 2) on a side after clipping is
  dropped (a stray click: BCCD has two 1x1 boxes); both are counted.
* `difficult` objects become `iscrowd: 1` (with `difficult: 1` kept): training ignores them and
  COCO evaluation neither rewards nor penalises detections on them, the VOC protocol's intent.
  `truncated` is kept as an attribute; the box is an ordinary one.
* categories: the class names found (or `--classes`, in that order), ids 1..K; an object of a
  class outside `--classes` is dropped and counted.
* images: `filename` is looked up in the image folder, else the xml's stem with a common image
  extension; the size comes from `<size>`, or from the image header when it is missing or zero.
  An xml that does not parse, or whose image is not found, is left out and listed; an xml
  without objects is kept (a background image).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class VocError(ValueError):
    """The input cannot be converted at all (no folder, no xml, no usable image)."""


@dataclass
class VocReport:
    """What the conversion found and repaired; nothing is dropped without a count here."""

    files: int = 0
    images: int = 0
    boxes: Counter = field(default_factory=Counter)  # kept boxes per class name
    empty: int = 0  # xml files without objects (kept as background images)
    difficult: int = 0  # objects marked difficult (kept as iscrowd=1)
    truncated: int = 0
    clipped: int = 0  # boxes partly outside the image, clipped to it
    degenerate: list[str] = field(default_factory=list)  # "file: class box" under min_size (dropped)
    unknown_class: list[str] = field(default_factory=list)  # "file: class" outside --classes (dropped)
    broken: list[str] = field(default_factory=list)  # "file: reason" of xml left out

    def summary(self) -> str:
        """One line: counts of everything kept, repaired and left out."""
        per_class = ", ".join(f"{k} {v}" for k, v in sorted(self.boxes.items()))
        parts = [f"{self.images} images from {self.files} xml files", f"{sum(self.boxes.values())} boxes ({per_class})"]
        parts += [f"{self.empty} without objects", f"{self.difficult} difficult (iscrowd)"]
        parts += [f"{self.truncated} truncated", f"{self.clipped} clipped to the image"]
        parts += [f"{len(self.degenerate)} too small dropped", f"{len(self.unknown_class)} of unknown class dropped"]
        parts.append(f"{len(self.broken)} files left out")
        return "; ".join(parts)

    def details(self, limit: int = 10) -> list[str]:
        """The files behind the dropped counts (first `limit` of each kind)."""
        lines = []
        for title, items in (("left out", self.broken), ("box too small", self.degenerate)):
            lines += [f"  {title}: {x}" for x in items[:limit]]
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more {title}")
        for x in self.unknown_class[:limit]:
            lines.append(f"  unknown class: {x}")
        return lines


def _number(node: ET.Element, path: str) -> float | None:
    """The finite number at `path`, or None (absent, empty, not a number, nan or inf)."""
    text = node.findtext(path)
    try:
        value = float(text) if text is not None and text.strip() else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _find_image(image_dir: Path, xml_path: Path, filename: str | None) -> Path | None:
    if filename:
        candidate = image_dir / Path(filename.strip()).name
        if candidate.is_file():
            return candidate
    for ext in IMAGE_EXTENSIONS:
        for name in (xml_path.stem + ext, xml_path.stem + ext.upper()):
            if (image_dir / name).is_file():
                return image_dir / name
    return None


def _image_size(root: ET.Element, path: Path) -> tuple[int, int]:
    w, h = _number(root, "size/width"), _number(root, "size/height")
    if w and h and w > 0 and h > 0:
        return int(w), int(h)
    with Image.open(path) as im:  # reads the header only
        return im.size


def voc_to_coco(
    xml_files: list[Path], image_dir: Path, classes: list[str] | None = None, min_size: float = 2.0
) -> tuple[dict, VocReport]:
    """COCO instances document (file_name relative to `image_dir`) and the report.

    Image ids are 1..N in the order of `xml_files`; annotation ids 1..M.

    Raises:
        VocError: no xml file, or no image could be converted.
    """
    if not xml_files:
        raise VocError(f"no .xml annotation files to convert (image folder {image_dir})")
    report = VocReport(files=len(xml_files))
    parsed: list[tuple[Path, ET.Element, Path, int, int]] = []
    for xml_path in xml_files:
        try:
            root = ET.parse(xml_path).getroot()
        except (ET.ParseError, OSError, UnicodeDecodeError) as e:
            report.broken.append(f"{xml_path.name}: not readable xml ({e})")
            continue
        if root.tag != "annotation":
            report.broken.append(f"{xml_path.name}: root element <{root.tag}>, expected <annotation>")
            continue
        image = _find_image(image_dir, xml_path, root.findtext("filename"))
        if image is None:
            report.broken.append(f"{xml_path.name}: image {root.findtext('filename')!r} not found in {image_dir}")
            continue
        try:
            width, height = _image_size(root, image)
        except (OSError, UnidentifiedImageError) as e:
            report.broken.append(f"{xml_path.name}: no size in the xml and the image is unreadable ({e})")
            continue
        parsed.append((xml_path, root, image, width, height))
    if not parsed:
        first = f" (first: {report.broken[0]})" if report.broken else ""
        raise VocError(f"none of the {len(xml_files)} xml files could be converted{first}")

    found = {(o.findtext("name") or "").strip() for _, root, *_ in parsed for o in root.iter("object")} - {""}
    names = list(classes) if classes else sorted(found)
    category = {name: k + 1 for k, name in enumerate(names)}
    images, annotations = [], []
    for image_id, (xml_path, root, image, width, height) in enumerate(parsed, start=1):
        images.append({"id": image_id, "file_name": image.name, "width": width, "height": height})
        objects = root.findall("object")
        report.empty += not objects
        for obj in objects:
            name = (obj.findtext("name") or "").strip()
            if name not in category:
                report.unknown_class.append(f"{xml_path.name}: {name!r}")
                continue
            coords = [_number(obj, f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
            if any(c is None for c in coords):
                report.degenerate.append(f"{xml_path.name}: {name} (no finite numeric bndbox)")
                continue
            x0, y0, x1, y1 = coords[0] - 1, coords[1] - 1, coords[2], coords[3]  # type: ignore[operator]
            cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
            cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
            if cx1 - cx0 < min_size or cy1 - cy0 < min_size or cx1 - cx0 <= 0 or cy1 - cy0 <= 0:
                report.degenerate.append(f"{xml_path.name}: {name} {[int(c) for c in coords]}")  # type: ignore[arg-type]
                continue
            report.clipped += (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1)
            difficult = (obj.findtext("difficult") or "0").strip() == "1"
            truncated = (obj.findtext("truncated") or "0").strip() == "1"
            report.difficult += difficult
            report.truncated += truncated
            report.boxes[name] += 1
            w, h = cx1 - cx0, cy1 - cy0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[name],
                    "bbox": [cx0, cy0, w, h],
                    "area": w * h,
                    "iscrowd": int(difficult),
                    "difficult": int(difficult),
                    "truncated": int(truncated),
                }
            )
    report.images = len(images)
    categories = [{"id": i, "name": n, "supercategory": "none"} for n, i in category.items()]
    return {"images": images, "annotations": annotations, "categories": categories}, report


def voc_split_files(voc_root: Path, split: str) -> list[Path]:
    """The xml files of `ImageSets/Main/<split>.txt` in a VOC-layout folder, in list order.

    Raises:
        VocError: the folder or the list is missing, or the list names an absent xml.
    """
    annotations = voc_root / "Annotations"
    if not annotations.is_dir():
        raise VocError(f"{voc_root} is not a Pascal VOC folder (no Annotations/); pass the folder that holds it")
    listing = voc_root / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        have = sorted(p.stem for p in (voc_root / "ImageSets" / "Main").glob("*.txt"))
        raise VocError(f"split list {listing} not found (lists there: {have or 'none'})")
    try:
        stems = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise VocError(
            f"split list {listing} is not a readable text file ({type(e).__name__}); one image name per line"
        ) from None
    missing = [s for s in stems if not (annotations / f"{s}.xml").is_file()]
    if missing:
        raise VocError(f"{listing} names {len(missing)} images without an xml in {annotations} (first: {missing[0]})")
    return [annotations / f"{s}.xml" for s in stems]
