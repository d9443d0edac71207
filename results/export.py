"""Export a searched architecture: its genotype as JSON, or its pyramid as a portable model.

`json`: the genotype file (space format). `torch` / `onnx`: the genotype's N@C pyramid as a
`torch.export` program or an ONNX model (`space.portable`), freshly initialised, on the
features of a backbone's C3..C5 (`in_channels`) or behind a torchvision backbone
(`backbone`, image in). The source is a run (its rank-`rank` architecture), a genotype JSON
file or a built-in name ('paper', 'fpn').
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from results.errors import ResultsError
from results.ranking import pick_rank
from results.run import load_run
from space import Genotype, load_spec, save

FORMATS = ("json", "torch", "onnx")


def export_genotype(run: str | os.PathLike[str], out: str | os.PathLike[str], rank: int = 1) -> Path:
    """Write the genotype of rank `rank` (1 = best) of RUN to `out`, atomically.

    `space.load(out)` returns a genotype equal to the stored one, with the same hash.

    Raises:
        RecordError: missing or damaged run.
        NoResultsError: empty run, no 'ok' trial, or rank out of range.
        space.GenotypeError: the stored genotype_json is not valid.
    """
    genotype, name = load_source(run, rank)
    return save(genotype, out, name=name)


def load_source(source: str | os.PathLike[str], rank: int = 1) -> tuple[Genotype, str]:
    """(genotype, description) of a run's rank-`rank` architecture, a genotype JSON file or a
    built-in genotype name.

    Raises:
        RecordError, NoResultsError: as `export_genotype`, for a run.
        space.GenotypeError: a genotype file that is missing or not valid.
    """
    path = Path(source)
    if path.suffix == ".json" or not path.exists():
        try:
            return load_spec(str(source)), path.stem
        except FileNotFoundError as e:
            if path.suffix == ".json":
                raise ResultsError(f"{e}; give a run directory, a genotype JSON file or 'paper' / 'fpn'") from None
    loaded = load_run(source)  # a run directory or its .sqlite file; a missing one is named here
    best = pick_rank(loaded.records, rank).best
    name = f"{loaded.label} rank {rank}: reward {best.reward:.4f}, trial {best.trial_id}, step {best.step}"
    return best.genotype(), name


def export_pyramid(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str,
    rank: int = 1,
    *,
    repeats: int = 7,
    channels: int = 256,
    separable: bool = False,
    in_channels: Sequence[int] = (512, 1024, 2048),
    backbone: str | None = None,
    size: tuple[int, int] = (640, 640),
    dynamic: bool = False,
) -> tuple[Path, list[float] | None]:
    """Write the pyramid of `source` as a `torch.export` program (`fmt='torch'`) or an ONNX
    model (`'onnx'`); returns the file and, per level, the max |export - PyTorch| on a random
    input read back from the file (None when onnxruntime is not installed).

    Raises:
        ResultsError: an unsupported backbone or format, a size the export cannot take, a
            missing optional package; and what `load_source` raises.
    """
    import torch

    from space.neck import build_neck
    from space.portable import ExportError, example_inputs, export_onnx, export_program, max_abs_differences

    if fmt not in ("torch", "onnx"):
        raise ResultsError(f"format {fmt!r} is not a model format, expected 'torch' or 'onnx'")
    genotype, _ = load_source(source, rank)
    torch.manual_seed(0)
    try:
        if backbone is not None:
            from proxy_task.backbone_utils import nasfpn_backbone

            model = nasfpn_backbone(backbone, genotype, channels=channels, repeats=repeats, separable=separable)
        else:
            model = build_neck(genotype, in_channels, channels, repeats, separable)
        inputs = example_inputs(genotype, None if backbone is not None else in_channels, size)
        write = export_program if fmt == "torch" else export_onnx
        path = write(model, genotype, inputs, out, dynamic)
    except ExportError as e:
        raise ResultsError(str(e)) from None
    except ValueError as e:  # unsupported backbone, genotype levels the backbone lacks, bad widths
        raise ResultsError(f"{e}") from None
    try:
        return path, max_abs_differences(model, path, [inputs])
    except ImportError:  # an ONNX file without onnxruntime to read it back
        return path, None
