"""Faults injected into real Ray searches (the compact form of `python -m benchmarks.reliability`)."""

import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from benchmarks.reliability import check_complete, compose, faulty_trial, scenario_driver_kill
from search.driver import run_search

pytestmark = pytest.mark.slow
SECRET = "wandb-secret-0123456789abcdef"


def test_worker_kill_and_failing_trials_in_one_search(tmp_path, nasfpn_cache, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    cfg = compose(tmp_path, "name=faults", "num_trials=6", "concurrency=2", "max_retries=1", "trial_timeout_s=4")
    faults = {1: "worker_kill", 2: "nonfinite", 3: "raise", 4: "hang"}
    (tmp_path / "markers").mkdir()
    run_search(cfg, faulty_trial(faults, str(tmp_path / "markers"), seconds=0.6))
    check = check_complete(tmp_path / "faults", cfg)
    assert check["problems"] == [] and check["trained"] == 6
    by_step = {r.step: r for r in check["records"]}
    assert (tmp_path / "markers" / "worker_kill-1").exists() and by_step[1].status == "ok"  # killed, retried
    assert (by_step[2].status, by_step[2].reward) == ("nonfinite", None) and "non-finite loss" in by_step[2].error
    assert by_step[3].status == "failed" and by_step[3].error == "RuntimeError: injected: trial 3 always raises"
    assert by_step[4].status == "timeout" and "4 s limit" in by_step[4].error
    assert check["stats"]["num_failed"] == 3  # the failure reward was told for each
    # nothing secret in what the run wrote
    for path in (tmp_path / "faults").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    token = Path("~/.ray/auth_token").expanduser()
    if token.is_file() and token.read_text().strip():
        data = (tmp_path / "faults" / "trials.sqlite").read_bytes()
        assert token.read_text().strip().encode() not in data


@pytest.mark.parametrize("point", ["after_append", "controller_update"])
def test_driver_sigkill_then_same_command_resumes(tmp_path, nasfpn_cache, point):
    row = scenario_driver_kill(tmp_path, point, 6)
    assert row.problems == [] and row.lost == 0 and row.survived == 1, row


def test_workers_killed_by_the_memory_monitor_are_retried_then_recorded(tmp_path, nasfpn_cache):
    from benchmarks.reliability import scenario_oom_kill

    row = scenario_oom_kill(tmp_path, 2)
    assert row.problems == [] and row.survived == 2, row


@pytest.mark.parametrize("signum,to_group", [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_a_stop_signal_stops_cleanly_keeps_every_trial_and_exits_128_plus_signum(tmp_path, nasfpn_cache, signum,
                                                                                 to_group):  # fmt: skip
    from benchmarks.reliability import scenario_signal

    row = scenario_signal(tmp_path, signum, to_group)
    assert row.problems == [] and row.lost == 0 and row.twice == 0 and row.survived == 1, row


def test_aws_credentials_stay_out_of_ray_logs(tmp_path, nasfpn_cache, monkeypatch):
    # Tune copies AWS_* into every trial actor's runtime_env, which Ray's runtime-env agent
    # logs with its values; the search hands Ray only the variables trials need.
    secret = "aws-secret-0123456789abcdef"
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # a session of its own; short: socket paths
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA0123456789ABCDEF")
    cfg = compose(tmp_path, "name=aws", "num_trials=2", "concurrency=1")
    run_search(cfg, faulty_trial({}, str(tmp_path), seconds=0.2))
    logs = [p for p in ray_tmp.rglob("*") if p.is_file() and p.suffix in (".log", ".out", ".err", ".json")]
    assert any(p.name.startswith("runtime_env") for p in logs)  # the agent's log was read
    leaked = [str(p) for p in logs if secret.encode() in p.read_bytes() or b"AKIA0123456789ABCDEF" in p.read_bytes()]
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert leaked == []
