"""Command line for looking at a search's trial record.

    python -m results top RUN [--k 10]
    python -m results export SOURCE --out best.json [--rank N]
    python -m results export SOURCE --format {torch,onnx} --out pyramid.pt2 [--repeats 7 --channels 256]
        [--in-channels 512 1024 2048 | --backbone resnet50] [--size 640 640] [--dynamic] [--separable]
    python -m results plot RUN [RUN ...] [--out progress.png] [--window 50]
    python -m results compare RUN [RUN ...] [--budgets 20 40 80] [--last 20] [--out compare.md]
    python -m results report RUN [--out DIR] [--k 10]
    python -m results recover RUN --out recovered.sqlite

RUN is a run directory holding trials.sqlite, or the .sqlite file itself; SOURCE is a RUN, a
genotype JSON file or a built-in genotype ('paper', 'fpn'). A failure the user can fix
(missing run, damaged record, empty run, rank out of range, bad genotype file, unsupported
backbone, a size the export cannot take, bad argument) prints one line on stderr and exits
with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from results.compare import compare_table, strategy_table
from results.errors import ResultsError
from results.export import FORMATS, export_genotype, export_pyramid
from results.plots import plot_progress, plot_strategies
from results.ranking import rank_architectures, text_table
from results.recover import recover_record
from results.report import write_report
from results.run import load_run, load_runs, record_path
from space import GenotypeError

EXIT_USAGE = 2
PLOT_FORMATS = (".png", ".svg", ".pdf")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage + error on two lines; keep every failure to one line.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else -1
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m results", description="Look at the trial record of a NAS-FPN search.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run_help = "run directory holding trials.sqlite, or the .sqlite file"
    top = sub.add_parser("top", help="table of the best architectures")
    top.add_argument("run", help=run_help)
    top.add_argument("--k", type=_positive, default=10, help="how many (default 10)")
    exp = sub.add_parser("export", help="write a ranked architecture as genotype JSON, or its pyramid as a model")
    exp.add_argument("run", metavar="source", help=f"{run_help}, a genotype JSON file, or 'paper' / 'fpn'")
    exp.add_argument("--out", required=True, help="file to write (.json, .pt2 or .onnx)")
    exp.add_argument("--rank", type=_positive, default=1, help="1 = best (default)")
    fmt_help = "json (default): the genotype; torch: a torch.export program; onnx: an ONNX model (extra 'onnx')"
    exp.add_argument("--format", choices=FORMATS, default="json", help=fmt_help)
    exp.add_argument("--repeats", type=_positive, default=7, help="N of the N@C pyramid (default 7)")
    exp.add_argument("--channels", type=_positive, default=256, help="C of the N@C pyramid (default 256)")
    exp.add_argument("--separable", action="store_true", help="NAS-FPNLite separable convs")
    widths_help = "widths of the backbone's C3.. that feed the pyramid (default ResNet-50's: 512 1024 2048)"
    exp.add_argument("--in-channels", type=_positive, nargs="+", default=[512, 1024, 2048], help=widths_help)
    backbone_help = "a torchvision backbone to export with the pyramid (image in), e.g. resnet50"
    exp.add_argument("--backbone", default=None, help=backbone_help)
    size_help = "input image size (default 640 640)"
    exp.add_argument("--size", type=_positive, nargs=2, default=[640, 640], metavar=("H", "W"), help=size_help)
    dynamic_help = "any height and width that are multiples of 128 and at least 256 (traced at --size)"
    exp.add_argument("--dynamic", action="store_true", help=dynamic_help)
    plot = sub.add_parser("plot", help="progress figure of one or several runs")
    plot.add_argument("runs", nargs="+", metavar="run", help=run_help)
    plot.add_argument("--out", default="progress.png", help=f"figure file {PLOT_FORMATS} (default progress.png)")
    plot.add_argument("--window", type=_positive, default=50, help="moving-average window (default 50)")
    plot.add_argument(
        "--by-strategy",
        action="store_true",
        help="one line per strategy: mean over its runs (e.g. seeds) with a min-max band, against trainings",
    )
    cmp = sub.add_parser("compare", help="table of runs side by side at equal numbers of trainings")
    cmp.add_argument("runs", nargs="+", metavar="run", help=run_help)
    cmp.add_argument("--budgets", type=_positive, nargs="+", default=[20, 40, 80], help="trainings (default 20 40 80)")
    cmp.add_argument("--last", type=_positive, default=20, help="rewards averaged at each end (default 20)")
    cmp.add_argument("--out", default=None, help="also write the table to this Markdown file")
    cmp.add_argument(
        "--by-strategy",
        action="store_true",
        help="one row per strategy: mean ± standard error over its runs (e.g. seeds)",
    )
    rec = sub.add_parser("recover", help="salvage the readable records of a damaged record file")
    rec.add_argument("run", help=run_help)
    rec.add_argument("--out", required=True, help="new .sqlite file to write the salvaged records to")
    rep = sub.add_parser("report", help="Markdown report with figures and top architectures")
    rep.add_argument("run", help=run_help)
    rep.add_argument("--out", default=None, help="output directory (default RUN_DIR/report)")
    rep.add_argument("--k", type=_positive, default=10, help="architectures in the table (default 10)")
    return p


def _top(args: argparse.Namespace) -> None:
    loaded = load_run(args.run)
    ranked = rank_architectures(loaded.records, args.k)
    if not ranked:
        raise ResultsError(
            f"{loaded.path}: no successful ('ok') trial among {len(loaded.records)}; see the error column"
        )
    print(text_table(ranked))


def _plot(args: argparse.Namespace) -> None:
    if not args.out.lower().endswith(PLOT_FORMATS):
        raise ResultsError(f"--out {args.out}: unsupported figure format; end the name with one of {PLOT_FORMATS}")
    draw = plot_strategies if args.by_strategy else plot_progress
    print(draw(load_runs(args.runs), args.out, window=args.window))


def _export(args: argparse.Namespace) -> None:
    if args.format == "json":
        print(export_genotype(args.run, args.out, rank=args.rank))
        return
    path, diffs = export_pyramid(
        args.run,
        args.out,
        args.format,
        args.rank,
        repeats=args.repeats,
        channels=args.channels,
        separable=args.separable,
        in_channels=args.in_channels,
        backbone=args.backbone,
        size=tuple(args.size),
        dynamic=args.dynamic,
    )
    check = "not read back (onnxruntime is not installed)"
    if diffs is not None:
        check = "max |export - PyTorch| per level " + " ".join(f"{d:.1e}" for d in diffs)
    print(f"{path}  ({check})")


def _report(args: argparse.Namespace) -> None:
    out = args.out or record_path(args.run).parent / "report"
    print(write_report(args.run, out, k=args.k))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0, or 2 for a failure the user can fix)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "top":
            _top(args)
        elif args.command == "export":
            _export(args)
        elif args.command == "recover":
            print(recover_record(record_path(args.run), args.out).summary(args.out))
        elif args.command == "plot":
            _plot(args)
        elif args.command == "compare":
            table = strategy_table if args.by_strategy else compare_table
            text = table(load_runs(args.runs), args.budgets, args.last)
            if args.out:
                Path(args.out).write_text(text)
            print(text, end="")
        else:
            _report(args)
    except (ResultsError, GenotypeError) as e:
        print(f"python -m results {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # e.g. --out in a directory that cannot be written
        print(f"python -m results {args.command}: error: {e}; check the output path", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
