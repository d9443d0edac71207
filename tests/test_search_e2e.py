"""End-to-end searches on a real local Ray cluster with the real (tiny) proxy task."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import controller
from results import TrialStore
from search.driver import run_search
from search.errors import SearchSetupError
from search.state import load_state
from space import SearchSpace, load
from tests.search_helpers import compose_search

pytestmark = pytest.mark.slow


def test_search_writes_record_export_and_wandb(tmp_path, nasfpn_cache):
    cfg = compose_search(tmp_path, "name=e2e", "num_trials=3", "concurrency=2", "wandb.table_every=1")
    summary = run_search(cfg)
    run_dir = tmp_path / "e2e"
    with TrialStore(run_dir / "trials.sqlite", readonly=True) as store:
        records = store.records()
        top = store.top(1)[0]
    trained = [r for r in records if not r.cache_hit]
    assert summary["trials"] == len(trained) == 3
    assert all(r.status == "ok" and 0.0 <= r.reward <= 1.0 and r.params > 0 and r.macs > 0 for r in trained)
    best = load(run_dir / "best_genotype.json")
    assert best.hash() == top.genotype_hash and top.reward == max(r.reward for r in trained)
    # the exported genotype builds
    from space.pyramid import NASFPN

    assert len(NASFPN(best, [8, 16, 32], 8, 1)([torch.zeros(2, c, s, s) for c, s in ((8, 8), (16, 4), (32, 2))])) == 5
    # W&B offline run with the top-k table
    tables = list(Path(summary["wandb_dir"]).rglob("top_architectures*.table.json"))
    assert tables, "no top-k table in the offline W&B run"
    table = max((json.loads(t.read_text()) for t in tables), key=lambda t: len(t["data"]))
    assert table["columns"][:3] == ["rank", "reward", "ap"] and len(table["data"]) == 3
    # running the same command again with the budget spent trains nothing more
    again = run_search(cfg)
    assert again["trials"] == 3 and "wall_s" not in again
    # a lost controller state is rebuilt from the record (only trials.sqlite was kept) ...
    state = run_dir / "controller_state.pt"
    state.unlink()
    run_search(cfg)
    strategy = controller.build("ppo", SearchSpace(), seed=0)
    load_state(strategy, state)
    assert strategy.stats()["num_told"] == len(records) and strategy.stats()["num_pending"] == 0
    # ... but not under other controller options than the run was started with
    state.unlink()
    with pytest.raises(SearchSetupError, match="started with controller.lr="):
        run_search({**cfg, "controller": {**cfg["controller"], "lr": 0.5}})
    # nor is a run resumed under another proxy task: its rewards would not be comparable
    with pytest.raises(SearchSetupError, match=r"started with proxy_task.epochs=.*choose another name"):
        run_search({**cfg, "num_trials": 4, "proxy_task": {**cfg["proxy_task"], "epochs": 9.0}})
    run_search({**cfg, "proxy_task": {**cfg["proxy_task"], "num_threads": 2}})  # not a reward setting


def _search_cmd(storage, *overrides):
    return [sys.executable, "-m", "search.run", f"storage_path={storage}", "proxy_task=tiny", "ray.num_cpus=2",
            "wandb.mode=disabled", *overrides]  # fmt: skip


def test_resume_after_driver_sigkill(tmp_path, nasfpn_cache):
    # tiny trials take ~0.3 s and finish two at a time, so the budget leaves a window of several
    # seconds for the kill to land after the second record and before the last
    budget = 60
    cmd = _search_cmd(tmp_path, "name=resume", f"num_trials={budget}", "concurrency=2")
    db = tmp_path / "resume" / "trials.sqlite"
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    before = []
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if db.exists():
            with TrialStore(db, readonly=True) as store:
                before = store.records()
            if len(before) >= 2:
                break
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local cluster, like kill -9
    proc.wait()
    assert 2 <= len(before) < budget, f"kill came too late or too early: {len(before)} records"
    with TrialStore(db, readonly=True) as store:
        before = store.records()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    with TrialStore(db, readonly=True) as store:
        after = store.records()
    trained = [x for x in after if not x.cache_hit]
    assert len(trained) == budget
    assert [x.trial_id for x in after[: len(before)]] == [x.trial_id for x in before]  # nothing lost
    steps = [x.step for x in after]
    assert len(steps) == len(set(steps))  # no sample trained twice
    strategy = controller.build("ppo", SearchSpace(), seed=0)
    load_state(strategy, tmp_path / "resume" / "controller_state.pt")
    stats = strategy.stats()
    assert stats["num_told"] == len(after) and stats["num_pending"] == 0


def test_bad_override_and_bad_storage_are_one_line_errors(tmp_path):
    r = subprocess.run(_search_cmd(tmp_path, "num_trials=abc"), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "num_trials" in r.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = subprocess.run(_search_cmd(blocker / "sub"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: storage_path")
    r = subprocess.run(_search_cmd(tmp_path, "num_trials=-1"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "num_trials=-1: must be >= 1" in r.stderr
    r = subprocess.run(_search_cmd(tmp_path, "ray.address=127.0.0.1:1"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "does not answer" in r.stderr


def test_search_on_simulated_two_node_cluster(tmp_path, nasfpn_cache):
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(
            address=cluster.address, include_dashboard=False, runtime_env={"env_vars": {"NASFPN_CACHE": nasfpn_cache}}
        )
        cfg = compose_search(tmp_path, "name=cluster", "num_trials=2", "concurrency=2", "wandb.mode=disabled",
                             f"ray.address={cluster.address}")  # fmt: skip
        summary = run_search(cfg)
        assert summary["trials"] == 2
        assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()
