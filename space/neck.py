"""The genotype pyramid as a neck with torchvision's calling convention, and its one builder.

`torchvision.ops.FeaturePyramidNetwork` takes an OrderedDict of backbone features and
returns an OrderedDict of pyramid levels; torchvision's detectors read a backbone's
`out_channels` and take the levels in order (RetinaNet, FCOS) or by name (Faster R-CNN's
`MultiScaleRoIAlign`). `NASFPNNeck` is `space.pyramid.NASFPN` (same modules, same
initialisation, same state-dict keys) with that convention: C3..C5 in, "p3".."p7" out.

`build_neck` is the one place a genotype becomes a neck: the proxy detector
(`proxy_task.detector`), the torchvision backbones (`proxy_task.backbone_utils`) and the
exports (`space.portable`) all call it, so a genotype trains and exports the same everywhere.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch

from space.genotype import Genotype
from space.pyramid import NASFPN


def level_names(genotype: Genotype) -> list[str]:
    """Names of the neck's outputs: ['p3', 'p4', 'p5', 'p6', 'p7'] for levels 3..7."""
    return [f"p{lv}" for lv in genotype.levels]


class NASFPNNeck(NASFPN):
    """OrderedDict of backbone features C_min.. (in level order) -> OrderedDict P_min..P_max.

    Args are those of `space.pyramid.NASFPN`; `out_channels` (= `channels`) is what
    torchvision's detectors read. A list in gives a list out, as `NASFPN` (the proxy
    detector's cached features); `forward_all` gives every repeat's levels (anytime heads).
    """

    def forward(  # type: ignore[override]
        self, x: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]
    ) -> OrderedDict[str, torch.Tensor] | list[torch.Tensor]:
        """x: {name: (N, C_l, H_l, W_l)} for levels min_level.., in that order (the names are
        the backbone's, e.g. 'c3'..'c5' or '0'..'2') -> {'p3': (N, C, H_3, W_3), ...}."""
        if not isinstance(x, Mapping):
            return super().forward(x)
        return OrderedDict(zip(level_names(self.genotype), super().forward(list(x.values()))))


def build_neck(
    genotype: Genotype,
    in_channels: Sequence[int],
    channels: int = 256,
    repeats: int = 7,
    separable: bool = False,
    dropblock_prob: float = 0.0,
    dropblock_size: int = 3,
) -> NASFPNNeck:
    """The `repeats`@`channels` pyramid of `genotype` on backbone widths `in_channels`.

    in_channels: widths of the backbone features at levels min_level, min_level + 1, ...
    (ResNet-50's C3..C5: 512, 1024, 2048); the levels above them are max-pooled. `separable`
    gives NAS-FPNLite's separable convs; `dropblock_prob` > 0 adds DropBlock after every
    cell's BN (the paper's regulariser for its largest models).

    Raises:
        ValueError: repeats < 1, or more backbone widths than the genotype has levels.
    """
    return NASFPNNeck(genotype, list(in_channels), channels, repeats, separable, dropblock_prob, dropblock_size)
