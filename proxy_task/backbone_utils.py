"""A genotype pyramid on a torchvision backbone, for torchvision's own detectors.

In the spirit of `torchvision.models.detection.backbone_utils.BackboneWithFPN`: the body
returns the backbone's C3..C5 (`create_feature_extractor`), the neck (`space.neck.build_neck`,
the builder the proxy task uses too) returns P3..P7, and `out_channels` tells the detector
their width. With the anchors and the RoI pooler below it plugs into torchvision's
`RetinaNet`, `FCOS` and `FasterRCNN` unchanged:

    backbone = nasfpn_backbone("resnet50", genotype, channels=256, repeats=7)
    RetinaNet(backbone, num_classes, anchor_generator=anchor_generator("retinanet"))
    FCOS(backbone, num_classes, anchor_generator=anchor_generator("fcos"))
    FasterRCNN(backbone, num_classes, rpn_anchor_generator=anchor_generator("fasterrcnn"),
               box_roi_pool=roi_pooler(genotype))
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models import get_model
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.ops import MultiScaleRoIAlign

from proxy_task.detector import make_anchor_generator
from space.genotype import Genotype
from space.neck import build_neck, level_names

# Per torchvision model: level -> the node that ends the stage of stride 2^level.
_RESNET = {2: "layer1", 3: "layer2", 4: "layer3", 5: "layer4"}
_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d")
_RESNETS += ("resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2")
LEVEL_NODES: dict[str, dict[int, str]] = {
    **dict.fromkeys(_RESNETS, _RESNET),
    "mobilenet_v2": {3: "features.6", 4: "features.13", 5: "features.17"},  # as NAS-FPNLite's
    "mobilenet_v3_large": {3: "features.6", 4: "features.12", 5: "features.16"},
}
# Anchors per detector, as (scale, octaves, ratios): size = scale * stride * 2^(o / octaves).
# RetinaNet: the paper's (32..512 px on P3..P7, torchvision's RetinaNet defaults up to rounding);
# FCOS: one anchor of the stride's size (torchvision's FCOS defaults); Faster R-CNN: one size,
# three ratios per level (torchvision's FPN defaults, on P3..P7 instead of P2..P6).
ANCHORS = {
    "retinanet": (4.0, 3, (0.5, 1.0, 2.0)),
    "fcos": (1.0, 1, (1.0,)),
    "fasterrcnn": (4.0, 1, (0.5, 1.0, 2.0)),
}


class BackboneWithNASFPN(nn.Module):
    """Image (N, 3, H, W) -> OrderedDict {'p3': (N, C, ceil(H/8), ceil(W/8)), ..., 'p7': ...}.

    Args:
        backbone: any torchvision (or torch.fx-traceable) classification model.
        return_layers: {node name: feature name} of its features at levels min_level..,
            in level order (e.g. {'layer2': 'c3', 'layer3': 'c4', 'layer4': 'c5'}).
        in_channels_list: their widths, in the same order.
        genotype, out_channels, repeats, separable, dropblock_prob, dropblock_size: the neck
            (`space.neck.build_neck`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        return_layers: dict[str, str],
        in_channels_list: Sequence[int],
        genotype: Genotype,
        out_channels: int = 256,
        repeats: int = 7,
        separable: bool = False,
        dropblock_prob: float = 0.0,
        dropblock_size: int = 3,
    ):
        super().__init__()
        self.body = create_feature_extractor(backbone, return_layers)
        self.fpn = build_neck(
            genotype, in_channels_list, out_channels, repeats, separable, dropblock_prob, dropblock_size
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.fpn(self.body(x))


def _widths(body: nn.Module) -> list[int]:
    """Channel count of each feature the body returns (one small forward pass)."""
    was = body.training
    body.eval()
    with torch.no_grad():
        widths = [f.shape[1] for f in body(torch.zeros(1, 3, 64, 64)).values()]
    body.train(was)
    return widths


def nasfpn_backbone(
    name: str,
    genotype: Genotype,
    *,
    channels: int = 256,
    repeats: int = 7,
    separable: bool = False,
    dropblock_prob: float = 0.0,
    dropblock_size: int = 3,
    weights: object = None,
    **model_kwargs: object,
) -> BackboneWithNASFPN:
    """A torchvision model by name (`LEVEL_NODES`) with the genotype's pyramid on top.

    `weights` and `model_kwargs` go to `torchvision.models.get_model` (None: random
    initialisation, nothing downloaded). The backbone gives levels min_level..5 (C3..C5 for
    the usual genotypes); the neck pools the levels above.

    Raises:
        ValueError: an unsupported backbone name, or a genotype whose lowest level the
            backbone does not give.
    """
    if name not in LEVEL_NODES:
        raise ValueError(
            f"unsupported backbone {name!r}: expected one of {sorted(LEVEL_NODES)}"
            " (or BackboneWithNASFPN with your model's return_layers)"
        )
    nodes = LEVEL_NODES[name]
    levels = [lv for lv in genotype.levels if lv <= max(nodes)]
    if genotype.min_level not in nodes:
        raise ValueError(
            f"the genotype's levels start at {genotype.min_level}; {name} gives levels {min(nodes)}..{max(nodes)}"
        )
    model = get_model(name, weights=weights, **model_kwargs)
    return_layers = {nodes[lv]: f"c{lv}" for lv in levels}
    widths = _widths(create_feature_extractor(model, return_layers))
    return BackboneWithNASFPN(
        model, return_layers, widths, genotype, channels, repeats, separable, dropblock_prob, dropblock_size
    )


def anchor_generator(detector: str, levels: Sequence[int] = (3, 4, 5, 6, 7)) -> AnchorGenerator:
    """Anchors on the pyramid's levels for torchvision's 'retinanet', 'fcos' or 'fasterrcnn'.

    Raises:
        ValueError: another detector name.
    """
    if detector not in ANCHORS:
        raise ValueError(f"unknown detector {detector!r}, expected one of {list(ANCHORS)}")
    scale, octaves, ratios = ANCHORS[detector]
    return make_anchor_generator(scale, octaves, ratios, levels)


def roi_pooler(genotype: Genotype, output_size: int = 7, sampling_ratio: int = 2) -> MultiScaleRoIAlign:
    """Faster R-CNN's `box_roi_pool` on every pyramid level ('p3'..'p7')."""
    return MultiScaleRoIAlign(level_names(genotype), output_size, sampling_ratio)
