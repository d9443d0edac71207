"""Portable exports of a genotype pyramid: a `torch.export` program and an ONNX model.

Either file runs without this project: `torch.export.load(path).module()(*inputs)` or an
`onnxruntime.InferenceSession`. Two kinds of model export:
* the neck alone (`space.neck.NASFPNNeck`): inputs 'c3', 'c4', 'c5' (N, C_l, H_l, W_l);
* a backbone with the neck (`proxy_task.backbone_utils.BackboneWithNASFPN`): input 'image'
  (N, 3, H, W).
Outputs: 'p3'..'p7', (N, C, ceil(H / 2^l), ceil(W / 2^l)). Batch size is free in both.

Fixed size: any H, W. Dynamic height and width: H and W multiples of the top level's stride
(2^max_level, 128 for P7), traced at two strides or more. Why: the level sizes are
ceil(H / 2^l), which `torch.export` can only follow symbolically when every division is
exact (H = 128 k gives H_l = 2^(7 - l) k), and it specialises a size of 1, which P7 has at
H = 128 (k = 1). The ONNX model takes any size at run time; the program checks k >= 2.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.export import Dim

from space.genotype import Genotype
from space.neck import NASFPNNeck, level_names

MAX_STRIDES = 64  # dynamic export: H, W up to 64 top-level strides (8192 px for P7)


class ExportError(ValueError):
    """An export that cannot be made as asked (size, missing optional package). One line."""


class _Flat(nn.Module):
    """Positional tensors in, a tuple of levels out: the form both exporters name and keep."""

    def __init__(self, model: nn.Module, input_names: Sequence[str]):
        super().__init__()
        self.model = model
        self.input_names = list(input_names)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(self.model, NASFPNNeck):
            return tuple(self.model(OrderedDict(zip(self.input_names, inputs))).values())
        return tuple(self.model(inputs[0]).values())


def example_inputs(
    genotype: Genotype, in_channels: Sequence[int] | None, size: tuple[int, int], batch: int = 2, seed: int = 0
) -> OrderedDict[str, torch.Tensor]:
    """Random inputs for an H x W image: {'image': (N, 3, H, W)} when `in_channels` is None
    (backbone + neck), else the backbone features {'c3': (N, C_3, ceil(H/8), ceil(W/8)), ...}.

    Raises:
        ExportError: a size below 1.
    """
    h, w = size
    if h < 1 or w < 1:
        raise ExportError(f"input size {h}x{w}: height and width must be at least 1")
    gen = torch.Generator().manual_seed(seed)
    if in_channels is None:
        return OrderedDict(image=torch.randn(batch, 3, h, w, generator=gen))
    return OrderedDict(
        (f"c{lv}", torch.randn(batch, c, -(-h // 2**lv), -(-w // 2**lv), generator=gen))
        for lv, c in zip(genotype.levels, in_channels)
    )


def _check_dynamic_size(genotype: Genotype, inputs: OrderedDict[str, torch.Tensor]) -> None:
    top = 2**genotype.max_level
    for name, x in inputs.items():
        scale = 2 ** _level(name)  # image pixels per pixel of this input
        h, w = (s * scale for s in x.shape[-2:])
        if h % top or w % top or min(h, w) < 2 * top:
            raise ExportError(
                f"dynamic export needs the image height and width to be multiples of {top}"
                f" (the P{genotype.max_level} stride) and at least {2 * top}; got {h}x{w}"
            )


def _level(name: str) -> int:
    return 0 if name == "image" else int(name[1:])


def _shapes(genotype: Genotype, inputs: OrderedDict[str, torch.Tensor], dynamic: bool) -> dict:
    """Batch free; with `dynamic`, H and W = (2^max_level / 2^level) * k with k >= 2."""
    batch = Dim("batch", min=1, max=1024)
    if not dynamic:
        return {"inputs": tuple({0: batch} for _ in inputs)}
    _check_dynamic_size(genotype, inputs)
    kh, kw = Dim("kh", min=2, max=MAX_STRIDES), Dim("kw", min=2, max=MAX_STRIDES)
    strides = [2**genotype.max_level // 2 ** _level(name) for name in inputs]  # in each input's pixels
    return {"inputs": tuple({0: batch, 2: s * kh, 3: s * kw} for s in strides)}


def export_program(
    model: nn.Module,
    genotype: Genotype,
    inputs: OrderedDict[str, torch.Tensor],
    path: str | os.PathLike[str],
    dynamic: bool,
) -> Path:
    """Save `model` (eval mode) as a `torch.export` program (`.pt2`) taking `inputs` positionally.

    Raises:
        ExportError: a size the dynamic export cannot take.
    """
    flat = _Flat(model, list(inputs)).eval()
    shapes = _shapes(genotype, inputs, dynamic)
    program = torch.export.export(flat, tuple(inputs.values()), dynamic_shapes=shapes)
    torch.export.save(program, path)
    return Path(path)


def export_onnx(
    model: nn.Module,
    genotype: Genotype,
    inputs: OrderedDict[str, torch.Tensor],
    path: str | os.PathLike[str],
    dynamic: bool,
) -> Path:
    """Save `model` (eval mode) as one self-contained ONNX file, inputs and outputs named.

    Raises:
        ExportError: a size the dynamic export cannot take, or `onnxscript` (torch's ONNX
            exporter) missing.
    """
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it; say so in one line)
    except ImportError:
        raise ExportError("ONNX export needs the optional packages: pip install 'nasfpn[onnx]'") from None
    flat = _Flat(model, list(inputs)).eval()
    shapes = _shapes(genotype, inputs, dynamic)
    with warnings.catch_warnings():  # every input shares the one `batch` dim: the exporter says so, harmlessly
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints")
        torch.onnx.export(
            flat,
            tuple(inputs.values()),
            str(path),
            input_names=list(inputs),
            output_names=level_names(genotype),
            dynamic_shapes=shapes,
            dynamo=True,
            external_data=False,  # one file; the weights of a 7@256 pyramid are far below ONNX's 2 GB
            verbose=False,
        )
    return Path(path)


@torch.no_grad()
def max_abs_differences(
    model: nn.Module, path: str | os.PathLike[str], input_sets: Sequence[OrderedDict[str, torch.Tensor]]
) -> list[float]:
    """Per level, max |exported - PyTorch| over `input_sets`, the export read back once from
    `path` (`.onnx`: onnxruntime, else `torch.export.load`).

    Raises:
        ImportError: an ONNX file and no onnxruntime.
    """
    reference = _Flat(model, list(input_sets[0])).eval()
    if str(path).endswith(".onnx"):
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def run(inputs: OrderedDict[str, torch.Tensor]) -> list[torch.Tensor]:
            return [torch.from_numpy(y) for y in session.run(None, {k: v.numpy() for k, v in inputs.items()})]
    else:
        program = torch.export.load(path).module()

        def run(inputs: OrderedDict[str, torch.Tensor]) -> list[torch.Tensor]:
            return list(program(*inputs.values()))

    diffs: list[float] = []
    for inputs in input_sets:
        got, expected = run(inputs), reference(*inputs.values())
        level_diffs = [float((a - b).abs().max()) for a, b in zip(got, expected)]
        diffs = [max(d, e) for d, e in zip(diffs, level_diffs)] if diffs else level_diffs
    return diffs
