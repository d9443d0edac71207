"""The pieces of one proxy-task training, with explicit arguments: the learning-rate
schedule, batches from cached features or from images, the detector a trial trains, the
optimisation loop, COCO evaluation and the cost metrics. `ProxyTask.train`
(proxy_task/task.py) puts them together."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

import space
from proxy_task.augment import make_augmentation, normalize
from proxy_task.backbones import build_backbone
from proxy_task.config import ProxyTaskConfig
from proxy_task.data import ProxyData
from proxy_task.detector import NASFPNRetinaNet, build_detector
from proxy_task.evaluator import GroundTruth, coco_box_ap, to_coco_detections
from proxy_task.features import CachedFeatures
from proxy_task.loaders import AugmentedImages, collate
from space.atomic import atomic_path
from space.complexity import count_macs, count_params
from space.genotype import Genotype


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the trial cannot give a reward."""

    def __init__(self, step: int, value: float):
        super().__init__(f"non-finite loss {value} at step {step}")
        self.step = step
        self.value = value


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda if available else cpu; anything else as torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def learning_rate(cfg: ProxyTaskConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Linear warm-up from warmup_factor, then step decay at the milestones or cosine to 0."""
    base = cfg.scaled_lr
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return base * (cfg.warmup_factor + (1 - cfg.warmup_factor) * step / warmup)
    if cfg.schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))
    epoch = step / steps_per_epoch
    return base * cfg.lr_decay ** sum(epoch >= m for m in cfg.lr_milestones)


def feature_batches(
    feats: CachedFeatures, data: ProxyData, cfg: ProxyTaskConfig, gen: torch.Generator, device: torch.device
) -> Iterator[tuple[dict, list[dict]]]:
    """One epoch of (forward kwargs, targets) from cached features, with random flips."""
    n = len(data.train)
    order = torch.randperm(n, generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5 if cfg.hflip else torch.zeros(n, dtype=torch.bool)
    for b in range(n // cfg.batch_size):
        idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        f = flips[idx].to(device).view(-1, 1, 1, 1)
        x = [
            torch.where(f, ff[idx.to(ff.device)], fx[idx.to(fx.device)])
            for fx, ff in zip(feats.train, feats.train_flipped or feats.train)
        ]
        targets = [
            {
                "boxes": (feats.train_boxes_flipped[i] if flips[i] else data.train.boxes[i]).to(device),
                "labels": data.train.labels[i].to(device),
                "key": (i, bool(flips[i])),  # names the boxes: anchor assignments are cached by it
            }
            for i in idx.tolist()
        ]
        yield {"features": x, "image_size": (data.image_size, data.image_size)}, targets


def image_batches(loader: DataLoader, device: torch.device, channels_last: bool) -> Iterator[tuple[dict, list[dict]]]:
    for images, targets in loader:
        x = normalize(images.to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield {"images": x}, [{k: v.to(device) for k, v in t.items()} for t in targets]


def _autocast(device: torch.device, cfg: ProxyTaskConfig):
    # bf16 autocast is much slower than fp32 on CPUs without bf16 units: CUDA only
    enabled = device.type == "cuda" and cfg.amp == "auto"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def evaluate(
    model: NASFPNRetinaNet,
    data: ProxyData,
    ground_truth: GroundTruth,
    cfg: ProxyTaskConfig,
    device: torch.device,
    features: list[torch.Tensor] | None = None,
) -> dict[str, float]:
    """COCO box AP (AP_KEYS) of `model` on the reward images, whose indexed ground truth is
    `ground_truth` (cached features if given)."""
    was = model.training
    model.eval()
    outputs = []
    size = (data.image_size, data.image_size)
    for start in range(0, len(data.eval), cfg.eval_batch_size):
        stop = min(start + cfg.eval_batch_size, len(data.eval))
        with _autocast(device, cfg):
            if features is not None:
                outputs += model(features=[f[start:stop] for f in features], image_size=size)
            else:
                images, _ = data.eval.batch(range(start, stop))
                outputs += model(normalize(images.to(device)))
    model.train(was)
    dets = to_coco_detections(data.eval.image_ids, outputs, data.eval.scales, data.category_ids)
    return coco_box_ap(ground_truth, dets)


@torch.no_grad()
def measure_latency(model: NASFPNRetinaNet, data: ProxyData, cfg: ProxyTaskConfig, device: torch.device) -> float:
    """Milliseconds per image, batch 1, backbone + pyramid + head + postprocess."""
    model.eval()
    n = max(1, min(cfg.latency_images, len(data.eval)))
    images = [normalize(data.eval.batch([k])[0].to(device)) for k in range(n)]
    with _autocast(device, cfg):
        model(images[0])  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for x in images:
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - start) / n


def write_outputs(out_dir: Path, model: nn.Module, genotype: Genotype, cfg: ProxyTaskConfig, metrics: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = {"model": model.state_dict(), "genotype": space.dumps(genotype), "config": cfg.to_dict(), "metrics": metrics}
    for name, write in (
        ("checkpoint.pt", lambda p: torch.save(ckpt, p)),
        ("metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2))),
    ):
        with atomic_path(out_dir / name) as tmp:  # never half-written
            write(tmp)


def build_trial_model(
    genotype: Genotype,
    cfg: ProxyTaskConfig,
    num_classes: int,
    backbone: nn.Module | None,
    feats: CachedFeatures | None,
    seed: int,
    device: torch.device,
) -> NASFPNRetinaNet:
    """The detector a trial trains, on `device` in `cfg`'s memory format: on cached features
    (frozen mode, `feats` given; anchor assignments cached in `feats.matches`) or end to end;
    heads start from the shared pre-trained head when `cfg.pretrained_head`."""
    torch.manual_seed(seed)
    if backbone is None:
        backbone = build_backbone(cfg.backbone, cfg.backbone_width, cfg.backbone_weights)
    model = build_detector(
        genotype,
        None if feats is not None else backbone,
        backbone.out_channels,
        num_classes,
        channels=cfg.channels,
        repeats=cfg.repeats,
        separable=cfg.separable,
        dropblock_prob=cfg.dropblock_prob,
        dropblock_size=cfg.dropblock_size,
        anytime=cfg.anytime,
        head_convs=cfg.head_convs,
        anchor_scale=cfg.anchor_scale,
        anchor_octaves=cfg.anchor_octaves,
        anchor_ratios=cfg.anchor_ratios,
        init_seed=seed,
        focal_alpha=cfg.focal_alpha,
        focal_gamma=cfg.focal_gamma,
        focal_loss=cfg.focal_loss,
        score_thresh=cfg.score_thresh,
        nms_thresh=cfg.nms_thresh,
        detections_per_img=cfg.detections_per_img,
        eval_exit=cfg.eval_exit,
    )
    if feats is not None and cfg.pretrained_head:
        for head in model.heads:  # the same trained start for every genotype
            head.load_state_dict(feats.head_state)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if feats is not None:
        model.match_cache = feats.matches  # shared by the trials of this ProxyTask
    return model


def make_optimizer(model: nn.Module, cfg: ProxyTaskConfig) -> torch.optim.SGD:
    """SGD with momentum; weight decay on weights only (not on BN parameters and biases).

    `foreach`: one multi-tensor kernel per update op instead of a loop over the ~140
    tensors (on CPU too, where torch defaults to the loop): same values bit for bit, 0.4 ms
    less per step with the clipping below."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.scaled_lr,
        momentum=cfg.momentum,
        foreach=True,
    )


def image_loader(data: ProxyData, cfg: ProxyTaskConfig, gen: torch.Generator, dev: torch.device) -> DataLoader:
    """End-to-end mode: augmented training images (flip, scale jitter), shuffled by `gen`."""
    dataset = AugmentedImages(data.train, make_augmentation(cfg.image_size, cfg.scale_jitter, cfg.hflip))
    return DataLoader(
        dataset,
        cfg.batch_size,
        shuffle=True,
        generator=gen,
        num_workers=cfg.num_workers,
        collate_fn=collate,
        drop_last=True,
        pin_memory=dev.type == "cuda",
        persistent_workers=cfg.num_workers > 0,
    )


class TrainLoop:
    """The optimisation steps of a trial: lr schedule, forward, finite-loss check, backward,
    gradient clipping, SGD step; counts steps across epochs and stops at `total_steps`."""

    def __init__(
        self,
        model: NASFPNRetinaNet,
        opt: torch.optim.Optimizer,
        cfg: ProxyTaskConfig,
        dev: torch.device,
        steps_per_epoch: int,
        total_steps: int,
        progress: bool,
    ) -> None:
        self.model, self.opt, self.cfg, self.dev = model, opt, cfg, dev
        # model order (not the optimizer's groups): the clipping norm's summation order
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps
        self.step, self.loss_value, self.lr = 0, float("nan"), cfg.scaled_lr
        self.bar = tqdm(total=total_steps, disable=not progress, desc="train", unit="step", dynamic_ncols=True)

    def epoch(self, epoch: int, batches: Iterator[tuple[dict, list[dict]]]) -> dict:
        """Train on `batches` (one epoch); returns {'epoch', 'loss' (mean), 'lr' (last)}."""
        cfg, dev = self.cfg, self.dev
        loss_sum, loss_n = 0.0, 0
        for kwargs, targets in batches:
            if self.step >= self.total_steps:
                break
            self.lr = learning_rate(cfg, self.step, self.steps_per_epoch, self.total_steps)
            for g in self.opt.param_groups:
                g["lr"] = self.lr
            with _autocast(dev, cfg):
                losses = self.model(targets=targets, **kwargs)
            loss = losses["classification"] + losses["bbox_regression"]
            self.loss_value = float(loss.detach())
            if not math.isfinite(self.loss_value):
                raise NonFiniteLossError(self.step, self.loss_value)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.params, cfg.grad_clip, foreach=True)  # exact, as SGD's
            self.opt.step()
            loss_sum, loss_n, self.step = loss_sum + self.loss_value, loss_n + 1, self.step + 1
            self.bar.update(1)
            self.bar.set_postfix(epoch=epoch + 1, loss=f"{self.loss_value:.3f}", lr=f"{self.lr:.4f}")
        return {"epoch": epoch + 1, "loss": loss_sum / max(1, loss_n), "lr": self.lr}


def cost_metrics(model: NASFPNRetinaNet, data: ProxyData, cfg: ProxyTaskConfig, dev: torch.device) -> dict:
    """params (whole detector), pyramid_params, macs (one forward of a proxy image) and
    eval_latency_ms of the trained model."""
    example = normalize(data.eval.batch([0])[0].to(dev))
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "pyramid_params": count_params(model.neck),
        "macs": count_macs(model, [example]),
        "eval_latency_ms": measure_latency(model, data, cfg, dev),
    }
