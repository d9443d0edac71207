"""`python -m proxy_task.voc2coco`: Pascal VOC xml -> COCO instances JSON, with a report.

    python -m proxy_task.voc2coco VOC_ROOT --split train --out train.json   # VOC layout
    python -m proxy_task.voc2coco --annotations XML_DIR --images IMG_DIR --out all.json   # any layout

Prints one line of counts (images, boxes per class, repairs, files left out) and the files
behind every dropped count; the rules are in proxy_task/voc.py. Bad input: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from proxy_task.voc import VocError, voc_split_files, voc_to_coco


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m proxy_task.voc2coco", description=__doc__.splitlines()[0])
    p.add_argument("voc_root", nargs="?", type=Path, help="VOC folder (Annotations/, JPEGImages/, ImageSets/Main/)")
    p.add_argument("--split", help="with voc_root: the ImageSets/Main list to convert (default: every xml)")
    p.add_argument("--annotations", type=Path, help="any layout: the folder of .xml files")
    p.add_argument("--images", type=Path, help="any layout: the folder of the images")
    p.add_argument("--classes", help="comma-separated class names, in id order (default: every name found, sorted)")
    p.add_argument("--min-size", type=float, default=2.0, help="drop boxes smaller than this on a side (pixels)")
    p.add_argument("--out", type=Path, required=True, help="the COCO JSON to write")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        if args.voc_root is not None:
            if not (args.voc_root / "Annotations").is_dir():
                raise VocError(f"{args.voc_root} is not a Pascal VOC folder (no Annotations/); or use --annotations")
            xml_dir, image_dir = args.voc_root / "Annotations", args.images or args.voc_root / "JPEGImages"
            files = voc_split_files(args.voc_root, args.split) if args.split else None
        elif args.annotations is not None and args.images is not None:
            xml_dir, image_dir, files = args.annotations, args.images, None
        else:
            raise VocError("give a VOC folder, or both --annotations XML_DIR and --images IMAGE_DIR")
        for what, folder in (("annotation", xml_dir), ("image", image_dir)):
            if not folder.is_dir():
                raise VocError(f"{what} folder not found: {folder}")
        files = files if files is not None else sorted(xml_dir.glob("*.xml"))
        classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
        doc, report = voc_to_coco(files, image_dir, classes, args.min_size)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc))
    except (VocError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    for line in report.details():
        print(line)
    print(f"wrote {args.out} (images relative to {image_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
