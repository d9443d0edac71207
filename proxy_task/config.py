"""The proxy task as one typed dataclass, and the presets the Hydra entry points compose.

`ProxyTaskConfig()` is the `synthetic` preset: a CPU-sized proxy on the built-in dataset,
tuned so the reward separates architectures (see docs/proxy_task.md). `bccd`, the search's
default, is the same model on the shipped real images (docs/proxy_bccd.md); `*_retrain` are
the longer trainings, scored on images no search rewarded. `coco_paper` is exactly the
paper's proxy (docs/proxy_task.md, "The paper's proxy task"); `coco_retrain` the paper's full
training of a found model. `tiny_config()` is a trial of a few seconds for integration tests.

Config is turned into objects only at the edge: `ProxyTask` reads this dataclass; the
modules it builds take plain arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

DATASETS = ("synthetic", "coco", "voc")
# the Pascal VOC folder shipped with the project (BCCD, MIT license: data/bccd/LICENSE)
BCCD_ROOT = str(Path(__file__).resolve().parents[1] / "data" / "bccd" / "BCCD")
BACKBONES = ("resnet10", "resnet18", "resnet50", "mobilenet_v2")
SCHEDULES = ("step", "cosine")
FOCAL_LOSSES = ("fused", "torchvision")

# Which settings determine what, said once here (tests/test_proxy_task.py checks that every
# field is in exactly one section). DATA_FIELDS fix the images, boxes and resolution a trial
# sees (DATA_PATHS only say where they are); PRETRAIN_FIELDS, with the data, fix the frozen
# backbone trained once per dataset (its augmentation included); TRIAL_FIELDS fix how one
# genotype is trained and scored; RUNTIME_FIELDS say where caches go, how many threads and
# loader workers a trial has and how often it reports.
DATA_PATHS = ("data_root", "train_json", "train_images", "eval_json", "eval_images")
DATA_FIELDS = ("dataset", *DATA_PATHS, "train_split", "eval_split", "holdout_images", "split_seed")
DATA_FIELDS += ("train_subsample", "eval_subsample", "synthetic_images", "synthetic_seed", "synthetic_image_size")
DATA_FIELDS += ("image_size",)
PRETRAIN_FIELDS = ("backbone", "backbone_width", "backbone_weights", "backbone_pretrain_steps")
PRETRAIN_FIELDS += ("backbone_pretrain_lr", "channels", "head_convs", "anchor_scale", "anchor_octaves")
PRETRAIN_FIELDS += ("anchor_ratios", "focal_gamma", "batch_size", "scale_jitter", "hflip")
TRIAL_FIELDS = ("name", "freeze_backbone", "pretrained_head", "repeats", "separable", "dropblock_prob")
TRIAL_FIELDS += ("dropblock_size", "focal_alpha", "focal_loss", "anytime", "eval_exit", "epochs", "lr")
TRIAL_FIELDS += ("lr_reference_batch", "schedule", "lr_milestones", "lr_decay", "warmup_epochs", "warmup_factor")
TRIAL_FIELDS += ("momentum", "weight_decay", "grad_clip", "channels_last", "amp", "eval_batch_size")
TRIAL_FIELDS += ("score_thresh", "nms_thresh", "detections_per_img")
RUNTIME_FIELDS = ("cache_dir", "num_threads", "num_workers", "eval_every", "latency_images")
# The fields that never change a trial's reward: where the data and caches are, how many
# threads and loader workers, how often progress is reported. A run may be resumed with other
# values (another machine, another clone); every other field is a reward setting, and a
# search resumed with another value of one is refused (one record, one task).
MACHINE_FIELDS = DATA_PATHS + RUNTIME_FIELDS
# ... except these, when the reward has a latency term (the MnasNet-style objective)
LATENCY_FIELDS = ("num_threads", "latency_images")
# Reward settings added after records existed, with the value those records were made with:
# a stored config without the field was made with that value.
ADDED_REWARD_FIELDS = {"focal_loss": "torchvision"}


def reward_settings(task: dict, latency: bool = False) -> dict:
    """The settings of a stored proxy_task dict that change a trial's reward: all but the
    machine fields (threads and latency_images count when the objective has a latency term),
    with the values older records were made with for fields added since."""
    free = {k for k in MACHINE_FIELDS if not (latency and k in LATENCY_FIELDS)}
    return {k: v for k, v in {**ADDED_REWARD_FIELDS, **task}.items() if k not in free}


@dataclass
class ProxyTaskConfig:
    """Everything a trial needs besides the genotype, the seed and the device.

    Defaults are the `synthetic` preset. Epoch-based fields (`epochs`, `lr_milestones`,
    `warmup_epochs`) are in passes over the training set.
    """

    name: str = "synthetic"
    # -- data ------------------------------------------------------------------------
    # "synthetic" (built-in, generated and cached), "coco" (COCO JSON) or "voc" (Pascal VOC xml)
    dataset: str = "synthetic"
    # coco: the root of annotations/instances_<split>.json and <split>/ images;
    # voc: the folder of Annotations/, JPEGImages/ and ImageSets/Main/<split>.txt
    data_root: str = ""
    cache_dir: str = ""  # "" = $NASFPN_CACHE or ~/.cache/nasfpn
    train_split: str = ""  # "" = train2017 (coco) or train (voc)
    # "proxy": images held out of the train split; "val": val2017 (coco) or val (voc);
    # any other name: that split (instances_<name>.json, or ImageSets/Main/<name>.txt)
    eval_split: str = "proxy"
    # any layout (coco): a COCO JSON and the folder its file_names are relative to, for the
    # train and the eval split; they replace data_root's layout when set
    train_json: str = ""
    train_images: str = ""
    eval_json: str = ""
    eval_images: str = ""
    holdout_images: int = 300  # size of the proxy split held out of the training images (paper: 7,392)
    split_seed: int = 0  # the proxy split is a pure function of this seed and the image ids
    train_subsample: int = 0  # > 0: train on this many images (deterministic subset)
    eval_subsample: int = 0  # > 0: evaluate on this many held-out images
    synthetic_images: int = 1500  # built-in train2017 size (proxy split included); val2017 gets holdout_images
    synthetic_seed: int = 0
    synthetic_image_size: int = 128
    image_size: int = 128  # square proxy resolution; images are letterboxed to it
    scale_jitter: tuple[float, float] = (0.8, 1.2)
    hflip: bool = True
    # -- model -----------------------------------------------------------------------
    backbone: str = "resnet10"
    backbone_width: float = 0.25  # multiplies the ResNet stage widths (64, 128, 256, 512)
    backbone_weights: str = ""  # local file read with torch.load(weights_only=True); "" = random init
    freeze_backbone: bool = True  # train the backbone once per dataset, freeze it, cache its features
    backbone_pretrain_steps: int = 1200
    backbone_pretrain_lr: float = 0.08
    pretrained_head: bool = True  # frozen mode: start every trial's heads from the pre-training head
    repeats: int = 3  # N of N@C
    channels: int = 32  # C of N@C
    separable: bool = False  # NAS-FPNLite: depthwise-separable post-op convs
    dropblock_prob: float = 0.0
    dropblock_size: int = 3
    head_convs: int = 2  # conv-BN-ReLU blocks per head branch (paper and torchvision: 4)
    anchor_scale: float = 1.0  # anchor size = anchor_scale * stride (paper: 4)
    anchor_octaves: int = 3
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    focal_gamma: float = 1.5
    focal_alpha: float = 0.25
    # "fused": one autograd node with the gradient in closed form (steps level with
    # torchvision's loss in a trial, same ranking: docs/proxy_task.md); "torchvision":
    # torchvision's op chain, the rewards of the proxy before the fused loss bit for bit
    focal_loss: str = "fused"
    anytime: bool = False  # a head after every repeat, trained with deep supervision
    eval_exit: int = -1  # which repeat's head is evaluated (anytime); -1 = the last
    # -- training --------------------------------------------------------------------
    epochs: float = 3.0
    batch_size: int = 16
    lr: float = 0.32  # at `lr_reference_batch`, scaled linearly to `batch_size`
    lr_reference_batch: int = 64
    schedule: str = "cosine"  # "step" (paper) or "cosine"
    lr_milestones: tuple[float, ...] = (8.0,)
    lr_decay: float = 0.1
    warmup_epochs: float = 0.5
    warmup_factor: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float = 10.0  # max global gradient norm; 0 = off
    channels_last: bool = True  # NHWC convolutions: faster trials on CPU, same ranking (measured in docs/proxy_task.md)
    amp: str = "auto"  # "auto": bf16 autocast on CUDA only; "off"
    num_threads: int = 1  # torch threads on CPU = the CPUs the trial was given; 0 = leave as is
    num_workers: int = 0  # DataLoader workers (end-to-end mode)
    # -- evaluation ------------------------------------------------------------------
    eval_batch_size: int = 32
    eval_every: int = 0  # > 0: also report AP to on_epoch every this many epochs
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_img: int = 100
    latency_images: int = 8  # images timed for eval_latency_ms

    def __post_init__(self) -> None:
        # Hydra/OmegaConf hand back lists: keep tuples so the config stays hashable.
        for f in ("scale_jitter", "anchor_ratios", "lr_milestones"):
            setattr(self, f, tuple(float(x) for x in getattr(self, f)))
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset={self.dataset!r}, expected one of {list(DATASETS)}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone={self.backbone!r}, expected one of {list(BACKBONES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}, expected one of {list(SCHEDULES)}")
        if self.focal_loss not in FOCAL_LOSSES:
            raise ValueError(f"focal_loss={self.focal_loss!r}, expected one of {list(FOCAL_LOSSES)}")
        if not self.eval_split or not all(c.isalnum() or c in "_-." for c in self.eval_split):
            raise ValueError(f"eval_split={self.eval_split!r}, expected 'proxy', 'val' or a split name")
        if (self.train_json or self.eval_json) and self.dataset != "coco":
            raise ValueError(f"train_json/eval_json need dataset=coco, not dataset={self.dataset}")
        for j, im in (("train_json", "train_images"), ("eval_json", "eval_images")):
            if bool(getattr(self, j)) != bool(getattr(self, im)):
                raise ValueError(f"{j} and {im} go together: the JSON and the folder of its images")
        if self.image_size < 32 or self.batch_size < 1 or self.repeats < 1 or self.channels < 1:
            raise ValueError("image_size >= 32, batch_size >= 1, repeats >= 1 and channels >= 1 are required")
        positive = ("epochs", "lr", "lr_reference_batch", "eval_batch_size", "synthetic_images", "latency_images")
        non_negative = ("holdout_images", "train_subsample", "eval_subsample", "warmup_epochs", "weight_decay")
        non_negative += ("grad_clip", "num_threads", "num_workers", "eval_every", "backbone_pretrain_steps")
        bad = [f"proxy_task.{f}={getattr(self, f)} (must be > 0)" for f in positive if not getattr(self, f) > 0]
        bad += [f"proxy_task.{f}={getattr(self, f)} (must be >= 0)" for f in non_negative if not getattr(self, f) >= 0]
        if not 0 < self.backbone_width <= 4:
            bad.append(f"proxy_task.backbone_width={self.backbone_width} (must be in (0, 4])")
        if bad:
            raise ValueError(", ".join(bad))
        if not (-self.repeats <= self.eval_exit < self.repeats):
            raise ValueError(f"eval_exit={self.eval_exit} is outside the {self.repeats} repeats")

    @property
    def scaled_lr(self) -> float:
        """The learning rate at this batch size (linear scaling rule)."""
        return self.lr * self.batch_size / self.lr_reference_batch

    def replace(self, **changes: object) -> ProxyTaskConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict (JSON-able, what Ray workers receive); `ProxyTaskConfig(**d)` inverts it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def synthetic_config() -> ProxyTaskConfig:
    """The default CPU proxy on the built-in dataset."""
    return ProxyTaskConfig()


def coco_paper_config() -> ProxyTaskConfig:
    """The paper's proxy: R-10 from scratch, 512x512, 3@256, 10 epochs, lr 0.08 at batch 64,
    x0.1 at epoch 8, reward on 7,392 images held out of train2017."""
    return ProxyTaskConfig(
        name="coco_paper",
        dataset="coco",
        image_size=512,
        backbone="resnet10",
        backbone_width=1.0,
        freeze_backbone=False,
        repeats=3,
        channels=256,
        head_convs=4,
        anchor_scale=4.0,
        epochs=10.0,
        batch_size=64,
        lr=0.08,
        schedule="step",
        lr_milestones=(8.0,),
        warmup_epochs=0.1,
        grad_clip=10.0,
        eval_split="proxy",
        holdout_images=7392,
        num_workers=8,
        eval_batch_size=32,
    )


def coco_retrain_config() -> ProxyTaskConfig:
    """Full training of a found model (paper): R-50, 640, 7@256, 50 epochs, x0.1 at 30 and 40."""
    return coco_paper_config().replace(
        name="coco_retrain",
        image_size=640,
        backbone="resnet50",
        repeats=7,
        channels=256,
        epochs=50.0,
        lr_milestones=(30.0, 40.0),
        eval_split="val",
        holdout_images=0,
    )


def synthetic_retrain_config() -> ProxyTaskConfig:
    """Retraining on the built-in data, the paper's protocol scaled down: 3x the proxy's
    epochs, trained on all of train2017 (the proxy split included) and scored on val2017,
    images the search never saw, so a genotype picked for its proxy AP gets no head start."""
    return synthetic_config().replace(name="synthetic_retrain", epochs=9.0, eval_split="val")


def bccd_config() -> ProxyTaskConfig:
    """Real images: BCCD (blood cells, 640x480 microscope images, 3 classes), shipped in
    data/bccd. Trained on its train split (205 images), rewarded on val (87); the backbone is
    pre-trained on train only. 256 px and anchors 1.5 x stride from the measured box sizes
    (docs/proxy_bccd.md): platelets fall on P3, red cells on P4-P5, white cells on P5-P6."""
    return ProxyTaskConfig(
        name="bccd",
        dataset="voc",
        data_root=BCCD_ROOT,
        train_split="train",
        eval_split="val",
        image_size=256,
        anchor_scale=1.5,
        epochs=8.0,
        backbone_pretrain_steps=1200,
    )


def bccd_retrain_config() -> ProxyTaskConfig:
    """Retraining on BCCD: 3x the proxy's epochs on train + val, scored on test (72 images
    no search ever rewarded)."""
    return bccd_config().replace(name="bccd_retrain", train_split="trainval", eval_split="test", epochs=24.0)


def tiny_config() -> ProxyTaskConfig:
    """A whole trial in a few seconds on a CPU: for integration tests of the search."""
    return ProxyTaskConfig(
        name="tiny",
        synthetic_images=48,
        holdout_images=16,
        synthetic_image_size=64,
        image_size=64,
        backbone_width=0.125,
        backbone_pretrain_steps=20,
        repeats=1,
        channels=16,
        epochs=1.0,
        batch_size=8,
        eval_batch_size=16,
        latency_images=2,
    )


PRESETS = {
    "synthetic": synthetic_config,
    "coco_paper": coco_paper_config,
    "coco_retrain": coco_retrain_config,
    "synthetic_retrain": synthetic_retrain_config,
    "bccd": bccd_config,
    "bccd_retrain": bccd_retrain_config,
    "tiny": tiny_config,
}


def preset(name: str) -> ProxyTaskConfig:
    """A preset by name. Raises ValueError for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown proxy_task preset {name!r}, expected one of {sorted(PRESETS)}")
    return PRESETS[name]()


def register_configs(cs: object) -> None:
    """Store every preset under the Hydra group `proxy_task` (names as in PRESETS)."""
    for name, make in PRESETS.items():
        cs.store(group="proxy_task", name=name, node=make())  # type: ignore[attr-defined]


__all__ = [
    "ADDED_REWARD_FIELDS",
    "DATA_FIELDS",
    "LATENCY_FIELDS",
    "MACHINE_FIELDS",
    "PRESETS",
    "PRETRAIN_FIELDS",
    "RUNTIME_FIELDS",
    "TRIAL_FIELDS",
    "ProxyTaskConfig",
    "preset",
    "register_configs",
    "reward_settings",
    "tiny_config",
]
