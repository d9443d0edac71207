"""`python -m space.describe GENOTYPE.json`: cells, cost and diagram of a pyramid.

    python -m space.describe space/genotypes/nasfpn_paper.json --channels 256 --repeats 7 \
        --in-channels 512 1024 2048 --image-size 640 --out paper.png

GENOTYPE may also be a shipped name: `nasfpn_paper` or `fpn`. Errors are one line on
stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from space.expansion import expand
from space.genotype import Genotype, GenotypeError
from space.search_space import SearchSpace
from space.serialization import builtin_path, load

# The cost is counted by running the pyramid on zero tensors of these sizes: the bounds keep
# it within a few GB (the papers' largest: 384 channels, 7 repeats, 1536 pixels).
MAX_CHANNELS = 512
MAX_IN_CHANNELS = 4096
MAX_REPEATS = 16
MAX_IMAGE_SIZE = 1536


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m space.describe", description=__doc__.splitlines()[0])
    p.add_argument("genotype", help="genotype JSON file, or a shipped name (nasfpn_paper, fpn)")
    p.add_argument("--channels", type=int, default=256, help="pyramid width C (default 256)")
    p.add_argument("--repeats", type=int, default=7, help="number of stacked pyramid networks N (default 7)")
    p.add_argument(
        "--in-channels",
        type=int,
        nargs="+",
        default=[512, 1024, 2048],
        help="backbone widths of C3.. (default ResNet-50: 512 1024 2048)",
    )
    p.add_argument("--image-size", type=int, default=640, help="square input size for multiply-adds (default 640)")
    p.add_argument("--separable", action="store_true", help="NAS-FPNLite separable convs")
    p.add_argument("--out", default=None, help="diagram path (.png or .svg); default GENOTYPE_NAME.png")
    return p


def summary(genotype: Genotype) -> str:
    """Human-readable table of cells, the expanded inputs and the space membership."""
    levels = genotype.pool_levels()
    lines = [f"genotype {genotype.hash()}  levels {genotype.min_level}..{genotype.max_level}"]
    lines.append(f"{'node':>5} {'level':>5} {'op':>10}  inputs           unconnected added   output")
    for k, (c, n) in enumerate(zip(genotype.cells, expand(genotype))):
        ins = f"{c.inputs[0]}@P{levels[c.inputs[0]]}, {c.inputs[1]}@P{levels[c.inputs[1]]}"
        extras = ", ".join(f"{e}@P{levels[e]}" for e in n.extras) or "-"
        out = f"-> P{c.level}" if c.is_output else ""
        lines.append(f"{genotype.num_levels + k:>5} {c.level:>5} {c.op:>10}  {ins:<16} {extras:<19} {out}")
    try:
        SearchSpace(genotype.min_level, genotype.max_level).contains(genotype)
        lines.append("in the paper's search space: yes")
    except GenotypeError as e:
        lines.append(f"in the paper's search space: no ({e})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path = Path(args.genotype)
    if not path.exists() and builtin_path(args.genotype).exists():
        path = builtin_path(args.genotype)
    try:
        genotype = load(path)
        for flag, values, top in (
            ("--channels", [args.channels], MAX_CHANNELS),
            ("--in-channels", args.in_channels, MAX_IN_CHANNELS),
            ("--repeats", [args.repeats], MAX_REPEATS),
            ("--image-size", [args.image_size], MAX_IMAGE_SIZE),
        ):
            if not all(1 <= v <= top for v in values):
                raise GenotypeError(f"{flag} {' '.join(map(str, values))}: expected 1..{top}")
        if len(args.in_channels) > genotype.num_levels:
            raise GenotypeError(f"--in-channels takes at most {genotype.num_levels} widths")
    except GenotypeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from space.complexity import pyramid_cost
    from space.diagram import draw

    print(summary(genotype))
    params, macs = pyramid_cost(
        genotype, args.in_channels, args.channels, args.repeats, args.image_size, args.separable
    )
    print(
        f"pyramid {args.repeats}@{args.channels} on C3.. widths {args.in_channels}, {args.image_size}x"
        f"{args.image_size}: {params:,} parameters, {macs / 1e9:.2f} G ({macs:,}) multiply-adds"
    )
    out = Path(args.out) if args.out else Path(f"{path.stem}.png")
    try:
        draw(genotype, out, title=f"{path.stem} ({genotype.hash()})")
    except OSError as e:
        print(f"error: cannot write diagram {out}: {e}", file=sys.stderr)
        return 2
    print(f"diagram: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
