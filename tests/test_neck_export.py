"""Portable exports of a genotype pyramid: torch.export programs and ONNX models reproduce PyTorch."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from proxy_task.backbone_utils import nasfpn_backbone
from results.__main__ import main
from space import load_builtin
from space.neck import build_neck
from space.portable import ExportError, example_inputs, export_onnx, export_program, max_abs_differences

PAPER = load_builtin("nasfpn_paper")
WIDTHS = [16, 32, 64]
TOLERANCE = 1e-4  # per level, max abs difference; measured 0 (programs) and <= 1e-5 (ONNX)


def _calibrated(model: nn.Module, in_channels: list[int] | None) -> nn.Module:
    """BN statistics from three random batches, then eval mode. A fresh BN (mean 0, var 1)
    leaves activations unnormalised: they reach ~500 after a few cells and float32 rounding
    alone is then ~1e-4; with statistics, as after training, they stay near unit scale."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for seed in range(3):
            inputs = example_inputs(PAPER, in_channels, (256, 256), batch=2, seed=seed)
            model(inputs["image"] if in_channels is None else inputs)
    return model.eval()


@pytest.fixture(scope="module")
def neck() -> nn.Module:
    torch.manual_seed(0)
    return _calibrated(build_neck(PAPER, WIDTHS, channels=16, repeats=2), WIDTHS)


@pytest.fixture(scope="module")
def backbone() -> nn.Module:
    torch.manual_seed(0)
    return _calibrated(nasfpn_backbone("resnet18", PAPER, channels=16, repeats=1), None)


def _check(model: nn.Module, path: Path, sizes: list[tuple[int, int]], in_channels=WIDTHS) -> None:
    input_sets = [example_inputs(PAPER, in_channels, s, batch=n, seed=n) for s in sizes for n in (1, 3)]
    diffs = max_abs_differences(model, path, input_sets)
    assert len(diffs) == 5 and max(diffs) <= TOLERANCE, diffs


def test_program_reproduces_the_pyramid_at_a_fixed_and_at_dynamic_sizes(tmp_path, neck):
    fixed = export_program(neck, PAPER, example_inputs(PAPER, WIDTHS, (96, 160)), tmp_path / "fixed.pt2", False)
    _check(neck, fixed, [(96, 160)])
    dynamic = export_program(neck, PAPER, example_inputs(PAPER, WIDTHS, (256, 256)), tmp_path / "dyn.pt2", True)
    _check(neck, dynamic, [(384, 512), (256, 640)])
    out = torch.export.load(dynamic).module()(*example_inputs(PAPER, WIDTHS, (384, 512), batch=1).values())
    assert [tuple(p.shape) for p in out] == [
        (1, 16, 48, 64),
        (1, 16, 24, 32),
        (1, 16, 12, 16),
        (1, 16, 6, 8),
        (1, 16, 3, 4),
    ]


def test_program_of_backbone_and_neck(tmp_path, backbone):
    path = export_program(backbone, PAPER, example_inputs(PAPER, None, (256, 256)), tmp_path / "bb.pt2", True)
    _check(backbone, path, [(384, 256)], in_channels=None)


def test_program_runs_without_the_project(tmp_path):
    torch.manual_seed(0)
    neck = build_neck(PAPER, WIDTHS, channels=8, repeats=1)
    path = export_program(neck, PAPER, example_inputs(PAPER, WIDTHS, (64, 96)), tmp_path / "neck.pt2", False)
    # a fresh interpreter in which the project's packages cannot be imported
    code = (
        "import sys\n"
        "for m in ('space', 'proxy_task', 'results', 'search', 'controller', 'studies'): sys.modules[m] = None\n"
        "import torch\n"
        f"program = torch.export.load({str(path)!r}).module()\n"
        "inputs = [torch.zeros(3, c, 8 // 2**k, 12 // 2**k) for k, c in enumerate((16, 32, 64))]\n"
        "print([tuple(p.shape) for p in program(*inputs)])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[(3, 8, 8, 12), (3, 8, 4, 6), (3, 8, 2, 3), (3, 8, 1, 2), (3, 8, 1, 1)]"


def test_sizes_the_export_cannot_take():
    neck = build_neck(PAPER, WIDTHS, channels=8, repeats=1)
    for size in [(200, 256), (128, 256)]:  # not a multiple of 128; one P7 stride only
        with pytest.raises(ExportError, match="multiples of 128 .* at least 256"):
            export_program(neck, PAPER, example_inputs(PAPER, WIDTHS, size), "unused.pt2", True)
    with pytest.raises(ExportError, match="at least 1"):
        example_inputs(PAPER, WIDTHS, (0, 64))


def test_onnx_needs_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    neck = build_neck(PAPER, WIDTHS, channels=8, repeats=1)
    with pytest.raises(ExportError, match=r"pip install 'nasfpn\[onnx\]'"):
        export_onnx(neck, PAPER, example_inputs(PAPER, WIDTHS, (64, 64)), "unused.onnx", False)


@pytest.mark.parametrize("dynamic", [False, True])
def test_onnx_reproduces_the_pyramid(tmp_path, dynamic, neck):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    size, checked = ((256, 256), [(384, 512), (256, 640)]) if dynamic else ((96, 160), [(96, 160)])
    path = export_onnx(neck, PAPER, example_inputs(PAPER, WIDTHS, size), tmp_path / "neck.onnx", dynamic)
    _check(neck, path, checked)


def test_onnx_of_backbone_and_neck(tmp_path, backbone):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = export_onnx(backbone, PAPER, example_inputs(PAPER, None, (128, 96)), tmp_path / "bb.onnx", False)
    _check(backbone, path, [(128, 96)], in_channels=None)


def _one_line_error(capsys, argv: list[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err


def test_cli_exports_and_refuses_in_one_line(tmp_path, capsys):
    out = tmp_path / "paper.pt2"
    small = ["--repeats", "1", "--channels", "8", "--in-channels", "16", "32", "--size", "64", "96"]
    assert main(["export", "paper", "--format", "torch", "--out", str(out), *small]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{out}  (max |export - PyTorch| per level 0.0e+00") and out.is_file()
    program = torch.export.load(out).module()  # two backbone widths: C3, C4; P5..P7 pooled
    assert [tuple(p.shape) for p in program(torch.zeros(2, 16, 8, 12), torch.zeros(2, 32, 4, 6))][-1] == (2, 8, 1, 1)
    bad = tmp_path / "bad.json"
    bad.write_text('{"cells": [[3, "sum", [0, 1], true]]}')
    _one_line_error(capsys, ["export", str(bad), "--format", "torch", "--out", str(out)], "at least 5 cells")
    argv = ["export", "paper", "--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--backbone", "vgg16"]
    _one_line_error(capsys, argv, "unsupported backbone 'vgg16'")
    argv = ["export", "fpn", "--format", "torch", "--out", str(out), "--size", "200", "256", "--dynamic"]
    _one_line_error(capsys, argv, "multiples of 128")
    argv = ["export", str(tmp_path / "none.json"), "--format", "torch", "--out", str(out)]
    _one_line_error(capsys, argv, "genotype file not found")
