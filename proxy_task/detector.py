"""RetinaNet on a genotype pyramid, assembled from torchvision's detection parts.

From torchvision: `RetinaNet` (its matcher, box coder, and the steps of its
`postprocess_detections`: score threshold, top-k, box decoding, clipping, batched NMS, here
run batched over images), `RetinaNetHead` with BN after every conv (`norm_layer`, as the
paper), `AnchorGenerator`, `sigmoid_focal_loss` (`focal_loss="torchvision"`). Ours: the neck
(`space.neck.build_neck`, the builder torchvision's detectors get it from too), anytime
heads, a batched loss with the paper's focal gamma (torchvision's head loss fixes gamma = 2
and loops over images) whose targets are built once per step for all exits, and a fused
focal loss (proxy_task.focal).

Inputs are batched, normalised tensors of one size (the data pipeline letterboxes every
image to the proxy resolution), or cached backbone features when the backbone is frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, sigmoid_focal_loss

from proxy_task.config import FOCAL_LOSSES
from proxy_task.focal import sigmoid_focal_loss_sum
from space.genotype import Genotype
from space.neck import build_neck

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def make_anchor_generator(
    scale: float, octaves: int, ratios: Sequence[float], levels: Sequence[int] = (3, 4, 5, 6, 7)
) -> AnchorGenerator:
    """Anchors of size scale * 2^l * 2^(o/octaves) at every level l (paper: scale 4, 3 octaves)."""
    sizes = tuple(tuple(scale * 2**lv * 2 ** (o / octaves) for o in range(octaves)) for lv in levels)
    return AnchorGenerator(sizes, (tuple(ratios),) * len(sizes))


class LevelBatchNorm(nn.Module):
    """BatchNorm with its own statistics and affine per pyramid level (as the official heads).

    The head's convs are shared by all levels, but the levels' statistics differ: one shared
    BN would normalise every level with a mixture of running statistics at evaluation. The
    head calls each norm layer once per level, in level order; a pre-hook on the head
    (`make_head`) resets the level counter at every forward.
    """

    def __init__(self, channels: int, num_levels: int = 5):
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(num_levels))
        self.level = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norms[self.level % len(self.norms)](x)
        self.level += 1
        return out


def _reset_levels(head: nn.Module, _inputs: object) -> None:
    for m in head.modules():
        if isinstance(m, LevelBatchNorm):
            m.level = 0


def make_head(channels: int, num_anchors: int, num_classes: int, convs: int = 4, num_levels: int = 5) -> RetinaNetHead:
    """torchvision's RetinaNet head with BatchNorm after every conv (the paper's heads), the
    BN per level (LevelBatchNorm). `convs` < 4 keeps the first `convs` conv-BN-ReLU blocks of
    each branch (a cheaper CPU proxy).
    """
    norm = partial(LevelBatchNorm, num_levels=num_levels)
    head = RetinaNetHead(channels, num_anchors, num_classes, norm_layer=norm)
    head.register_forward_pre_hook(_reset_levels)
    if not 0 <= convs <= 4:
        raise ValueError(f"head_convs={convs}, expected 0..4")
    head.classification_head.conv = head.classification_head.conv[:convs]
    head.regression_head.conv = head.regression_head.conv[:convs]
    return head


class NASFPNRetinaNet(RetinaNet):
    """RetinaNet whose neck is a NAS-FPN genotype pyramid, with optional anytime heads.

    Args:
        backbone: image -> [C3, C4, C5]; None when the model is fed cached features.
        neck: the genotype pyramid (`space.neck.NASFPNNeck`, levels 3..7); any module
            [C3, C4, C5] -> [P3..P7] with one head.
        heads: one head (plain) or one per repeat (anytime detection).
        eval_exit: the repeat whose head detects at evaluation (-1: the last).
        focal_loss: "fused" (proxy_task.focal) or "torchvision" (its op chain; the same loss
            up to float rounding).
    """

    def __init__(
        self,
        backbone: nn.Module | None,
        neck: nn.Module,
        heads: Sequence[RetinaNetHead],
        num_classes: int,
        anchor_generator: AnchorGenerator,
        focal_alpha: float = 0.25,
        focal_gamma: float = 1.5,
        focal_loss: str = "fused",
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        eval_exit: int = -1,
    ):
        super().__init__(
            neck,
            num_classes,
            anchor_generator=anchor_generator,
            head=heads[-1],
            score_thresh=score_thresh,
            nms_thresh=nms_thresh,
            detections_per_img=detections_per_img,
            image_mean=MEAN,
            image_std=STD,
        )
        del self.head, self.transform  # the heads live in self.heads; inputs come normalised
        self.backbone = backbone
        self.neck = neck
        self.heads = nn.ModuleList(heads)
        if len(heads) > 1 and len(heads) != len(neck.repeats):
            raise ValueError(f"expected 1 head or one per repeat ({len(neck.repeats)}), got {len(heads)}")
        self.num_classes = num_classes
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        if focal_loss not in FOCAL_LOSSES:
            raise ValueError(f"focal_loss={focal_loss!r}, expected one of {list(FOCAL_LOSSES)}")
        self.focal_loss = focal_loss
        self.eval_exit = eval_exit
        self._anchor_cache: dict[tuple, torch.Tensor] = {}
        self.match_cache: dict[tuple, torch.Tensor] | None = None  # see `match`; None: off
        gen, m = self.anchor_generator, self.proposal_matcher
        self._anchor_settings = (
            tuple(map(tuple, gen.sizes)),
            tuple(map(tuple, gen.aspect_ratios)),
            m.high_threshold,
            m.low_threshold,
            m.allow_low_quality_matches,
        )

    @property
    def anytime(self) -> bool:
        return len(self.heads) > 1

    # -- forward pieces -------------------------------------------------------------
    def pyramids(self, images: torch.Tensor | None, features: list[torch.Tensor] | None) -> list[list[torch.Tensor]]:
        """[P3..P7] for every exit that is used: all repeats (anytime training) or one."""
        if features is None:
            if self.backbone is None:
                raise ValueError("this model has no backbone: pass cached features")
            features = self.backbone(images)
        if not self.anytime:
            return [self.neck(features)]
        outs = self.neck.forward_all(features)
        return outs if self.training else [outs[self.eval_exit]]

    def head_outputs(
        self, images: torch.Tensor | None = None, features: list[torch.Tensor] | None = None
    ) -> list[dict]:
        """Per exit: {'cls_logits': (N, HWA, K), 'bbox_regression': (N, HWA, 4)}."""
        pyramids = self.pyramids(images, features)
        heads = self.heads if (self.training or not self.anytime) else [self.heads[self.eval_exit]]
        return [head(p) for head, p in zip(heads, pyramids)]

    def anchors(self, image_size: tuple[int, int], levels: list[torch.Tensor]) -> torch.Tensor:
        """(HWA, 4) xyxy anchors for one image of `image_size`, cached per size and device."""
        key = (image_size, tuple(tuple(x.shape[-2:]) for x in levels), levels[0].device, levels[0].dtype)
        if key not in self._anchor_cache:
            dummy = ImageList(levels[0].new_empty((1, 0, *image_size)), [image_size])
            self._anchor_cache[key] = self.anchor_generator(dummy, levels)[0]
        return self._anchor_cache[key]

    # -- loss -------------------------------------------------------------------------
    def match(self, anchors: torch.Tensor, targets: list[dict]) -> torch.Tensor:
        """(N, HWA) index of the matched box, -1 background, -2 ignored (torchvision's Matcher).

        A target with a `key` (hashable, naming its boxes: e.g. image index and flip) has its
        row looked up in, or added to, `self.match_cache` when that dict is set: the
        assignment depends on the boxes and the anchors only, never on the weights, so it
        is computed once per image and process instead of once per step (same values).
        """
        cache = self.match_cache
        anchor_key = (tuple(anchors.shape), anchors.device, self._anchor_settings) if cache is not None else None
        out = []
        for t in targets:
            key = (anchor_key, t["key"]) if cache is not None and "key" in t else None
            row = cache.get(key) if key is not None else None
            if row is None:
                if t["boxes"].numel() == 0:
                    row = torch.full((anchors.shape[0],), -1, dtype=torch.int64, device=anchors.device)
                else:
                    row = self.proposal_matcher(box_iou(t["boxes"], anchors))
                if key is not None:
                    cache[key] = row
            out.append(row)
        return torch.stack(out)

    def loss_targets(self, anchors: torch.Tensor, targets: list[dict], matched: torch.Tensor) -> dict:
        """What the loss needs from the targets, computed once per step for every exit.

        matched: (N, HWA) from `match`. Returns flat row indices into (N * HWA) of the anchors
        that count for classification ('valid': not ignored) and of the foreground ('fg'),
        their one-hot class targets ('cls_target', (M, K)), encoded boxes ('box_target',
        (F, 4)) and the positives' count ('num_fg', at least 1). Integer rows select the
        same elements in the same order as the boolean masks they come from.
        """
        flat = matched.flatten()
        fg = (flat >= 0).nonzero().squeeze(1)
        valid = (flat != self.proposal_matcher.BETWEEN_THRESHOLDS).nonzero().squeeze(1)
        # the batch's boxes in one (B, 4) tensor; image k's start at offsets[k]
        counts = torch.tensor([len(t["labels"]) for t in targets], device=flat.device)
        offsets = torch.cumsum(counts, 0) - counts
        gt = (matched + offsets.unsqueeze(1)).flatten()[fg]  # (F,) row of each positive's box
        # one-hot rows of the valid anchors: zeros, and a 1 at each positive's class; a
        # positive's row among them by binary search (fg is a subset of valid, both ascending)
        cls_target = torch.zeros(valid.shape[0], self.num_classes, device=flat.device)
        cls_target[torch.searchsorted(valid, fg), torch.cat([t["labels"] for t in targets])[gt]] = 1.0
        boxes = torch.cat([t["boxes"] for t in targets])[gt]
        box_target = self.box_coder.encode_single(boxes, anchors[fg % anchors.shape[0]])
        num_fg = max(1.0, float(fg.numel()))
        return {"valid": valid, "fg": fg, "cls_target": cls_target, "box_target": box_target, "num_fg": num_fg}

    def loss(self, head_out: dict, lt: dict) -> dict:
        """Focal loss (alpha, gamma) and L1 box loss, both normalised by the batch's positives.

        head_out: one exit's {'cls_logits': (N, HWA, K), 'bbox_regression': (N, HWA, 4)};
        lt: `loss_targets` of the batch.
        """
        logits = head_out["cls_logits"].float().flatten(0, 1)[lt["valid"]]
        regression = head_out["bbox_regression"].float().flatten(0, 1)[lt["fg"]]
        if self.focal_loss == "fused":
            cls = sigmoid_focal_loss_sum(logits, lt["cls_target"], self.focal_alpha, self.focal_gamma)
        else:
            cls = sigmoid_focal_loss(logits, lt["cls_target"], self.focal_alpha, self.focal_gamma, "sum")
        cls = cls / lt["num_fg"]
        box = F.l1_loss(regression, lt["box_target"], reduction="sum") / lt["num_fg"]
        return {"classification": cls, "bbox_regression": box}

    # -- forward ----------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self,
        images: torch.Tensor | None = None,
        targets: list[dict] | None = None,
        features: list[torch.Tensor] | None = None,
        image_size: tuple[int, int] | None = None,
    ):
        """Training: losses (averaged over exits, deep supervision). Eval: detections per image.

        images: (N, 3, H, W) normalised, or None with `features` ([C3, C4, C5]) and `image_size`.
        Detections are in the input's pixel coordinates: {'boxes' xyxy, 'scores', 'labels'}.
        """
        if images is not None:
            image_size = (images.shape[-2], images.shape[-1])
        if image_size is None:
            raise ValueError("image_size is required when features are passed")
        pyramids = self.pyramids(images, features)
        heads = self.heads if (self.training or not self.anytime) else [self.heads[self.eval_exit]]
        outs = [head(p) for head, p in zip(heads, pyramids)]
        anchors = self.anchors(image_size, pyramids[0])
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode")
            lt = self.loss_targets(anchors, targets, self.match(anchors, targets))
            losses = [self.loss(o, lt) for o in outs]
            return {k: sum(lo[k] for lo in losses) / len(losses) for k in losses[0]}
        return self.detect(outs[0], anchors, pyramids[0], image_size)

    def detect(self, out: dict, anchors: torch.Tensor, levels: list[torch.Tensor], image_size: tuple[int, int]):
        """torchvision's `postprocess_detections` (per level: score threshold, top-k, decode,
        clip; per image: class-wise NMS, the best `detections_per_img`), batched over images.

        torchvision loops over images and levels (~8 small ops each: 1,500 iterations for
        300 images); here threshold, top-k and decoding run once per level for the batch,
        and only NMS runs per image, on the same boxes in the same order (same detections:
        tested against `postprocess_detections`; only exactly equal scores, e.g. a saturated
        sigmoid's 1.0, may come in another order, as top-k leaves ties unordered).
        out: {'cls_logits': (N, HWA, K), 'bbox_regression': (N, HWA, 4)}; anchors (HWA, 4);
        levels give each level's H x W.
        """
        n, _, k = out["cls_logits"].shape
        hw = [x.shape[-2] * x.shape[-1] for x in levels]
        per_level = [h * anchors.shape[0] // sum(hw) for h in hw]  # HW_l * A
        boxes, scores, labels = [], [], []
        for logits, deltas, level_anchors in zip(
            out["cls_logits"].float().split(per_level, 1),
            out["bbox_regression"].float().split(per_level, 1),
            anchors.split(per_level),
        ):
            s = torch.sigmoid(logits).flatten(1)  # (N, HW_l * A * K)
            s = s.masked_fill(s <= self.score_thresh, -1.0)  # below threshold: after every kept score
            top, idx = s.topk(min(self.topk_candidates, s.shape[1]), dim=1)  # (N, k_l), descending
            anchor_idx = torch.div(idx, k, rounding_mode="floor")
            d = deltas.gather(1, anchor_idx.unsqueeze(-1).expand(-1, -1, 4))
            b = self.box_coder.decode_single(d.reshape(-1, 4), level_anchors[anchor_idx.flatten()])
            boxes.append(clip_boxes_to_image(b.view(n, -1, 4), image_size))
            scores.append(top)
            labels.append(idx % k)
        boxes, scores, labels = torch.cat(boxes, 1), torch.cat(scores, 1), torch.cat(labels, 1)
        keep = scores > self.score_thresh  # (N, sum k_l): a prefix of each level's top-k
        counts = keep.sum(1).tolist()
        detections = []
        for b, s, c in zip(boxes[keep].split(counts), scores[keep].split(counts), labels[keep].split(counts)):
            kept = batched_nms(b, s, c, self.nms_thresh)[: self.detections_per_img]
            detections.append({"boxes": b[kept], "scores": s[kept], "labels": c[kept]})
        return detections


def build_detector(
    genotype: Genotype,
    backbone: nn.Module | None,
    in_channels: Sequence[int],
    num_classes: int,
    *,
    channels: int,
    repeats: int,
    separable: bool = False,
    dropblock_prob: float = 0.0,
    dropblock_size: int = 3,
    anytime: bool = False,
    head_convs: int = 4,
    anchor_scale: float = 4.0,
    anchor_octaves: int = 3,
    anchor_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    init_seed: int | None = None,
    **detector_kwargs: object,
) -> NASFPNRetinaNet:
    """Build the detector. With `init_seed`, the neck and the heads are initialised from
    their own seeds, so the heads start identical for every genotype (common random numbers)."""
    anchor_gen = make_anchor_generator(anchor_scale, anchor_octaves, anchor_ratios)
    if init_seed is not None:
        torch.manual_seed(init_seed * 1000 + 1)
    neck = build_neck(genotype, in_channels, channels, repeats, separable, dropblock_prob, dropblock_size)
    if init_seed is not None:
        torch.manual_seed(init_seed * 1000 + 2)
    num_anchors = anchor_gen.num_anchors_per_location()[0]
    heads = [make_head(channels, num_anchors, num_classes, head_convs) for _ in range(repeats if anytime else 1)]
    return NASFPNRetinaNet(backbone, neck, heads, num_classes, anchor_gen, **detector_kwargs)  # type: ignore[arg-type]
