"""Inputs without bounds and refusals that came too late: each is refused in one line
(exit 2 at the command line) before work starts, and a refused new run leaves nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from results import TrialRecord, TrialStore
from search.driver import run_search
from search.errors import SearchSetupError
from space import GenotypeError, load, load_builtin, loads
from space.describe import main as describe_main
from space.serialization import to_dict
from tests.search_helpers import compose_search

ROOT = Path(__file__).resolve().parent.parent


def _refused(tmp_path, *overrides, words):
    cfg = compose_search(tmp_path / "runs", "wandb.mode=disabled", *overrides)
    with pytest.raises(SearchSetupError) as e:
        run_search(cfg)
    assert "\n" not in str(e.value) and words in str(e.value), str(e.value)
    return e.value


# -- run names and numbers ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["..", ".", ".hidden", "-x", "a/b", "a\\b", "x" * 200, "a b"])
def test_a_name_that_is_not_one_safe_path_component_is_refused(tmp_path, name):
    _refused(tmp_path, f"name='{name}'", words="one path component")
    assert not (tmp_path / "runs").exists() and sorted(os.listdir(tmp_path)) == []


def test_an_overflowing_seed_is_named(tmp_path):
    _refused(tmp_path, f"seed={2**64}", words=f"seed={2**64}: must be an integer from 0 to 2**63 - 1")


def test_a_space_beyond_the_genotype_bound_is_refused(tmp_path):
    _refused(tmp_path, "space.num_intermediate=100", words="space.num_intermediate=100: at most 59")


# -- genotype files -------------------------------------------------------------------------
def _cells(n):
    fpn = to_dict(load_builtin("fpn"))
    return {**{k: v for k, v in fpn.items() if k != "hash"}, "cells": [fpn["cells"][0]] * n}


def test_ten_thousand_cells_are_refused_at_parse():
    with pytest.raises(GenotypeError, match="10000 cells: a genotype has at most 64"):
        loads(json.dumps(_cells(10_000)))
    with pytest.raises(GenotypeError, match="cells: a genotype has at most 64"):
        loads(json.dumps({"controller_string": [0, 0, 0, 1] * 10_000}))


def test_a_level_of_five_thousand_digits_is_one_line(tmp_path):
    path = tmp_path / "g.json"
    path.write_text('{"min_level": 3, "max_level": ' + "7" * 5000 + ', "cells": []}')
    with pytest.raises(GenotypeError) as e:
        load(path)
    assert "\n" not in str(e.value) and "malformed JSON" in str(e.value)


def test_a_named_pipe_is_refused_not_read(tmp_path):
    fifo = tmp_path / "g.json"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "space.describe", str(fifo), "--out", str(tmp_path / "d.png")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)  # blocked forever before
    assert r.returncode == 2 and r.stderr.strip() == f"error: {fifo}: not a regular file; give a genotype JSON file"


@pytest.mark.parametrize(
    "flags,words",
    [(["--image-size", "65536"], "--image-size 65536: expected 1..1536"),
     (["--channels", "200000"], "--channels 200000: expected 1..512"),
     (["--repeats", "1000"], "--repeats 1000: expected 1..16"),
     (["--in-channels", "8", "999999"], "--in-channels 8 999999: expected 1..4096")],
)  # fmt: skip
def test_describe_sizes_are_bounded(tmp_path, capsys, flags, words):
    assert describe_main(["fpn", *flags, "--out", str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {words}" and not (tmp_path / "d.png").exists()


# -- messages -------------------------------------------------------------------------------
def test_a_bad_controller_state_says_that_deleting_it_rebuilds_it(tmp_path):
    cfg = compose_search(tmp_path, "name=run", "wandb.mode=disabled")
    run_dir = tmp_path / "run"
    with TrialStore(run_dir / "trials.sqlite") as store:
        store.set_meta("strategy", "ppo")
        store.set_meta("config", cfg)
        store.append(TrialRecord.from_genotype(load_builtin("fpn"), trial_id="t0", step=0, policy_version=0,
                                               reward=0.1, strategy="ppo"))  # fmt: skip
    (run_dir / "controller_state.pt").write_bytes(b"PK\x03\x04 not a torch file")
    with pytest.raises(SearchSetupError) as e:
        run_search(cfg)
    message = str(e.value)
    assert "\n" not in message and "weights_only" not in message
    assert "unreadable controller state" in message and "delete it and run the same command again" in message


def test_a_finished_run_in_a_read_only_directory_can_be_viewed(tmp_path):
    """WAL mode needs a -shm file beside the record: a read-only directory refused it."""
    import tempfile

    from results.__main__ import main as results_main

    base = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp_path is 0700: another user cannot enter it
    try:
        run = base / "run"
        with TrialStore(run / "trials.sqlite") as store:
            store.append(TrialRecord.from_genotype(load_builtin("fpn"), trial_id="t0", step=0, policy_version=0,
                                                   reward=0.1, strategy="ppo"))  # fmt: skip
        os.chmod(base, 0o755)
        os.chmod(run / "trials.sqlite", 0o444)
        os.chmod(run, 0o555)
        pid = os.fork()
        if pid == 0:  # as another user, who cannot write there (root writes anywhere)
            code = 3
            try:
                if os.getuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                code = results_main(["top", str(run)])
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.chmod(base / "run", 0o755)
        import shutil

        shutil.rmtree(base)


# -- refusals that need the cluster (Ray starts, the run directory must not) ------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides,words",
    [(["device=cuda"], "device=cuda but the Ray cluster has no GPU"),
     (["resources.gpus=1"], "resources.gpus=1 but the Ray cluster has no GPU"),
     (["ray.address=ray://127.0.0.1:1"], "cannot reach Ray at ray.address='ray://127.0.0.1:1'")],
)  # fmt: skip
def test_late_refusals_leave_no_run(tmp_path, nasfpn_cache, overrides, words):
    import ray

    if any("cuda" in o or "gpus" in o for o in overrides):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    cfg = compose_search(tmp_path / "runs", "name=late", "wandb.mode=disabled", *overrides)
    with pytest.raises(SearchSetupError) as e:
        run_search(cfg)
    assert "\n" not in str(e.value) and words in str(e.value), str(e.value)
    assert not (tmp_path / "runs" / "late").exists()
    assert not ray.is_initialized()


@pytest.mark.slow
def test_a_wandb_online_start_that_fails_is_one_line_and_leaves_no_run(tmp_path, nasfpn_cache):
    # a process of its own: wandb keeps its first mode for the life of a process
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["WANDB_DIR"] = str(tmp_path / "wandb-home")
    cmd = [sys.executable, "-m", "search.run", f"storage_path={tmp_path / 'runs'}", "name=late", "proxy_task=tiny",
           "ray.num_cpus=2", "wandb.mode=online"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert last.startswith("error: wandb.mode=online: W&B did not start (") and "wandb login" in last
    assert not (tmp_path / "runs" / "late").exists()
