"""Backbones that return features at levels 3, 4, 5 (strides 8, 16, 32), from torchvision.

* ResNet-10 (BasicBlock [1, 1, 1, 1], the paper's proxy), ResNet-18, ResNet-50, with a width
  multiplier on the stage widths (64, 128, 256, 512) so a CPU proxy can be small;
* MobileNetV2 (NAS-FPNLite) with torchvision's `width_mult`.
Random initialisation unless a local weights file is given (nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import mobilenet_v2
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

_RESNETS = {
    "resnet10": (BasicBlock, [1, 1, 1, 1]),
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class _WideResNet(ResNet):
    """torchvision's ResNet with every stage width (and the stem) multiplied by `width`."""

    def __init__(self, block: type[nn.Module], layers: list[int], width: float):
        self._width = width
        super().__init__(block, layers)  # type: ignore[arg-type]
        stem = self._scaled(64)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

    def _scaled(self, planes: int) -> int:
        return max(8, int(round(planes * self._width)))

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # type: ignore[override]
        if planes == 64:  # first stage: the stem width, scaled, feeds it
            self.inplanes = self._scaled(64)
        return super()._make_layer(block, self._scaled(planes), blocks, stride, dilate)


class Backbone(nn.Module):
    """Image (N, 3, H, W) -> [C3, C4, C5], C_l of shape (N, out_channels[k], ceil(H/2^l), ceil(W/2^l))."""

    def __init__(self, body: nn.Module, out_channels: list[int]):
        super().__init__()
        self.body = body
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x).values())


def _load_weights(model: nn.Module, path: str) -> None:
    file = Path(path).expanduser()
    if not file.exists():
        raise FileNotFoundError(f"backbone weights not found: {file}")
    state = torch.load(file, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    result = model.load_state_dict(state, strict=False)
    if len(result.missing_keys) == len(model.state_dict()):
        raise ValueError(f"{file}: no parameter matches the backbone (is it the right architecture?)")


def build_backbone(name: str, width: float = 1.0, weights: str = "") -> Backbone:
    """A backbone by name: resnet10 | resnet18 | resnet50 | mobilenet_v2.

    Raises:
        ValueError: unknown name, or a weights file that does not fit.
        FileNotFoundError: `weights` names a missing file.
    """
    if name in _RESNETS:
        block, layers = _RESNETS[name]
        net: nn.Module = _WideResNet(block, layers, width)
        if weights:
            _load_weights(net, weights)
        body = IntermediateLayerGetter(net, {"layer2": "c3", "layer3": "c4", "layer4": "c5"})
    elif name == "mobilenet_v2":
        net = mobilenet_v2(weights=None, width_mult=width)
        if weights:
            _load_weights(net, weights)
        # features[6]: last stride-8 block, [13]: last stride-16 block, [17]: last stride-32 block
        body = IntermediateLayerGetter(net.features, {"6": "c3", "13": "c4", "17": "c5"})
    else:
        raise ValueError(f"unknown backbone {name!r}, expected one of {[*_RESNETS, 'mobilenet_v2']}")
    with torch.no_grad():
        was = body.training
        body.eval()
        channels = [f.shape[1] for f in body(torch.zeros(1, 3, 64, 64)).values()]
        body.train(was)
    return Backbone(body, channels)
