"""Which image size and anchors suit a dataset? `python -m studies.box_sizes PRESET [FIELD=VALUE ...]`.

    python -m studies.box_sizes bccd --image-size 192 256 320 --anchor-scale 1 1.5 2
    python -m studies.box_sizes bccd dataset=coco train_json=my.json train_images=imgs/ --image-size 320 512

Reads the preset's train split (after FIELD=VALUE overrides of proxy_task fields) and prints
1. the box sizes per class, sqrt(w * h) at each proxy resolution (images letterboxed: the
   longer side becomes `image_size`), as quantiles;
2. for each (image size, anchor scale), how the detector's anchors (`make_anchor_generator`,
   the trial's own) cover the boxes: the share of boxes with an anchor of IoU >= 0.5 (a
   RetinaNet positive; the others only get their best anchor as a low-quality match), the
   median number of positive anchors per box, and the share of positives on each level P3..P7.
A good proxy resolution keeps the smallest class's boxes covered; a good anchor scale spreads
the classes over several levels, so that the pyramid's cross-scale connections matter.
"""

from __future__ import annotations

import argparse
import ast
import sys

import numpy as np
import torch
from torchvision.ops import box_iou

from proxy_task.config import ProxyTaskConfig, preset
from proxy_task.data import read_split
from proxy_task.detector import make_anchor_generator

LEVELS = (3, 4, 5, 6, 7)


def _anchors(cfg: ProxyTaskConfig, size: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """All anchors of a size x size image (N, 4) xyxy and their levels (N,)."""
    gen = make_anchor_generator(scale, cfg.anchor_octaves, cfg.anchor_ratios, LEVELS)
    grids = [(-(-size // 2**lv), -(-size // 2**lv)) for lv in LEVELS]  # ceil(size / stride), as the pyramid
    strides = [[torch.tensor(2**lv), torch.tensor(2**lv)] for lv in LEVELS]
    per_level = gen.grid_anchors(grids, strides)  # list of (H_l * W_l * A, 4)
    levels = torch.cat([torch.full((len(a),), lv) for a, lv in zip(per_level, LEVELS)])
    return torch.cat(per_level), levels


def coverage(
    cfg: ProxyTaskConfig,
    boxes: list[np.ndarray],
    labels: list[np.ndarray],
    scales: list[float],
    size: int,
    scale: float,
) -> dict[int, dict]:
    """Per class label: share of boxes with a positive anchor, median positives, level shares."""
    anchors, levels = _anchors(cfg, size, scale)
    out: dict[int, dict] = {}
    for b, lab, s in zip(boxes, labels, scales):
        if not len(b):
            continue
        iou = box_iou(torch.from_numpy(b * s).float(), anchors)  # (n, N)
        positive = iou >= 0.5
        for k, c in enumerate(lab.tolist()):
            row = out.setdefault(c, {"covered": [], "positives": [], "levels": np.zeros(len(LEVELS))})
            row["covered"].append(bool(positive[k].any()))
            row["positives"].append(int(positive[k].sum()))
            row["levels"] += np.bincount(levels[positive[k]].numpy() - 3, minlength=len(LEVELS))
    return out


def _override(cfg: ProxyTaskConfig, pairs: list[str]) -> ProxyTaskConfig:
    changes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not hasattr(cfg, key):
            raise ValueError(f"{pair!r} is not FIELD=VALUE with a proxy_task field")
        try:
            changes[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            changes[key] = value
    return cfg.replace(**changes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.box_sizes", description=__doc__.splitlines()[0])
    p.add_argument("preset", help="proxy_task preset (e.g. bccd, synthetic, coco_paper)")
    p.add_argument("overrides", nargs="*", help="proxy_task FIELD=VALUE")
    p.add_argument("--image-size", type=int, nargs="+", default=None, help="proxy resolutions (default: the preset's)")
    p.add_argument("--anchor-scale", type=float, nargs="+", default=None, help="anchor size / stride (default: preset)")
    args = p.parse_args(argv)
    try:
        cfg = _override(preset(args.preset), args.overrides)
        split = read_split(cfg, "train")
    except (ValueError, OSError) as e:  # unknown preset or field, unusable data (DataError)
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    by_id = {c["id"]: str(c.get("name", c["id"])) for c in split.document["categories"]}
    names = {k: by_id.get(cid, str(cid)) for k, cid in enumerate(split.category_ids)}
    records = [r for r in split.records if len(r.boxes)]
    if not records:
        print(
            f"error: {cfg.name}'s train split has no boxes ({len(split.records)} images): check its annotations",
            file=sys.stderr,
        )
        return 2
    sizes = args.image_size or [cfg.image_size]
    anchor_scales = args.anchor_scale or [cfg.anchor_scale]
    print(f"{cfg.name}: {len(split.records)} train images, {sum(len(r.boxes) for r in records)} boxes\n")
    print("box size sqrt(w*h) in proxy pixels: quantiles 5% / 25% / 50% / 75% / 95%\n")
    print("| class | boxes | " + " | ".join(f"at {s} px" for s in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for c, name in names.items():
        side = np.concatenate([np.sqrt(np.prod(r.boxes[r.labels == c, 2:] - r.boxes[r.labels == c, :2], 1)) /
                               max(r.width, r.height) for r in records])  # fmt: skip
        if not len(side):
            continue
        cells = [" / ".join(f"{q:.0f}" for q in np.quantile(side * s, [0.05, 0.25, 0.5, 0.75, 0.95])) for s in sizes]
        print(f"| {name} | {len(side)} | " + " | ".join(cells) + " |")
    print("\nanchor coverage: boxes with an anchor of IoU >= 0.5, median positives per box, positives on P3..P7 (%)\n")
    print("| image size | anchor scale | class | covered | positives | P3 / P4 / P5 / P6 / P7 |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        for scale in anchor_scales:
            scales = [size / max(r.width, r.height) for r in records]
            result = coverage(cfg, [r.boxes for r in records], [r.labels for r in records], scales, size, scale)
            for c, row in sorted(result.items()):
                share = 100 * row["levels"] / max(1, row["levels"].sum())
                print(f"| {size} | {scale:g} | {names[c]} | {np.mean(row['covered']):.2f} | "
                      f"{np.median(row['positives']):.0f} | {' / '.join(f'{x:.0f}' for x in share)} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
