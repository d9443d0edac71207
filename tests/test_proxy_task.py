"""The proxy task object and the one place that says which settings determine what."""

import dataclasses
import shutil
from pathlib import Path

import pytest

from proxy_task import ProxyTask, ProxyTaskConfig
from proxy_task.config import (
    ADDED_REWARD_FIELDS,
    BCCD_ROOT,
    DATA_FIELDS,
    DATA_PATHS,
    LATENCY_FIELDS,
    MACHINE_FIELDS,
    PRETRAIN_FIELDS,
    RUNTIME_FIELDS,
    TRIAL_FIELDS,
    reward_settings,
)
from proxy_task.features import backbone_key
from studies.retrain import summarize, table


def test_every_setting_is_in_exactly_one_section():
    sections = DATA_FIELDS + PRETRAIN_FIELDS + TRIAL_FIELDS + RUNTIME_FIELDS
    names = [f.name for f in dataclasses.fields(ProxyTaskConfig)]
    assert sorted(sections) == sorted(names)  # a new field has to be classified
    assert set(MACHINE_FIELDS) == set(DATA_PATHS) | set(RUNTIME_FIELDS)


def test_reward_settings_drop_machine_fields_and_fill_added_ones():
    stored = {k: v for k, v in ProxyTaskConfig().to_dict().items() if k not in ADDED_REWARD_FIELDS}
    plain = reward_settings(stored)
    assert not set(plain) & set(MACHINE_FIELDS)
    assert plain["focal_loss"] == "torchvision"  # what records made before the field had
    assert plain["image_size"] == 128 and plain["epochs"] == 3.0
    latency = reward_settings(stored, latency=True)
    assert set(latency) - set(plain) == set(LATENCY_FIELDS)  # the latency term makes threads count


def _small_voc(root: Path, names: list[str]) -> Path:
    """Six BCCD images in the VOC layout: four train, two val."""
    src = Path(BCCD_ROOT)
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    for n in names:
        shutil.copy(src / "Annotations" / f"{n}.xml", root / "Annotations")
        shutil.copy(src / "JPEGImages" / f"{n}.jpg", root / "JPEGImages")
    (root / "ImageSets/Main/train.txt").write_text("\n".join(names[:4]) + "\n")
    (root / "ImageSets/Main/val.txt").write_text("\n".join(names[4:]) + "\n")
    return root


NAMES = [f"BloodImage_0000{k}" for k in (1, 3, 4, 5, 6, 7)]


def _cfg(root: Path, cache: Path) -> ProxyTaskConfig:
    return ProxyTaskConfig(
        dataset="voc", data_root=str(root), train_split="train", eval_split="val", image_size=64, cache_dir=str(cache)
    )


def test_caches_are_keyed_by_content_not_by_where_the_data_lies(tmp_path):
    a = ProxyTask(_cfg(_small_voc(tmp_path / "a", NAMES), tmp_path / "cache"), "cpu")
    b = ProxyTask(_cfg(_small_voc(tmp_path / "b", NAMES), tmp_path / "cache"), "cpu")
    assert len(a.data.train) == 4 and len(a.data.eval) == 2
    assert a.data.train_key == b.data.train_key  # a moved or second copy reuses the backbone
    assert backbone_key(a.config, a.data) == backbone_key(b.config, b.data)
    assert len(list((tmp_path / "cache" / "tensors").glob("*.npy"))) == 2  # train and val, built once
    # another box, another key
    xml = tmp_path / "b" / "Annotations" / f"{NAMES[0]}.xml"
    text = xml.read_text()
    first = text.index("<xmin>") + len("<xmin>")
    end = text.index("</xmin>", first)
    xml.write_text(text[:first] + str(int(text[first:end]) + 3) + text[end:])
    c = ProxyTask(_cfg(tmp_path / "b", tmp_path / "cache"), "cpu")
    assert c.data.train_key != a.data.train_key
    # a pre-training setting changes the backbone, a trial setting does not
    moved = a.config.replace(anchor_scale=2.0)
    assert backbone_key(moved, a.data) != backbone_key(a.config, a.data)
    assert backbone_key(a.config.replace(epochs=9.0, repeats=2), a.data) == backbone_key(a.config, a.data)


def test_retrain_summary_counts_a_failed_seed_out_of_the_mean():
    entries = {"h": {"name": "g", "pyramid_macs": 1_000_000}}
    ok = {"status": "ok", "ap": 0.4, "ap50": 0.7, "params": 10, "pyramid_params": 5, "macs": 100, "seconds": 3.0}
    runs = {
        "h/0": ok,
        "h/2": {**ok, "ap": 0.2, "ap50": 0.5},
        "h/1": {"status": "nonfinite", "error": "non-finite loss nan at step 3", "ap": None, "ap50": None},
    }
    (row,) = summarize(entries, runs, seeds=3)
    assert row["ap"] == [0.4, 0.2] and row["failed"] == 1 and row["ap_per_seed"] == [0.4, None, 0.2]
    assert row["ap_mean"] == pytest.approx(0.3) and row["ap50_mean"] == pytest.approx(0.6)
    assert row["ap_std"] == pytest.approx(0.1414213562373095)
    assert "| 0.4000, failed, 0.2000 |" in table([row], ProxyTaskConfig())  # seed 1 failed
    (none,) = summarize(entries, {f"h/{s}": runs["h/1"] for s in range(3)}, seeds=3)
    assert none["ap_mean"] is None and none["failed"] == 3
    assert "| g | - | failed, failed, failed | - |" in table([none], ProxyTaskConfig())


@pytest.mark.parametrize("name", ["synthetic", "bccd", "bccd_retrain"])
def test_the_shipped_backbones_are_found_by_their_presets_keys(name, nasfpn_cache):
    """A change to what keys a backbone (data content, PRETRAIN_FIELDS, _VERSION) must come with
    backbones made again for data/backbones (its README says how)."""
    from proxy_task.config import preset
    from proxy_task.data import load_proxy_data
    from proxy_task.features import SHIPPED_BACKBONES

    cfg = preset(name).replace(cache_dir=nasfpn_cache)
    key = backbone_key(cfg, load_proxy_data(cfg))
    assert (SHIPPED_BACKBONES / f"{key}.pt").is_file(), f"no shipped backbone {key} for {name}"


def test_a_derived_task_shares_the_features_and_trains_as_a_fresh_one(tmp_path):
    from proxy_task import tiny_config
    from space import load_builtin

    base = ProxyTask(tiny_config().replace(cache_dir=str(tmp_path)), "cpu")
    longer = base.derive(epochs=2.0, lr=0.16)
    assert longer.data is base.data and longer.frozen is base.frozen and longer.config.epochs == 2.0
    g = load_builtin("fpn")
    fresh = ProxyTask(base.config.replace(epochs=2.0, lr=0.16), "cpu").train(g, 0)
    timing = {"train_time_s", "eval_time_s", "total_time_s", "total_cpu_s", "eval_latency_ms"}
    derived = {k: v for k, v in longer.train(g, 0).as_dict().items() if k not in timing}
    assert derived == {k: v for k, v in fresh.as_dict().items() if k not in timing}  # same bits
    with pytest.raises(ValueError, match="image_size"):
        base.derive(image_size=96)
    with pytest.raises(ValueError, match="eval_batch_size"):
        base.derive(eval_batch_size=4)
