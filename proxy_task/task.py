"""`ProxyTask`: the proxy task of one config on one device, built once per worker process.

It owns what every trial of a search shares: the letterboxed data, the frozen backbone and
the features it gives for every image, the anchor assignments the trials fill in, and the
indexed ground truth of the reward images. Each is built on first use and kept for the life
of the object, so a worker that keeps its `ProxyTask` (search/trainable.py) pays for them
once. `train(genotype, seed)` is one trial and returns `TrialMetrics`.

Two modes, chosen by `config.freeze_backbone`:
* frozen (CPU proxy): the dataset's backbone is trained once and frozen; a trial trains the
  pyramid and heads on cached C3..C5 features (flip augmentation from cached flipped
  features; no scale jitter: features are cached at one scale);
* end-to-end (paper proxy, retraining): backbone, pyramid and heads from images with the
  paper's augmentation (flip, scale jitter) through a DataLoader.
Common random numbers: `seed` fixes the head initialisation, the pyramid initialisation and
the data order, independently of the genotype, so every architecture sees the same ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from proxy_task.backbones import Backbone
from proxy_task.config import TRIAL_FIELDS, ProxyTaskConfig
from proxy_task.data import ProxyData, load_proxy_data
from proxy_task.evaluator import GroundTruth
from proxy_task.features import CachedFeatures, extract_features, pretrain_on_cpu
from proxy_task.metrics import TrialMetrics
from proxy_task.trainer import (
    TrainLoop,
    build_trial_model,
    cost_metrics,
    evaluate,
    feature_batches,
    image_batches,
    image_loader,
    make_optimizer,
    resolve_device,
    write_outputs,
)
from space.genotype import Genotype

EpochCallback = Callable[[int, dict], None]


class ProxyTask:
    """The proxy task `config` on `device` ('auto': CUDA when available, else CPU)."""

    def __init__(self, config: ProxyTaskConfig, device: str | torch.device = "auto") -> None:
        self.config = config
        self.device = resolve_device(device) if isinstance(device, str) else device
        self._data: ProxyData | None = None
        self._frozen: tuple[Backbone, CachedFeatures] | None = None
        self._ground_truth: GroundTruth | None = None

    @property
    def data(self) -> ProxyData:
        """Train and reward images (letterboxed on first use, cached on disk).

        Raises proxy_task.data.DataError, FileNotFoundError: unusable data."""
        if self._data is None:
            self._data = load_proxy_data(self.config)
        return self._data

    @property
    def frozen(self) -> tuple[Backbone, CachedFeatures]:
        """Frozen mode: the backbone (pre-trained on first use) and every image's features."""
        if self._frozen is None:
            self._frozen = extract_features(self.config, self.data, self.device)
        return self._frozen

    @property
    def ground_truth(self) -> GroundTruth:
        """The reward images' COCO ground truth, indexed once."""
        if self._ground_truth is None:
            self._ground_truth = GroundTruth(self.data.ground_truth)
        return self._ground_truth

    def derive(self, **changes: object) -> ProxyTask:
        """The task with other trial settings (`TRIAL_FIELDS`: epochs, lr, schedule, repeats,
        ...) that shares this one's data, frozen features, anchor assignments and ground truth
        (a longer schedule of a study, a variant of a benchmark).

        Raises ValueError for a setting outside TRIAL_FIELDS, or eval_batch_size (features
        are extracted in batches of it)."""
        bad = sorted(set(changes) - set(TRIAL_FIELDS) | set(changes) & {"eval_batch_size"})
        if bad:
            raise ValueError(f"derive() changes trial settings only, not {bad}")
        other = ProxyTask(self.config.replace(**changes), self.device)
        other._data, other._ground_truth = self.data, self.ground_truth
        if self.config.freeze_backbone and other.config.freeze_backbone:
            other._frozen = self.frozen
        return other

    def prepare(self) -> ProxyTask:
        """Build the data and (frozen mode) the shared backbone now, before parallel trials
        start: the backbone is pre-trained on the CPU with the trials' thread count, the bits
        any worker would make.

        Raises proxy_task.data.DataError, FileNotFoundError, ValueError: unusable data."""
        if self.config.freeze_backbone:
            pretrain_on_cpu(self.config, self.data)
        else:
            _ = self.data
        return self

    def train(
        self,
        genotype: Genotype,
        seed: int,
        on_epoch: EpochCallback | None = None,
        out_dir: Path | str | None = None,
        progress: bool = False,
    ) -> TrialMetrics:
        """Train `genotype` with `seed` and score it on the reward images.

        `on_epoch(epoch, {'epoch', 'loss', 'lr', 'elapsed_s'[, AP keys]})` is called after
        every epoch (AP only when `config.eval_every` divides the epoch; 0: never before the
        end). `out_dir`: also write checkpoint.pt and metrics.json there.

        Raises:
            NonFiniteLossError: the loss became NaN/inf.
            proxy_task.data.DataError, FileNotFoundError: unusable data.
        """
        start, cpu_start = time.perf_counter(), time.process_time()
        cfg, dev = self.config, self.device
        if cfg.num_threads > 0 and dev.type == "cpu":
            torch.set_num_threads(cfg.num_threads)
        data = self.data
        backbone, feats = self.frozen if cfg.freeze_backbone else (None, None)
        model = build_trial_model(genotype, cfg, data.num_classes, backbone, feats, seed, dev)
        opt = make_optimizer(model, cfg)
        # the order of these draws is part of the reward: data order, flips, augmentation
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        loader = None if feats is not None else image_loader(data, cfg, gen, dev)
        steps_per_epoch = max(1, len(data.train) // cfg.batch_size)
        total_steps = max(1, round(cfg.epochs * steps_per_epoch))
        n_epochs = math.ceil(total_steps / steps_per_epoch)
        loop = TrainLoop(model, opt, cfg, dev, steps_per_epoch, total_steps, progress)
        eval_features = feats.eval if feats is not None else None
        model.train()
        try:
            for epoch in range(n_epochs):
                batches = (
                    feature_batches(feats, data, cfg, gen, dev)
                    if feats is not None
                    else image_batches(loader, dev, cfg.channels_last)
                )
                report = {**loop.epoch(epoch, batches), "elapsed_s": time.perf_counter() - start}
                if cfg.eval_every and (epoch + 1) % cfg.eval_every == 0 and epoch + 1 < n_epochs:
                    report.update(evaluate(model, data, self.ground_truth, cfg, dev, eval_features))
                if on_epoch is not None:
                    on_epoch(epoch + 1, report)
        finally:
            loop.bar.close()
        train_time = time.perf_counter() - start
        eval_start = time.perf_counter()
        ap = evaluate(model, data, self.ground_truth, cfg, dev, eval_features)
        eval_time = time.perf_counter() - eval_start
        if backbone is not None:  # attach the frozen backbone: the whole detector for cost, latency, checkpoint
            model.backbone = backbone
        cost = cost_metrics(model, data, cfg, dev)
        metrics = TrialMetrics(
            **ap,
            **cost,
            train_time_s=train_time,
            eval_time_s=eval_time,
            total_time_s=time.perf_counter() - start,
            total_cpu_s=time.process_time() - cpu_start,
            steps=loop.step,
            final_loss=loop.loss_value,
            epochs=float(cfg.epochs),
            seed=int(seed),
            train_images=len(data.train),
            eval_images=len(data.eval),
            skipped_images=data.train.skipped + data.eval.skipped,
            device=str(dev),
        )
        if out_dir is not None:
            write_outputs(Path(out_dir), model, genotype, cfg, metrics.as_dict())
        return metrics


def train_and_evaluate(
    genotype: Genotype,
    task: ProxyTaskConfig,
    seed: int,
    device: str = "auto",
    on_epoch: EpochCallback | None = None,
    out_dir: Path | str | None = None,
    progress: bool = False,
) -> TrialMetrics:
    """One trial on a fresh `ProxyTask(task, device)` (a CLI's single training). Code that
    trains several genotypes keeps one `ProxyTask` and calls its `train`."""
    return ProxyTask(task, device).train(genotype, seed, on_epoch, out_dir, progress)


__all__ = ["EpochCallback", "ProxyTask", "train_and_evaluate"]
