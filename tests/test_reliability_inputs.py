"""Bad input without Ray: config errors before any work, bad data, damaged records, trust."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from PIL import Image

from benchmarks.reliability import damage_variants, faulty_trial, one_line_error, recover
from controller import Sample
from proxy_task import DataError, ProxyTaskConfig
from proxy_task.coco_data import read_coco_split
from proxy_task.data import load_proxy_data
from results import RecordError, TrialRecord, TrialStore
from search.driver import run_search
from search.errors import SearchSetupError
from search.searcher import ControllerSearcher
from space import load_builtin
from tests.search_helpers import compose_search

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("space", "controller", "proxy_task", "search", "results")


# -- config -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override,words",
    [
        ("num_trials=-3", "num_trials=-3: must be >= 1"),
        ("concurrency=0", "concurrency=0"),
        ("max_retries=-1", "max_retries=-1"),
        ("time_budget_s=0", "time_budget_s"),
        ("trial_timeout_s=-5", "trial_timeout_s"),
        ("resources.cpus=0", "resources.cpus"),
        ("device=tpu", "device='tpu'"),
        ("name=a/b", "name='a/b'"),
        ("controller.batch_size=0", "batch_size"),
        ("proxy_task.image_size=-1", "proxy_task"),
        ("proxy_task.epochs=-1", "proxy_task.epochs=-1.0 (must be > 0)"),
        ("proxy_task.holdout_images=-2", "proxy_task.holdout_images=-2 (must be >= 0)"),
        ("ray.address=127.0.0.1:1", "does not answer"),
        ("wandb.mode=bogus", "wandb.mode='bogus': expected one of offline, online, disabled"),
        ("wandb.table_every=0", "wandb.table_every=0"),
        ("objective.enabled=true objective.target=0", "objective.target=0"),
    ],
)
def test_config_errors_come_before_any_work(tmp_path, override, words):
    import ray

    cfg = compose_search(tmp_path, "name=cfg", "wandb.mode=disabled", *override.split())
    with pytest.raises(SearchSetupError, match=re.escape(words)) as e:
        run_search(cfg, faulty_trial({}, str(tmp_path)))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "cfg").exists() or override.startswith("name=")  # nothing written
    assert not ray.is_initialized()


def test_unwritable_storage_is_a_setup_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cfg = compose_search(blocker / "runs", "wandb.mode=disabled")
    with pytest.raises(SearchSetupError, match="storage_path .* is not writable .*a-file is not a directory"):
        run_search(cfg)


def test_refused_config_leaves_no_run_directory(tmp_path):
    storage = tmp_path / "runs"  # not there yet either: nothing may be created for a refusal
    bad = compose_search(storage, "name=fresh", "wandb.mode=disabled", "proxy_task.dataset=coco",
                         f"proxy_task.data_root={tmp_path / 'nope'}")  # fmt: skip
    with pytest.raises(SearchSetupError, match="COCO root not found"):
        run_search(bad)
    assert not storage.exists()
    with pytest.raises(SearchSetupError, match="wandb.mode='nope'"):
        run_search(compose_search(storage, "name=fresh", "wandb.mode=nope"))
    assert not storage.exists()


@pytest.mark.parametrize(
    "override,words",
    [("controller=nope", "controller/nope"), ("num_trials=abc", "num_trials"), ("nonsense_key=1", "nonsense_key"),
     ("proxy_task.epochs=[1]", "epochs")],
)  # fmt: skip
def test_bad_overrides_name_the_key(tmp_path, override, words):
    with pytest.raises(ConfigCompositionException) as e:
        compose_search(tmp_path, override)
    assert words in str(e.value) + str(e.value.__cause__)


def test_unknown_group_option_at_the_command_line(tmp_path):
    cmd = [sys.executable, "-m", "search.run", f"storage_path={tmp_path}", "controller=nope"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "controller/nope" in r.stderr
    assert not list(tmp_path.iterdir())


# -- data ---------------------------------------------------------------------------------
def _coco(root: Path, annotations: object, images: list[dict]) -> Path:
    (root / "annotations").mkdir(parents=True)
    (root / "train2017").mkdir()
    text = annotations if isinstance(annotations, str) else json.dumps(annotations)
    (root / "annotations" / "instances_train2017.json").write_text(text)
    rng = np.random.default_rng(0)
    for im in images:
        Image.fromarray(rng.integers(0, 255, (im["height"], im["width"], 3), dtype=np.uint8)).save(
            root / "train2017" / im["file_name"]
        )
    return root


def _images(n: int) -> list[dict]:
    return [{"id": k + 1, "file_name": f"{k + 1}.png", "width": 48, "height": 32} for k in range(n)]


def test_boxes_outside_the_image_or_zero_size(tmp_path):
    boxes = [[-10, -10, 20, 20], [40, 20, 100, 100], [5, 5, 0, 8], [5, 5, 8, -1], [1, 1, 4, 4]]
    anns = [{"id": j + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 1, "iscrowd": 0}
            for j, b in enumerate(boxes)]  # fmt: skip
    root = _coco(tmp_path / "coco", {"images": _images(6), "annotations": anns, "categories": [{"id": 1}]}, _images(6))
    split = read_coco_split(root, "train2017")
    kept = split.records[0].boxes
    assert kept.shape == (3, 4)  # the zero- and negative-size boxes are dropped
    cfg = ProxyTaskConfig(dataset="coco", data_root=str(root), cache_dir=str(tmp_path / "c"), holdout_images=2,
                          image_size=32)  # fmt: skip
    data = load_proxy_data(cfg)  # boxes reaching outside the image load (kept as given)
    assert len(data.train) + len(data.eval) == 6 and data.train.skipped + data.eval.skipped == 0


def test_unreadable_images_are_counted_skips(tmp_path):
    root = _coco(tmp_path / "coco", {"images": _images(6), "annotations": [], "categories": [{"id": 1}]}, _images(4))
    (root / "train2017" / "5.png").write_bytes(b"\x89PNG garbage")  # 6.png is missing
    cfg = ProxyTaskConfig(dataset="coco", data_root=str(root), cache_dir=str(tmp_path / "c"), holdout_images=2,
                          image_size=32)  # fmt: skip
    data = load_proxy_data(cfg)
    assert data.train.skipped + data.eval.skipped == 2 and len(data.train) + len(data.eval) == 4


@pytest.mark.parametrize(
    "annotations,words",
    [("{not json", "Expecting property name"), (json.dumps({"images": []}), "not a COCO instances file")],
)
def test_bad_annotation_file_is_a_search_setup_error(tmp_path, annotations, words):
    root = _coco(tmp_path / "coco", annotations, [])
    cfg = compose_search(tmp_path, "wandb.mode=disabled", "proxy_task.dataset=coco", f"proxy_task.data_root={root}",
                         f"proxy_task.cache_dir={tmp_path / 'c'}")  # fmt: skip
    with pytest.raises(SearchSetupError, match=words):
        run_search(cfg)
    assert not (tmp_path / "default").exists()  # refused before the run directory is made


def test_missing_dataset_root_is_a_search_setup_error(tmp_path):
    cfg = compose_search(tmp_path, "wandb.mode=disabled", "proxy_task.dataset=coco",
                         f"proxy_task.data_root={tmp_path / 'nope'}")  # fmt: skip
    with pytest.raises(SearchSetupError, match="COCO root not found"):
        run_search(cfg)
    assert not (tmp_path / "default").exists()
    with pytest.raises(DataError):
        load_proxy_data(ProxyTaskConfig(dataset="coco", data_root=str(tmp_path / "nope")))


def test_train_cli_on_malformed_annotations_is_one_line(tmp_path):
    root = _coco(tmp_path / "coco", "{not json", [])
    cmd = [sys.executable, "-m", "proxy_task.train", "genotype=fpn", "proxy_task=tiny", "proxy_task.dataset=coco",
           f"proxy_task.data_root={root}", f"out_dir={tmp_path / 'out'}"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert one_line_error(r, "instances_train2017.json")


# -- a crashed trial's error reaches the record (Tune's real call order) -------------------
def test_crashed_trial_waits_for_its_error_line(tmp_path):
    import controller
    from space import SearchSpace

    with TrialStore(tmp_path / "t.sqlite") as store:
        s = ControllerSearcher(controller.build("random", SearchSpace()), "random", store, tmp_path / "s.pt")
        s.suggest("a")
        s.on_trial_complete(trial_id="a", result=None, error=True)  # Tune: first the searcher ...
        assert store.count() == 0
        s.record_failure("a", "RuntimeError: CUDA error: device-side assert")  # ... then the callback
        s.suggest("b")
        s.on_trial_complete(trial_id="b", result=None, error=True)
        s.flush_failures()  # no error line ever came
        by_id = {r.trial_id: r for r in store.records()}
    assert by_id["a"].status == "failed" and by_id["a"].error == "RuntimeError: CUDA error: device-side assert"
    assert by_id["b"].status == "failed" and "after all retries" in by_id["b"].error
    assert s.strategy.stats()["num_failed"] == 2 and not s.errors and not s.failed


# -- damaged record files -------------------------------------------------------------------
def _record(k: int) -> TrialRecord:
    return TrialRecord.from_genotype(load_builtin("nasfpn_paper" if k % 2 else "fpn"), trial_id=f"t{k}", step=k,
                                     policy_version=0, reward=0.1 * k, metrics={"ap": 0.1 * k}, status="ok",
                                     strategy="ppo")  # fmt: skip


@pytest.mark.parametrize("kind", list(damage_variants()))
def test_damaged_record_is_refused_then_recovered(tmp_path, kind):
    run_dir = tmp_path / "run"
    with TrialStore(run_dir / "trials.sqlite") as store:
        for k in range(40):
            store.append(_record(k))
        store.set_meta("strategy", "ppo")
    damage_variants()[kind](run_dir / "trials.sqlite")
    with pytest.raises(RecordError, match="damaged trial record|not a trial record"):
        TrialStore(run_dir / "trials.sqlite", readonly=True).records()
    r = subprocess.run([sys.executable, "-m", "results", "top", str(run_dir)], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)  # fmt: skip
    assert one_line_error(r, "trial record"), r.stderr
    cfg = compose_search(tmp_path, "name=run", "wandb.mode=disabled")
    with pytest.raises(SearchSetupError, match="trial record"):
        run_search(cfg)
    recovered = recover(run_dir / "trials.sqlite", tmp_path / "recovered.sqlite")
    assert len(recovered) >= 30  # at most the records on the damaged pages are gone
    steps = [r.step for r in recovered]  # in order; rows after a damaged page are kept too
    assert steps == sorted(steps) and all(r.same_trial(_record(r.step)) for r in recovered)


# -- trust ----------------------------------------------------------------------------------
UNSAFE = [
    (r"\bpickle\.loads?\(", "pickle.load"),
    (r"(?<![\w.])eval\(", "eval("),
    (r"(?<![\w.])exec\(", "exec("),
    (r"\byaml\.(unsafe_)?load\(", "yaml.load"),
    (r"\bmarshal\.loads?\(", "marshal.load"),
    (r"\bcloudpickle\.loads?\(", "cloudpickle.load"),
]


def test_no_pickle_or_eval_of_user_files():
    problems = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            for pattern, what in UNSAFE:
                if re.search(pattern, text):
                    problems.append(f"{path.relative_to(ROOT)}: {what}")
            for call in re.finditer(r"torch\.load\(", text):
                args = text[call.end() : text.find(")", call.end()) + 1]
                if "weights_only=True" not in args:
                    problems.append(f"{path.relative_to(ROOT)}: torch.load without weights_only=True")
    assert not problems, problems


def test_genotype_files_are_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"cells": payload, "controller_string": payload}))
    with pytest.raises(Exception, match="controller string"):
        from space import load

        load(path)
    assert not marker.exists()


def test_config_with_a_credential_is_refused_by_the_record(tmp_path):
    with TrialStore(tmp_path / "t.sqlite") as store, pytest.raises(ValueError, match="credential"):
        store.set_meta("config", {"wandb": {"api_key": "abc"}})


def test_sample_state_holds_no_code():
    import controller
    from space import SearchSpace

    s = controller.build("ppo", SearchSpace()).ask()
    d = s.to_dict()
    assert json.loads(json.dumps(d)) == d and Sample.from_dict(d, SearchSpace()) == s


def test_a_search_never_rewards_on_the_test_split(tmp_path):
    from search.settings import SearchSettings

    with pytest.raises(SearchSetupError, match="proxy_task.eval_split=test .bccd_retrain.: a search rewards on val"):
        SearchSettings.from_dict(compose_search(tmp_path, "proxy_task=bccd_retrain"))
    assert SearchSettings.from_dict(compose_search(tmp_path, "proxy_task=bccd")).task.eval_split == "val"
