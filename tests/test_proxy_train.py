"""Detector, training loop and presets on the built-in data, all tiny and on the CPU."""

import json

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

import space
from proxy_task import (
    METRIC_KEYS,
    NonFiniteLossError,
    ProxyTask,
    ProxyTaskConfig,
    preset,
    register_configs,
    tiny_config,
    train_and_evaluate,
)
from proxy_task.backbones import build_backbone
from proxy_task.detector import NASFPNRetinaNet, build_detector
from proxy_task.evaluator import AP_KEYS
from proxy_task.synthetic import synthetic_dataset


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("nasfpn_cache"))


def _tiny(cache: str, **changes) -> ProxyTaskConfig:
    return tiny_config().replace(cache_dir=cache, **changes)


def _targets():
    return [
        {"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]


def test_anytime_heads_give_outputs_for_every_repeat():
    torch.manual_seed(0)
    backbone = build_backbone("resnet10", 0.125)
    model = build_detector(
        space.load_builtin("nasfpn_paper"),
        backbone,
        backbone.out_channels,
        5,
        channels=16,
        repeats=3,
        anytime=True,
        anchor_scale=1.0,
        init_seed=0,
    )
    x = torch.randn(2, 3, 64, 64)
    model.train()
    outs = model.head_outputs(x)
    assert len(outs) == 3
    for o in outs:
        hwa = (8 * 8 + 4 * 4 + 2 * 2 + 1 + 1) * 9
        assert o["cls_logits"].shape == (2, hwa, 5) and o["bbox_regression"].shape == (2, hwa, 4)
    losses = model(x, _targets())
    sum(losses.values()).backward()
    for head in model.heads:  # deep supervision: every exit gets a gradient
        assert head.classification_head.cls_logits.weight.grad.abs().sum() > 0
    model.eval()
    for exit_ in range(3):
        model.eval_exit = exit_
        dets = model(x)
        assert len(dets) == 2 and set(dets[0]) == {"boxes", "scores", "labels"}
    assert len(model.head_outputs(x)) == 1


def test_anchor_assignments_are_cached_by_target_key():
    bb = build_backbone("resnet10", 0.125)
    model = build_detector(space.load_builtin("fpn"), None, bb.out_channels, 5, channels=8, repeats=1, init_seed=0)
    levels = [torch.zeros(1, 8, -(-64 // 2**k), -(-64 // 2**k)) for k in range(3, 8)]  # P3..P7: 8 .. 1
    anchors = model.anchors((64, 64), levels)
    targets = [{**t, "key": (k, False)} for k, t in enumerate(_targets())]
    plain = model.match(anchors, targets)  # no cache set: computed
    model.match_cache = {}
    first = model.match(anchors, targets)
    assert len(model.match_cache) == 2 and torch.equal(first, plain)
    assert (plain[0] >= 0).any() and (plain[1] == -1).all()
    row = next(iter(model.match_cache.values()))
    row.fill_(7)  # a cached row is served as stored, not recomputed
    assert (model.match(anchors, targets)[0] == 7).all()
    assert torch.equal(model.match(anchors, [{k: v for k, v in targets[0].items() if k != "key"}])[0], plain[0])


def _mask_loss(model, out, anchors, targets, matched):
    """The loss written with boolean masks, per exit (the formulation `loss_targets` replaces)."""
    logits, regression = out["cls_logits"].float(), out["bbox_regression"].float()
    fg = matched >= 0
    num_fg = max(1.0, float(fg.sum()))
    labels = torch.stack(
        [t["labels"][m.clamp(min=0)] if t["labels"].numel() else m * 0 for t, m in zip(targets, matched)]
    )
    target = torch.zeros_like(logits)
    target[fg] = torch.nn.functional.one_hot(labels[fg], logits.shape[-1]).to(target.dtype)
    valid = matched != model.proposal_matcher.BETWEEN_THRESHOLDS
    cls = sigmoid_focal_loss(logits[valid], target[valid], model.focal_alpha, model.focal_gamma, "sum") / num_fg
    gt = torch.cat([t["boxes"][m[f]] for t, m, f in zip(targets, matched, fg)])
    encoded = model.box_coder.encode_single(gt, anchors.expand(len(targets), -1, -1)[fg])
    return cls, torch.nn.functional.l1_loss(regression[fg], encoded, reduction="sum") / num_fg


def test_loss_is_bit_identical_to_the_boolean_mask_formulation():
    kw = dict(channels=8, repeats=1, init_seed=0, focal_loss="torchvision")
    model = build_detector(space.load_builtin("fpn"), None, [8, 16, 32], 5, **kw)
    levels = [torch.zeros(1, 8, -(-64 // 2**k), -(-64 // 2**k)) for k in range(3, 8)]
    anchors = model.anchors((64, 64), levels)
    targets = _targets() + [
        {"boxes": torch.tensor([[0.0, 0.0, 20.0, 12.0], [10.0, 8.0, 60.0, 50.0]]), "labels": torch.tensor([0, 4])}
    ]
    matched = model.match(anchors, targets)
    assert (matched == -2).any() and (matched >= 0).sum() > 3  # ignored and foreground anchors both occur
    gen = torch.Generator().manual_seed(0)
    raw = {
        "cls_logits": torch.randn(3, len(anchors), 5, generator=gen),
        "bbox_regression": torch.randn(3, len(anchors), 4, generator=gen),
    }
    a = {k: v.clone().requires_grad_() for k, v in raw.items()}
    b = {k: v.clone().requires_grad_() for k, v in raw.items()}
    new = model.loss(a, model.loss_targets(anchors, targets, matched))
    old = _mask_loss(model, b, anchors, targets, matched)
    assert torch.equal(new["classification"], old[0]) and torch.equal(new["bbox_regression"], old[1])
    (new["classification"] + new["bbox_regression"]).backward()
    (old[0] + old[1]).backward()
    for k in raw:
        assert torch.equal(a[k].grad, b[k].grad)
    model.focal_loss = "fused"  # the default: the same loss up to float rounding
    c = {k: v.clone().requires_grad_() for k, v in raw.items()}
    fused = model.loss(c, model.loss_targets(anchors, targets, matched))
    assert torch.allclose(fused["classification"], old[0], rtol=1e-5) and torch.equal(fused["bbox_regression"], old[1])
    fused["classification"].backward()
    assert torch.allclose(c["cls_logits"].grad, a["cls_logits"].grad, rtol=1e-4, atol=1e-8)


def test_heads_start_identical_for_every_genotype():
    bb = build_backbone("resnet10", 0.125)
    kw = dict(channels=16, repeats=2, init_seed=3)
    a = build_detector(space.load_builtin("nasfpn_paper"), bb, bb.out_channels, 4, **kw)
    b = build_detector(space.load_builtin("fpn"), bb, bb.out_channels, 4, **kw)
    for pa, pb in zip(a.heads.parameters(), b.heads.parameters()):
        assert torch.equal(pa, pb)


def test_loss_falls_on_builtin_data(cache):
    losses = []
    cfg = _tiny(cache, epochs=8.0, lr=0.32, batch_size=8)
    metrics = ProxyTask(cfg, "cpu").train(space.load_builtin("fpn"), 0, on_epoch=lambda e, r: losses.append(r["loss"]))
    assert len(losses) == 8
    # Last/first epoch loss, measured on one 2-core AMD EPYC over trial seeds 0-5 x
    # synthetic_seed 0-2 (torch threads 1 and 2 gave identical values): 0.725-0.804 (mean
    # 0.765, sd 0.022); a 0.755 was seen on another machine. With lr=1e-6 (no learning) the
    # same ratio is 0.975-1.026. 0.88 sits between the two, >= 3 sd from either edge.
    assert losses[-1] < 0.88 * losses[0]
    assert metrics.steps == 8 * (cfg.synthetic_images - cfg.holdout_images) // cfg.batch_size


def test_trial_is_repeatable_and_reports_plain_metrics(cache, tmp_path):
    g = space.load_builtin("nasfpn_paper")
    task = ProxyTask(_tiny(cache), "cpu")
    a = task.train(g, 1, out_dir=tmp_path).as_dict()
    data, frozen = task.data, task.frozen
    b = task.train(g, 1).as_dict()  # anchor assignments from the cache the first trial filled
    assert task.data is data and task.frozen is frozen  # built once, shared by the trials
    c = train_and_evaluate(g, _tiny(cache), 1, "cpu").as_dict()  # a fresh task: same bits
    for k in ("ap", "ap50", "final_loss", "params", "macs"):
        assert a[k] == b[k] == c[k]
    assert tuple(a) == METRIC_KEYS and METRIC_KEYS[: len(AP_KEYS)] == AP_KEYS
    for k in ("ap", "ap50", "ap75", "aps", "apm", "apl", "params", "macs", "eval_latency_ms", "train_time_s"):
        assert type(a[k]) in (int, float)
    assert a["params"] > a["pyramid_params"] > 0 and a["macs"] > 0
    assert json.loads((tmp_path / "metrics.json").read_text())["final_loss"] == a["final_loss"]
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert space.loads(ckpt["genotype"]) == g and ProxyTaskConfig(**ckpt["config"]) == _tiny(cache)


def test_end_to_end_mode_with_anytime_heads(cache):
    cfg = _tiny(cache, freeze_backbone=False, anytime=True, repeats=2, eval_exit=0)
    m = train_and_evaluate(space.load_builtin("fpn"), cfg, 0, "cpu")
    assert m.steps == 4 and m.ap >= 0.0


def test_non_finite_loss_raises_the_specific_exception(cache, monkeypatch):
    def nan_loss(self, head_out, lt):
        z = head_out["cls_logits"].sum() * 0
        return {"classification": z + float("nan"), "bbox_regression": z}

    monkeypatch.setattr(NASFPNRetinaNet, "loss", nan_loss)
    with pytest.raises(NonFiniteLossError, match="non-finite loss nan at step 0") as e:
        train_and_evaluate(space.load_builtin("fpn"), _tiny(cache), 0, "cpu")
    assert e.value.step == 0


def test_builtin_dataset_is_deterministic(tmp_path):
    a = synthetic_dataset(6, 2, 48, seed=5, cache_dir=str(tmp_path / "a"))
    b = synthetic_dataset(6, 2, 48, seed=5, cache_dir=str(tmp_path / "b"))
    for rel in ("annotations/instances_train2017.json", "train2017/000000000003.png"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    doc = json.loads((a / "annotations/instances_train2017.json").read_text())
    assert len(doc["images"]) == 6 and len({c["id"] for c in doc["categories"]}) == 6


def test_presets_and_hydra_group():
    paper = preset("coco_paper")
    assert (paper.backbone, paper.image_size, paper.repeats, paper.channels, paper.epochs) == (
        "resnet10",
        512,
        3,
        256,
        10,
    )
    assert paper.scaled_lr == pytest.approx(0.08) and paper.lr_milestones == (8.0,) and paper.holdout_images == 7392
    retrain = preset("coco_retrain")
    assert (retrain.backbone, retrain.image_size, retrain.repeats, retrain.epochs) == ("resnet50", 640, 7, 50)
    assert retrain.lr_milestones == (30.0, 40.0)
    small = preset("synthetic_retrain")  # 3x the default proxy, scored on val2017
    assert small.epochs == 3 * preset("synthetic").epochs and small.eval_split == "val"
    assert small.replace(name="synthetic", epochs=3.0, eval_split="proxy") == preset("synthetic")
    assert ProxyTaskConfig(**ProxyTaskConfig().to_dict()) == ProxyTaskConfig()
    from hydra import compose, initialize
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    register_configs(ConfigStore.instance())
    with initialize(version_base=None, config_path=None):
        cfg = compose("proxy_task/coco_retrain", overrides=["proxy_task.epochs=3"])
    task = ProxyTaskConfig(**OmegaConf.to_container(cfg.proxy_task, resolve=True))
    assert task.epochs == 3 and task.backbone == "resnet50"
    with pytest.raises(ValueError, match="backbone"):
        ProxyTaskConfig(backbone="vgg")


def test_head_batch_norm_is_per_level():
    from proxy_task.detector import LevelBatchNorm, make_head

    torch.manual_seed(0)
    head = make_head(8, 9, 3, convs=2)
    levels = [torch.randn(2, 8, s, s) * (k + 1) + k for k, s in enumerate((8, 4, 2, 1, 1))]
    head.train()
    head(levels)
    head(levels)  # the level counter restarts at every forward
    norms = [m for m in head.modules() if isinstance(m, LevelBatchNorm)]
    assert len(norms) == 4 and all(m.level == 5 for m in norms)
    first = norms[0].norms
    means = [float(bn.running_mean.mean()) for bn in first]
    assert means[0] != means[2] and all(int(bn.num_batches_tracked) == 2 for bn in first)


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_batched_detection_equals_torchvision_postprocess(scale):
    """Same boxes, scores and labels in the same order as `postprocess_detections`, with few
    candidates above the threshold and with many (scale 2.5: more than the 1,000 top-k of
    P3). Logits stay below ~9: a saturated sigmoid (score exactly 1.0) ties, and tied scores
    may come in another order."""
    model = build_detector(space.load_builtin("fpn"), None, [8, 16, 32], 5, channels=8, repeats=1, init_seed=0)
    levels = [torch.zeros(1, 8, -(-64 // 2**k), -(-64 // 2**k)) for k in range(3, 8)]
    anchors = model.anchors((64, 64), levels)
    gen = torch.Generator().manual_seed(1)
    out = {
        "cls_logits": torch.randn(4, len(anchors), 5, generator=gen) * scale - 2,
        "bbox_regression": torch.randn(4, len(anchors), 4, generator=gen) * 0.5,
    }
    ours = model.detect(out, anchors, levels, (64, 64))
    hw = [x.shape[-2] * x.shape[-1] for x in levels]
    per_level = [h * len(anchors) // sum(hw) for h in hw]
    split = {k: list(v.split(per_level, dim=1)) for k, v in out.items()}
    ref = model.postprocess_detections(split, [list(anchors.split(per_level))] * 4, [(64, 64)] * 4)
    assert sum(len(d["scores"]) for d in ref) > 40
    for a, b in zip(ours, ref):
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(a[key], b[key])
