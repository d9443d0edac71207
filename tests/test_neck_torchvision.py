"""The genotype neck in torchvision's own detectors: calling convention, anchors, train and eval steps."""

import math

import pytest
import torch
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet

from proxy_task.backbone_utils import anchor_generator, nasfpn_backbone, roi_pooler
from space import load_builtin
from space.neck import build_neck
from space.pyramid import NASFPN

PAPER = load_builtin("nasfpn_paper")


def test_neck_is_the_pyramid_with_named_levels():
    torch.manual_seed(0)
    reference = NASFPN(PAPER, [8, 16, 32], channels=8, repeats=2).eval()
    torch.manual_seed(0)
    neck = build_neck(PAPER, [8, 16, 32], channels=8, repeats=2).eval()
    assert list(neck.state_dict()) == list(reference.state_dict())  # same modules, same keys
    feats = [torch.randn(2, c, s, s + 1) for c, s in ((8, 12), (16, 6), (32, 3))]
    with torch.no_grad():
        out = neck({"c3": feats[0], "c4": feats[1], "c5": feats[2]})
        expected = reference(feats)
    assert list(out) == ["p3", "p4", "p5", "p6", "p7"]
    assert [tuple(p.shape[-2:]) for p in out.values()] == [(12, 13), (6, 7), (3, 4), (2, 2), (1, 1)]
    for got, want in zip(out.values(), expected):
        assert torch.equal(got, want)  # same initialisation, same computation
    with torch.no_grad():
        as_list = neck(feats)  # a list in, a list out: what the proxy detector passes
    assert all(torch.equal(a, b) for a, b in zip(as_list, expected))


def test_backbone_widths_and_unsupported_names():
    backbone = nasfpn_backbone("resnet50", PAPER, channels=16, repeats=1)
    assert [p[0].in_channels for p in backbone.fpn.projections] == [512, 1024, 2048]
    assert backbone.out_channels == 16
    with pytest.raises(ValueError, match="unsupported backbone 'vgg16'"):
        nasfpn_backbone("vgg16", PAPER)


def test_anchors_match_the_five_levels():
    retina, fcos, rcnn = (anchor_generator(d) for d in ("retinanet", "fcos", "fasterrcnn"))
    assert retina.num_anchors_per_location() == [9] * 5
    assert [round(s) for s in retina.sizes[0]] == [32, 40, 51]  # torchvision's (32, 40, 50), paper's scale 4
    assert fcos.sizes == ((8.0,), (16.0,), (32.0,), (64.0,), (128.0,))  # one anchor of the stride's size
    assert fcos.num_anchors_per_location() == [1] * 5
    assert rcnn.sizes == ((32.0,), (64.0,), (128.0,), (256.0,), (512.0,))
    assert rcnn.num_anchors_per_location() == [3] * 5
    assert roi_pooler(PAPER).featmap_names == ["p3", "p4", "p5", "p6", "p7"]
    with pytest.raises(ValueError, match="unknown detector"):
        anchor_generator("yolo")


def _detector(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    backbone = nasfpn_backbone("resnet18", PAPER, channels=32, repeats=1)  # FCOS's GroupNorm needs 32
    common = {"min_size": 96, "max_size": 96}
    if kind == "retinanet":
        return RetinaNet(backbone, 3, anchor_generator=anchor_generator(kind), score_thresh=0.0, **common)
    if kind == "fcos":
        return FCOS(backbone, 3, anchor_generator=anchor_generator(kind), score_thresh=0.0, **common)
    return FasterRCNN(
        backbone,
        3,
        rpn_anchor_generator=anchor_generator(kind),
        box_roi_pool=roi_pooler(PAPER),
        box_score_thresh=0.0,
        **common,
    )


@pytest.mark.parametrize("kind", ["retinanet", "fcos", "fasterrcnn"])
def test_train_and_eval_step_in_torchvision_detectors(kind):
    model = _detector(kind)
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 96, 96, generator=gen), torch.rand(3, 80, 96, generator=gen)]
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 50.0, 60.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[5.0, 20.0, 70.0, 40.0], [40.0, 8.0, 90.0, 70.0]]), "labels": torch.tensor([2, 1])},
    ]
    model.train()
    losses = model(images, targets)
    assert all(math.isfinite(v.item()) for v in losses.values()), losses
    sum(losses.values()).backward()
    neck_grads = [p.grad for p in model.backbone.fpn.parameters()]
    assert all(g is not None for g in neck_grads) and any(float(g.abs().sum()) > 0 for g in neck_grads)
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for det, (h, w) in zip(detections, [(96, 96), (80, 96)]):
        assert det["boxes"].shape[0] > 0 and det["boxes"].shape[1] == 4
        assert det["boxes"].shape[0] == det["scores"].shape[0] == det["labels"].shape[0]
        assert float(det["boxes"][:, 2].max()) <= w and float(det["boxes"][:, 3].max()) <= h  # original sizes
