"""Fault injection into real Ray searches: `python -m benchmarks.reliability [--quick]`.

Every scenario runs a real local Ray cluster and the real search driver (`run_search`),
with faults injected at chosen trial steps or driver moments:

  worker    a trial's worker process SIGKILLed mid-trial (tiny proxy): retried, budget met
  driver    the driver (and its local cluster) SIGKILLed during a trial, inside the record's
            INSERT, right after the record append (before tell), during a controller update,
            while the controller state is written; the same command run again must finish
            with every completed trial kept exactly once and the state consistent
  trial     non-finite loss, an always-raising trial, a trial past trial_timeout_s:
            recorded with status and error, failure reward, the search goes on
  record    the record file damaged at its tail: refused (one line, exit 2) by
            `python -m search.run` and `python -m results top`; earlier records intact
            after the suggested recovery; a torn WAL tail is dropped by SQLite itself
  oom       Ray's memory monitor (threshold 1%) kills every trial worker: each trial is
            retried, then recorded as failed; the driver goes on and exits 0
  signal    SIGTERM to the driver, SIGINT to its process group (a terminal's Ctrl-C): exit
            143 / 130 in one line with every finished trial kept; the same command finishes
  write     the record made read-only, or the disk full under the record or the controller
            state, in a resumed run: exit 1 in one line, the finished trial kept in the
            pending journal, then appended by the same command, which finishes the budget
  page      damage inside a record page (passes SQLite's integrity check): non-UTF-8 bytes
            in a row, garbled settings JSON, 64 random bytes (dd): one-line refusals (or a
            normal run when only a number changed), settings and readable rows recovered
  soak      hundreds of trivial trials: driver RSS at start and end

Each row counts the trials lost (finished, then missing from the record) and trained twice
(an attempt that started training a step after its record was made).

Trials other than the worker scenario pass a stand-in for `search.trainable.train_in_worker`
(fixed metrics after a short sleep) to the real `search.trainable.run_trial` as its `train`
argument, so the trial's status/timeout handling is the real one. A driver scenario runs
this module as a subprocess (`python -m benchmarks.reliability _driver SPEC.json`) that
installs its kill hook once (a marker file), so running the same command again is the resume.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from results.record import TrialStatus

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_SILENT", "true")

DRIVER_KILL_POINTS = ("during_trial", "inside_insert", "after_append", "controller_update", "state_write")
TRIAL_FAULTS = ("worker_kill", "nonfinite", "raise", "hang", "kill_driver")


# -- trials (run inside Ray workers) ------------------------------------------------------
def fake_metrics(genotype: Any, seconds: float) -> dict[str, Any]:
    """Plain metrics of a 'trained' genotype, deterministic in its hash, after `seconds`."""
    time.sleep(seconds)
    u = int(hashlib.sha256(genotype.hash().encode()).hexdigest()[:8], 16) / 2**32
    return {
        "ap": 0.1 + 0.4 * u,
        "ap50": 0.2 + 0.5 * u,
        "params": 1000 + len(genotype.cells),
        "macs": 10_000 + len(genotype.cells),
        "eval_latency_ms": 1.0,
        "train_time_s": seconds,
    }


def first_attempt(marker_dir: str, key: str) -> bool:
    """True exactly once per (marker_dir, key), across processes (O_EXCL marker file)."""
    try:
        os.close(os.open(os.path.join(marker_dir, key), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def faulty_trial(faults: dict[int, str], marker_dir: str, *, proxy: bool = False, seconds: float = 1.0) -> Callable:
    """A trainable with run_trial's arguments that injects `faults[step]` into that step.

    worker_kill: SIGKILL this worker mid-way through the first attempt (after the first epoch
    with `proxy`, else `seconds/3` in), later attempts train normally;
    nonfinite: raise NonFiniteLossError; raise: RuntimeError on every attempt; hang: loop
    until the per-trial deadline stops it; kill_driver: SIGKILL the driver's process group
    (env NASFPN_DRIVER_PGID) on the first attempt, mid-trial. `proxy`: train the tiny proxy.
    """
    faults = {int(k): v for k, v in faults.items()}

    def trial(config: dict[str, Any], *, task: Any, seed: int, device: str, cpus: float,
              time_limit_s: float | None) -> None:  # fmt: skip
        import proxy_task
        from search.trainable import run_trial, train_in_worker

        step = int(config["step"])
        fault = faults.get(step)
        first = fault is not None and first_attempt(marker_dir, f"{fault}-{step}")

        def train(genotype: Any, task_cfg: Any, seed: int, device: str, **kw: Any) -> dict[str, Any]:
            if fault == "nonfinite":
                raise proxy_task.NonFiniteLossError(3, float("nan"))
            if fault == "raise":
                raise RuntimeError(f"injected: trial {step} always raises")
            if fault == "hang":
                while True:  # a trial stuck in Python code; the deadline interrupts it
                    time.sleep(0.05)
            if first and fault == "kill_driver":  # the driver and its local cluster, this worker too
                threading.Timer(seconds / 3, os.killpg, (int(os.environ["NASFPN_DRIVER_PGID"]), signal.SIGKILL)).start()
            if first and fault == "worker_kill" and proxy:  # after the first epoch, before evaluation
                kw["on_epoch"] = lambda epoch, metrics: os.kill(os.getpid(), signal.SIGKILL)
            elif first and fault == "worker_kill":
                threading.Timer(seconds / 3, os.kill, (os.getpid(), signal.SIGKILL)).start()
            if proxy:
                return train_in_worker(genotype, task_cfg, seed=seed, device=device, **kw)
            return fake_metrics(genotype, seconds)

        # one marker per attempt, with its wall-clock start: `trained_twice` compares it with the record
        Path(marker_dir, f"attempt-{step}-{time.time_ns()}-{os.getpid()}").touch()
        run_trial(config, task=task, seed=seed, device=device, cpus=cpus, time_limit_s=time_limit_s, train=train)

    trial.__name__ = "faulty_trial"
    return trial


# -- config and run checks -------------------------------------------------------------
def compose(storage: Path, *overrides: str) -> dict[str, Any]:
    """Resolved config of a tiny search under `storage` (the Hydra entry point's path)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    from search.config import register_configs

    register_configs()
    with initialize_config_module(version_base=None, config_module="search.conf"):
        cfg = hydra_compose(
            "search",
            overrides=[
                f"storage_path={storage}",
                "proxy_task=tiny",
                "ray.num_cpus=2",
                "wandb.mode=disabled",
                "time_budget_s=null",
                *overrides,
            ],  # fmt: skip
        )
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def read_records(run_dir: Path) -> list[Any]:
    from results import TrialStore

    db = run_dir / "trials.sqlite"
    if not db.exists():
        return []
    with TrialStore(db, readonly=True) as store:
        return store.records()


def count_records(run_dir: Path) -> int:
    """Records so far in a running search's record (0 while it is being created)."""
    from results import RecordError

    try:
        return len(read_records(run_dir))
    except RecordError:
        return 0


def controller_stats(run_dir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """The saved controller state's counters (num_told, num_pending, ...)."""
    import controller
    from search.config import controller_options
    from search.state import load_state
    from space import SearchSpace

    name, options = controller_options(cfg["controller"])
    strategy = controller.build(name, SearchSpace(), **options, failure_reward=cfg["failure_reward"], seed=cfg["seed"])
    load_state(strategy, run_dir / "controller_state.pt")
    return strategy.stats()


def check_complete(run_dir: Path, cfg: dict[str, Any], before: list[Any] | None = None) -> dict[str, Any]:
    """Counts and invariants of a finished run; `before`: records seen before a fault."""
    after = read_records(run_dir)
    trained = [r for r in after if not r.cache_hit]
    ids = [r.trial_id for r in after]
    steps = [r.step for r in after]
    kept = {r.trial_id: r for r in after}
    lost = [r.trial_id for r in before or [] if r.trial_id not in kept or kept[r.trial_id] != r]
    stats = controller_stats(run_dir, cfg)
    problems = []
    if len(trained) != cfg["num_trials"]:
        problems.append(f"{len(trained)} trained of {cfg['num_trials']}")
    if len(ids) != len(set(ids)) or len(steps) != len(set(steps)):
        problems.append("a trial or step recorded twice")
    if lost:
        problems.append(f"lost {lost}")
    if before and ids[: len(before)] != [r.trial_id for r in before]:
        problems.append("earlier records reordered")
    if stats["num_told"] != len(after) or stats["num_pending"]:
        problems.append(f"controller told {stats['num_told']} of {len(after)}, {stats['num_pending']} pending")
    return {"records": after, "trained": len(trained), "lost": len(lost), "stats": stats, "problems": problems}


# -- the driver subprocess ---------------------------------------------------------------
def _kill_group() -> None:
    sys.stderr.flush()
    os.killpg(os.getpgid(0), signal.SIGKILL)  # the driver and its local Ray cluster, like kill -9


def install_kill_hook(point: str, at: int, marker_dir: str) -> None:
    """Patch the driver so it SIGKILLs its process group at `point`, the `at`-th time, once."""
    import search.state
    from controller.policy_gradient import PolicyGradientStrategy
    from results import TrialStore

    count = {"n": 0}

    def due() -> bool:
        count["n"] += 1
        return count["n"] == at and first_attempt(marker_dir, f"driver-{point}")

    if point == "during_trial":
        pass  # the trial at step `at` kills the driver itself (fault kill_driver), see driver_main
    elif point in ("inside_insert", "after_append"):
        append = TrialStore.append

        def append_then_kill(self: Any, record: Any) -> bool:
            if point == "inside_insert" and due():
                # killed while SQLite executes the INSERT: the record is not committed
                self._conn.set_progress_handler(lambda: _kill_group(), 1)
            written = append(self, record)
            if point == "after_append" and due():
                _kill_group()  # committed, not yet told to the controller nor saved
            return written

        TrialStore.append = append_then_kill  # type: ignore[method-assign]
    elif point == "controller_update":
        step = PolicyGradientStrategy._step

        def step_then_kill(self: Any, loss: Any) -> None:
            step(self, loss)
            if due():
                _kill_group()  # after the first optimizer step of an update: the update is half done

        PolicyGradientStrategy._step = step_then_kill  # type: ignore[method-assign]
    elif point == "state_write":
        atomic = search.state.atomic_path

        @contextlib.contextmanager
        def torn_write(path: Any) -> Any:
            with atomic(path) as tmp:
                yield tmp
                if due():  # half of the temp file written, then the kill
                    with open(tmp, "r+b") as fh:
                        fh.truncate(os.path.getsize(tmp) // 2)
                    _kill_group()

        search.state.atomic_path = torn_write  # type: ignore[attr-defined]
    else:
        raise ValueError(f"unknown kill point {point!r}, expected one of {DRIVER_KILL_POINTS}")


WRITE_FAULTS = ("readonly_record", "full_disk_record", "full_disk_state")


def install_write_fault(kind: str, at: int) -> None:
    """Make the driver's writes fail from the `at`-th on, as a record made read-only (chmod
    444 stops a non-root driver) or a full disk does: the record's append raises SQLite's
    error, or the controller state's write raises OSError(ENOSPC)."""
    import sqlite3

    import search.state
    from results import TrialStore

    count = {"n": 0}

    def failing() -> bool:
        count["n"] += 1
        return count["n"] >= at

    if kind in ("readonly_record", "full_disk_record"):
        append = TrialStore.append
        message = "attempt to write a readonly database" if kind == "readonly_record" else "database or disk is full"

        def append_or_fail(self: Any, record: Any) -> bool:
            if failing():
                raise sqlite3.OperationalError(message)
            return append(self, record)

        TrialStore.append = append_or_fail  # type: ignore[method-assign]
    elif kind == "full_disk_state":
        atomic = search.state.atomic_path

        @contextlib.contextmanager
        def no_space(path: Any) -> Any:
            if failing():
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            with atomic(path) as tmp:
                yield tmp

        search.state.atomic_path = no_space  # type: ignore[attr-defined]
    else:
        raise ValueError(f"unknown write fault {kind!r}, expected one of {WRITE_FAULTS}")


def driver_main(spec_path: str) -> int:
    """`_driver SPEC.json`: run_search(spec.cfg) with the spec's trial faults and kill hook."""
    spec = json.loads(Path(spec_path).read_text())
    os.environ["NASFPN_DRIVER_PGID"] = str(os.getpgid(0))
    os.environ.update(spec.get("env", {}))  # e.g. Ray's memory monitor settings, before Ray starts
    faults = dict(spec.get("faults", {}))
    if spec.get("kill"):
        install_kill_hook(spec["kill"], spec.get("kill_at", 1), spec["marker_dir"])
    if spec.get("kill") == "during_trial":
        faults[spec.get("kill_at", 1)] = "kill_driver"
    if spec.get("write_fault"):
        install_write_fault(spec["write_fault"], spec.get("write_fault_at", 1))
    from search.run import run_and_report

    trainable = faulty_trial(faults, spec["marker_dir"], seconds=spec.get("seconds", 1.0))
    return run_and_report(spec["cfg"], trainable)  # the exit codes and messages of `python -m search.run`


def start_driver(spec: dict[str, Any], work: Path) -> subprocess.Popen[str]:
    """Start `python -m benchmarks.reliability _driver SPEC` in its own process group."""
    spec_path = work / f"spec-{spec['cfg']['name']}.json"
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "benchmarks.reliability", "_driver", str(spec_path)]
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(cmd, cwd=root, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def finish_driver(proc: subprocess.Popen[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Wait for a started driver; whatever is left of its group (its Ray cluster) is killed."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_driver(spec: dict[str, Any], work: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m benchmarks.reliability _driver SPEC` in its own process group."""
    return finish_driver(start_driver(spec, work), timeout)


# -- scenarios -----------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the fault table."""

    scenario: str
    injected: int
    survived: int
    lost: int = 0
    note: str = ""
    problems: list[str] = field(default_factory=list)
    twice: int = 0  # trainings completed again for a step already recorded


def scenario_worker_kill(work: Path, budget: int, kill_steps: list[int]) -> Row:
    """SIGKILL the worker mid-trial on the first attempt of `kill_steps` (tiny proxy)."""
    from search.driver import run_search

    cfg = compose(work, "name=worker-kill", f"num_trials={budget}", "concurrency=2", "max_retries=1")
    markers = work / "markers-worker"
    markers.mkdir()
    run_search(cfg, faulty_trial(dict.fromkeys(kill_steps, "worker_kill"), str(markers), proxy=True, seconds=2.0))
    check = check_complete(work / "worker-kill", cfg)
    killed = sum(first_attempt_used(markers, f"worker_kill-{s}") for s in kill_steps)
    by_step = {r.step: r for r in check["records"]}
    ok = [s for s in kill_steps if s in by_step and by_step[s].status == TrialStatus.OK]
    problems = check["problems"] + [f"step {s} not ok after retry" for s in kill_steps if s not in ok]
    return Row("worker SIGKILL mid-trial (tiny proxy)", killed, len(ok) if not check["problems"] else 0,
               check["lost"], f"{check['trained']}/{budget} trained, retried steps {ok}", problems)  # fmt: skip


def first_attempt_used(marker_dir: Path, key: str) -> bool:
    return (marker_dir / key).exists()


def scenario_oom_kill(work: Path, budget: int) -> Row:
    """Ray's memory monitor kills every trial worker (its threshold set to 1% of the node's
    memory): each attempt is lost to OOM, retried, then recorded as failed; the driver
    goes on and exits 0. Before, the first OOM kill during a trial ended the search with
    RuntimeError('Caught unexpected exception ... OutOfMemoryError')."""
    name = "oom-kill"
    markers = work / f"markers-{name}"
    markers.mkdir()
    cfg = compose(work, f"name={name}", f"num_trials={budget}", "concurrency=1", "max_retries=1")
    # every 5 s the monitor kills the newest worker: inside one of the trial actor's tasks
    # (the case that ended the search) or while the actor starts
    env = {"RAY_memory_usage_threshold": "0.01", "RAY_memory_monitor_refresh_ms": "5000"}
    done = run_driver({"cfg": cfg, "marker_dir": str(markers), "seconds": 8.0, "env": env}, work)
    records = read_records(work / name)
    problems = [] if done.returncode == 0 else [f"driver exit {done.returncode}: {last_line(done.stderr)}"]
    oom = [r for r in records if r.status == TrialStatus.FAILED and "memory" in (r.error or "")]
    # 'OutOfMemoryError: ...' is the error of a killed actor task, converted by
    # search/lost_workers.py (it ended the search before); a kill while the actor starts
    # reaches Tune as a dead actor
    in_task = sum((r.error or "").startswith("OutOfMemoryError") for r in oom)
    if len(records) != budget or len(oom) != budget:
        problems.append(f"{len(records)} records, {len(oom)} failed by OOM, of {budget}")
    note = f"{len(oom)}/{budget} recorded failed (OOM; {in_task} killed inside a task), exit {done.returncode}"
    return Row("worker killed by Ray's OOM monitor", budget, int(not problems) * len(oom), 0, note, problems)


def scenario_driver_kill(work: Path, point: str, budget: int) -> Row:
    """Kill the driver at `point`, run the same command again, check nothing was lost."""
    name = f"driver-{point.replace('_', '-')}"
    overrides = [f"name={name}", f"num_trials={budget}", "concurrency=2", "controller.batch_size=2"]
    cfg = compose(work, *overrides)
    markers = work / f"markers-{name}"
    markers.mkdir()
    at = {"during_trial": 3, "inside_insert": 3, "after_append": 3, "controller_update": 2, "state_write": 6}[point]
    spec = {"cfg": cfg, "kill": point, "kill_at": at, "marker_dir": str(markers), "seconds": 1.5}
    first = run_driver(spec, work)
    run_dir = work / name
    problems = []
    if first.returncode != -signal.SIGKILL:
        problems.append(f"first run ended with {first.returncode}, not killed: {first.stderr[-300:]}")
    before = read_records(run_dir)
    pending_at_kill = controller_stats(run_dir, cfg)["num_pending"] if (run_dir / "controller_state.pt").exists() else 0
    again = run_driver(spec, work)
    if again.returncode != 0:
        problems.append(f"resume failed ({again.returncode}): {again.stderr.strip().splitlines()[-1:]}")
        return Row(f"driver SIGKILL: {point.replace('_', ' ')}", 1, 0, len(before), "", problems)
    check = check_complete(run_dir, cfg, before)
    problems += check["problems"]
    note = f"{len(before)} recorded at kill, {pending_at_kill} pending; then {check['trained']}/{budget}"
    twice = trained_twice(markers, check["records"])
    problems += [f"{twice} trained twice"] if twice else []
    return Row(f"driver SIGKILL: {point.replace('_', ' ')}", 1, int(not problems), check["lost"], note, problems,
               twice)  # fmt: skip


def trained_twice(marker_dir: Path, records: list[Any]) -> int:
    """Attempts that started training a step after its record was made (0: no finished trial
    was trained again). A record's created_at is when its trial finished, in the driver."""
    finished: dict[int, float] = {}
    for r in records:
        if not r.cache_hit:
            finished[r.step] = min(finished.get(r.step, r.created_at), r.created_at)
    again = 0
    for marker in marker_dir.glob("attempt-*"):
        _, step, start_ns, _ = marker.name.split("-")
        if int(step) in finished and int(start_ns) / 1e9 > finished[int(step)]:
            again += 1
    return again


def last_line(text: str) -> str:
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def scenario_write_failure(work: Path, kind: str) -> Row:
    """A finished 4-trial run resumed with num_trials=6 while its writes fail (`kind`, see
    install_write_fault): the driver must stop with exit 1 and one line, keep the finished
    trial (journal), and the same command must then finish the budget."""
    name = f"write-{kind.replace('_', '-')}"
    markers = work / f"markers-{name}"
    markers.mkdir()
    base = [f"name={name}", "concurrency=2", "controller.batch_size=2"]
    first = run_driver({"cfg": compose(work, *base, "num_trials=4"), "marker_dir": str(markers), "seconds": 1.0}, work)
    cfg = compose(work, *base, "num_trials=6")
    at = 3 if kind == "full_disk_state" else 1  # the state: saved at each ask and tell; the 3rd is a tell
    spec = {"cfg": cfg, "marker_dir": str(markers), "seconds": 1.0, "write_fault": kind, "write_fault_at": at}
    faulty = run_driver(spec, work)
    run_dir = work / name
    journal = run_dir / "trials.pending.jsonl"
    from search.journal import PendingJournal

    before = read_records(run_dir) + PendingJournal(run_dir).pending()
    message = last_line(faulty.stderr)
    problems = []
    if first.returncode != 0:
        problems.append(f"the 4-trial run failed ({first.returncode}): {last_line(first.stderr)}")
    if faulty.returncode != 1 or not message.startswith("error: ") or "run the same command again" not in message:
        problems.append(f"write fault: rc {faulty.returncode}, last line {message!r}")
    if "Traceback" in faulty.stderr:
        problems.append("write fault: a traceback")
    kept = len(before) - 4
    del spec["write_fault"]
    again = run_driver(spec, work)
    if again.returncode != 0:
        problems.append(f"resume failed ({again.returncode}): {last_line(again.stderr)}")
        return Row(f"write fails: {kind.replace('_', ' ')}", 1, 0, kept, message[:80], problems)
    if journal.exists():
        problems.append("the journal was not replayed")
    check = check_complete(run_dir, cfg, before)
    twice = trained_twice(markers, check["records"])
    problems += check["problems"] + ([f"{twice} trained twice"] if twice else [])
    note = f"exit 1 after {kept} more finished; then {check['trained']}/6; {message[7:80]}..."
    return Row(f"write fails: {kind.replace('_', ' ')}", 1, int(not problems), check["lost"], note, problems, twice)


def scenario_signal(work: Path, signum: int, to_group: bool, budget: int = 6) -> Row:
    """SIGINT/SIGTERM to a driver mid-search (to its pid, or to its whole process group as a
    terminal's Ctrl-C does): it must stop cleanly with 128 + signum, in one line, keep every
    finished trial, and the same command must finish the budget."""
    name = f"signal-{signal.Signals(signum).name.lower()}" + ("-group" if to_group else "")
    markers = work / f"markers-{name}"
    markers.mkdir()
    cfg = compose(work, f"name={name}", f"num_trials={budget}", "concurrency=2", "controller.batch_size=2")
    spec = {"cfg": cfg, "marker_dir": str(markers), "seconds": 2.0}
    run_dir = work / name
    proc = start_driver(spec, work)
    try:
        deadline = time.monotonic() + 240
        while count_records(run_dir) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        (os.killpg if to_group else os.kill)(proc.pid, signum)
    finally:
        stopped = finish_driver(proc)
    before = read_records(run_dir)
    message = last_line(stopped.stderr)
    problems = []
    if stopped.returncode != 128 + signum or "run the same command again" not in message:
        problems.append(f"rc {stopped.returncode}, last line {message!r}")
    if any(w in stopped.stderr for w in ("Traceback", "SIGABRT", "core dumped", "*** ")):
        problems.append("a traceback or stack dump: " + stopped.stderr[-300:])
    again = run_driver(spec, work)
    if again.returncode != 0:
        problems.append(f"resume failed ({again.returncode}): {last_line(again.stderr)}")
        return Row(f"driver {signal.Signals(signum).name}", 1, 0, 0, message[:60], problems)
    check = check_complete(run_dir, cfg, before)
    twice = trained_twice(markers, check["records"])
    problems += check["problems"] + ([f"{twice} trained twice"] if twice else [])
    target = "process group" if to_group else "driver"
    note = f"exit {stopped.returncode} with {len(before)} recorded; then {check['trained']}/{budget}"
    return Row(f"{signal.Signals(signum).name} to the {target} mid-search", 1, int(not problems), check["lost"], note,
               problems, twice)  # fmt: skip


def scenario_trial_failures(work: Path, budget: int) -> Row:
    """Non-finite loss, an always-raising trial and a hung trial, in one search."""
    from search.driver import run_search

    cfg = compose(work, "name=trial-faults", f"num_trials={budget}", "concurrency=2", "max_retries=1",
                  "trial_timeout_s=4", "failure_reward=-1.0")  # fmt: skip
    markers = work / "markers-trials"
    markers.mkdir()
    faults = {1: "nonfinite", 2: "raise", 3: "hang"}
    run_search(cfg, faulty_trial(faults, str(markers), seconds=0.5))
    check = check_complete(work / "trial-faults", cfg)
    by_step = {r.step: r for r in check["records"]}
    expect = {
        1: (TrialStatus.NONFINITE, "non-finite loss nan"),
        2: (TrialStatus.FAILED, "always raises"),
        3: (TrialStatus.TIMEOUT, "4 s limit"),
    }
    survived, problems = 0, list(check["problems"])
    for step, (status, words) in expect.items():
        r = by_step.get(step)
        if r and r.status == status and r.reward is None and words in (r.error or ""):
            survived += 1
        else:
            problems.append(f"step {step}: {r and (r.status, r.error)} (expected {status}, '{words}')")
    if check["stats"]["num_failed"] != len(expect):
        problems.append(f"controller counted {check['stats']['num_failed']} failure rewards, expected {len(expect)}")
    if check["problems"]:
        survived = 0
    note = f"{check['trained']}/{budget} trained; " + ", ".join(f"{by_step[s].status}" for s in expect if s in by_step)
    return Row("trial: non-finite loss, raises, past timeout", len(expect), survived, check["lost"], note, problems)


def one_line_error(r: subprocess.CompletedProcess[str], words: str) -> bool:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    return r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr and words in lines[0]


def damage_variants() -> dict[str, Callable[[Path], None]]:
    """Ways a record file's tail gets damaged (each applied to a closed, checkpointed file)."""

    def garbage_tail(p: Path) -> None:
        with open(p, "ab") as f:
            f.write(b"\x00torn write\x17" * 37)

    def cut_mid_page(p: Path) -> None:
        os.truncate(p, p.stat().st_size - 1500)

    def scrambled_last_page(p: Path) -> None:
        with open(p, "r+b") as f:
            f.seek(-4096 + 200, os.SEEK_END)
            f.write(bytes(range(256)) * 8)

    return {"garbage tail": garbage_tail, "cut mid-page": cut_mid_page, "scrambled last page": scrambled_last_page}


def replace_bytes(path: Path, old: bytes, new: bytes, count: int = -1) -> int:
    """Overwrite `old` in the file with `new` (same length; every one, or the first `count`),
    as damage inside a page that leaves SQLite's structure intact does; returns how many."""
    assert len(old) == len(new)
    data = path.read_bytes()
    found = data.count(old) if count < 0 else min(count, data.count(old))
    path.write_bytes(data.replace(old, new, count))
    return found


def random_page_damage(path: Path, seed: int, page: int | None = None) -> int:
    """`dd` 64 random bytes into a page of the record (by default a random one after the
    schema page); returns the page number."""
    import random

    rng = random.Random(seed)
    size = path.stat().st_size
    page_size = int.from_bytes(path.read_bytes()[16:18], "big")
    page = page if page is not None else rng.randrange(1, size // page_size)
    with open(path, "r+b") as f:
        f.seek(page * page_size + rng.randrange(0, page_size - 64))
        f.write(rng.randbytes(64))
    return page


def scenario_damaged_record(work: Path, source_run: Path, cfg: dict[str, Any]) -> tuple[Row, int, int]:
    """Damage a finished run's record: refused by both CLIs, recoverable, earlier records intact.

    Returns the row and (bad inputs tried, clear errors given)."""
    good = read_records(source_run)
    tried = clear = 0
    problems: list[str] = []
    survived = 0
    for kind, damage in damage_variants().items():
        run_dir = work / f"damaged-{kind.replace(' ', '-')}"
        shutil.copytree(source_run, run_dir, ignore=shutil.ignore_patterns("tune"))
        db = run_dir / "trials.sqlite"
        damage(db)
        search_cmd = [sys.executable, "-m", "search.run", f"storage_path={work}", f"name={run_dir.name}",
                      "proxy_task=tiny", "wandb.mode=disabled", f"num_trials={cfg['num_trials'] + 2}"]  # fmt: skip
        top_cmd = [sys.executable, "-m", "results", "top", str(run_dir)]
        ok = True
        for cmd in (search_cmd, top_cmd):
            tried += 1
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=Path(__file__).parent.parent)
            if one_line_error(r, "trial record"):
                clear += 1
            else:
                ok = False
                problems.append(f"{kind}: {' '.join(cmd[2:4])} -> rc {r.returncode}: {r.stderr.strip()[-300:]}")
        recovered = recover(db, run_dir / "recovered.sqlite")
        originals = {r.trial_id: r for r in good}  # rows after a damaged page are kept too: in order, unchanged
        kept = [r.trial_id for r in recovered]
        if kept != [r.trial_id for r in good if r.trial_id in kept] or not all(
            r.same_trial(originals[r.trial_id]) for r in recovered if r.trial_id in originals
        ):
            ok = False
            problems.append(f"{kind}: recovered records differ from the originals")
        lost = len(good) - len(recovered)
        if lost > len(good) // 4:  # at most the records on the damaged last pages are gone
            ok = False
            problems.append(f"{kind}: recovery kept {len(recovered)} of {len(good)}")
        survived += ok
    row = Row("record file damaged at its tail", len(damage_variants()), survived, 0,
              f"{len(good)} records; refused by search.run and results top; readable rows salvaged",
              problems)  # fmt: skip
    return row, tried, clear


def scenario_page_damage(work: Path, source_run: Path, cfg: dict[str, Any], seeds: int) -> tuple[Row, int, int]:
    """Damage inside a page of a finished run's record, which SQLite's integrity check does
    not see: non-UTF-8 bytes in one row, a garbled settings value, and `seeds` times 64 random
    bytes in a random page (dd). `search.run` and `results top` must answer in one line (a
    random change can also hit only numbers and pass unseen: then they run normally), and
    recovery must keep the settings and every readable row.

    Returns the row and (bad inputs tried, clear answers given)."""
    good = read_records(source_run)
    variants: dict[str, Callable[[Path], Any]] = {
        "non-UTF-8 bytes in one row": lambda db: _damage_one_row(db, good[len(good) // 2]),
        "garbled settings JSON": lambda db: replace_bytes(db, b'"baseline_decay"', b'{baseline_decay"', count=1),
    }
    for seed in range(seeds):
        variants[f"64 random bytes, seed {seed}"] = lambda db, seed=seed: random_page_damage(db, seed)
    tried = clear = survived = 0
    problems: list[str] = []
    for kind, damage in variants.items():
        run_dir = work / f"page-{kind.replace(' ', '-').replace(',', '')}"
        shutil.copytree(source_run, run_dir, ignore=shutil.ignore_patterns("tune", "driver.lock"))
        db = run_dir / "trials.sqlite"
        damage(db)
        search_cmd = [sys.executable, "-m", "search.run", f"storage_path={work}", f"name={run_dir.name}",
                      "proxy_task=tiny", "wandb.mode=disabled", f"num_trials={cfg['num_trials']}"]  # fmt: skip
        ok = True
        for cmd in (search_cmd, [sys.executable, "-m", "results", "top", str(run_dir)]):
            tried += 1
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=Path(__file__).parent.parent)
            # undetected damage (a number changed) may let search.run go on to another one-line refusal
            if r.returncode == 0 and "Traceback" not in r.stderr or one_line_error(r, ""):
                clear += 1
            else:
                ok = False
                problems.append(f"{kind}: {' '.join(cmd[2:4])} -> rc {r.returncode}: {r.stderr.strip()[-300:]}")
        from results.recover import recover_record

        salvage = recover_record(db, run_dir / "recovered.sqlite")
        kept = {r.trial_id for r in salvage.records}
        if not all(r.trial_id in kept or r.trial_id in _row_ids(salvage.lost_rows, good) for r in good):
            ok = False
            problems.append(f"{kind}: a readable row was not recovered")
        settings = {"strategy", "config"}
        # each setting salvaged or reported unreadable; the row damage must cost no setting
        whole = "(the whole settings table)" in salvage.lost_meta
        if not (whole or set(salvage.meta_keys) | set(salvage.lost_meta) == settings) or (
            kind == "non-UTF-8 bytes in one row" and set(salvage.meta_keys) != settings
        ):
            ok = False
            problems.append(f"{kind}: settings kept {salvage.meta_keys}, reported lost {salvage.lost_meta}")
        survived += ok
    row = Row("record damaged inside a page (integrity check passes)", len(variants), survived, 0,
              f"{len(good)} records; one-line refusal or a normal run; settings and readable rows salvaged",
              problems)  # fmt: skip
    return row, tried, clear


def _damage_one_row(db: Path, record: Any) -> None:
    # the "hash" line inside the row's genotype JSON (no index holds it): not UTF-8 any more
    h = record.genotype_hash.encode()
    assert replace_bytes(db, b'"hash": "' + h, b'"hash": "' + b"\xff" * len(h), count=1) == 1


def _row_ids(seqs: list[int], good: list[Any]) -> set[str]:
    """Trial ids of the rows `recover` reported unreadable (seq is 1-based insertion order)."""
    return {good[s - 1].trial_id for s in seqs if 0 < s <= len(good)}


def recover(db: Path, out: Path) -> list[Any]:
    """Salvage the readable rows of a damaged record (what `python -m results recover` does)."""
    from results.recover import recover_record

    return recover_record(db, out).records


def scenario_torn_wal(work: Path, records: list[Any]) -> Row:
    """A driver killed mid-commit leaves a torn WAL tail: SQLite drops it, the rest stays."""
    from results import TrialStore

    db = work / "torn-wal" / "trials.sqlite"
    store = TrialStore(db)
    for r in records:
        store.append(r)
    snapshot = work / "torn-wal-copy"
    snapshot.mkdir()
    for suffix in ("", "-wal"):  # copied while the writer holds the WAL, as a kill -9 leaves it
        shutil.copy(f"{db}{suffix}", f"{snapshot / 'trials.sqlite'}{suffix}")
    store.close()
    wal = snapshot / "trials.sqlite-wal"
    os.truncate(wal, wal.stat().st_size - 700)  # the last commit torn in the middle of a frame
    kept = read_records(snapshot)
    ok = [r.trial_id for r in kept] == [r.trial_id for r in records[: len(kept)]] and len(kept) == len(records) - 1
    problems = [] if ok else [f"torn WAL: kept {len(kept)} of {len(records)}"]
    return Row("record WAL torn mid-commit", 1, int(ok), 0,
               f"last (uncommitted) append dropped, {len(kept)} earlier intact", problems)  # fmt: skip


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux /proc; psutil is not a dependency)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def scenario_soak(work: Path, trials: int) -> tuple[Row, dict[str, float]]:
    """Hundreds of trivial trials in one driver: RSS sampled after every trial."""
    from search.driver import run_search
    from search.searcher import ControllerSearcher

    cfg = compose(work, "name=soak", f"num_trials={trials}", "concurrency=2")
    samples: list[tuple[int, float, float]] = []
    finish = ControllerSearcher._finish

    def finish_and_sample(self: Any, sample: Any, record: Any) -> None:
        finish(self, sample, record)
        samples.append((len(samples) + 1, rss_mb(), time.monotonic()))

    rss_start = rss_mb()
    ControllerSearcher._finish = finish_and_sample  # type: ignore[method-assign]
    try:
        run_search(cfg, faulty_trial({}, str(work), seconds=0.0))
    finally:
        ControllerSearcher._finish = finish  # type: ignore[method-assign]
    check = check_complete(work / "soak", cfg)
    tenth = max(1, len(samples) // 10)
    warm = samples[tenth - 1][1]
    end = samples[-1][1]
    rate = lambda part: (part[-1][2] - part[0][2]) / max(1, len(part) - 1)  # noqa: E731
    figures = {
        "trials": len(samples),
        "rss_before_mb": rss_start,
        "rss_first_mb": samples[0][1],
        "rss_warm_mb": warm,
        "warm_at": tenth,
        "rss_end_mb": end,
        "rss_max_mb": max(s[1] for s in samples),
        "growth_mb_per_100": (end - warm) / max(1, len(samples) - tenth) * 100,
        "s_per_trial_first": rate(samples[: 2 * tenth]),
        "s_per_trial_last": rate(samples[-2 * tenth :]),
    }
    row = Row(f"soak: {trials} trivial trials, one driver", 0, int(not check["problems"]), check["lost"],
              f"{check['trained']}/{trials} trained", check["problems"])  # fmt: skip
    return row, figures


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_driver"]:
        return driver_main(argv[1])
    p = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer kill points and a shorter soak (~5 min)")
    p.add_argument("--keep", default=None, help="keep the runs in this directory (default: a temp dir)")
    args = p.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="nasfpn-reliability-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NASFPN_CACHE", str(work / "cache"))
    points = ("during_trial", "after_append", "controller_update") if args.quick else DRIVER_KILL_POINTS
    soak_trials = 100 if args.quick else 300
    rows: list[Row] = []
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.monotonic()
        print(f"[reliability] {name} ...", file=sys.stderr, flush=True)
        out = fn()
        timings[name] = time.monotonic() - start
        return out

    rows.append(timed("worker kill", lambda: scenario_worker_kill(work, 4 if args.quick else 6, [1, 3])))
    rows.append(timed("OOM kill", lambda: scenario_oom_kill(work, 2)))
    for point in points:
        rows.append(timed(f"driver kill {point}", lambda point=point: scenario_driver_kill(work, point, 8)))
    for sig, group in ((signal.SIGTERM, False), (signal.SIGINT, True)):
        rows.append(timed(f"{sig.name}", lambda sig=sig, group=group: scenario_signal(work, sig, group)))
    for kind in WRITE_FAULTS if not args.quick else WRITE_FAULTS[:1]:
        rows.append(timed(f"write fault {kind}", lambda kind=kind: scenario_write_failure(work, kind)))
    rows.append(timed("trial failures", lambda: scenario_trial_failures(work, 6)))
    source = work / "driver-after-append"
    source_cfg = compose(work, "name=driver-after-append", "num_trials=8")
    row, tried, clear = timed("damaged record", lambda: scenario_damaged_record(work, source, source_cfg))
    rows.append(row)
    row, tried2, clear2 = timed("page damage", lambda: scenario_page_damage(work, source, source_cfg, 4))
    rows.append(row)
    tried, clear = tried + tried2, clear + clear2
    rows.append(timed("torn WAL", lambda: scenario_torn_wal(work, read_records(source))))
    soak_row, soak = timed("soak", lambda: scenario_soak(work, soak_trials))
    rows.append(soak_row)
    print_table(rows, tried, clear, soak, timings)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(not r.problems and r.lost == 0 and r.twice == 0 for r in rows) else 1


def print_table(rows: list[Row], tried: int, clear: int, soak: dict[str, float], timings: dict[str, float]) -> None:
    print(f"\n{'fault':<52} {'injected':>8} {'survived':>8} {'lost':>5} {'twice':>5}  note")
    for r in rows:
        print(f"{r.scenario:<52} {r.injected:>8} {r.survived:>8} {r.lost:>5} {r.twice:>5}  {r.note}")
        for problem in r.problems:
            print(f"{'':<52} PROBLEM: {problem}")
    injected = sum(r.injected for r in rows)
    survived = sum(r.survived for r in rows if r.injected)
    lost, twice = sum(r.lost for r in rows), sum(r.twice for r in rows)
    print(f"{'total':<52} {injected:>8} {survived:>8} {lost:>5} {twice:>5}")
    print(f"bad record files given to the CLIs: {tried}, clear one-line answers: {clear}")
    print(
        f"soak: {soak['trials']:.0f} trials; driver RSS {soak['rss_before_mb']:.0f} MB before Ray,"
        f" {soak['rss_first_mb']:.0f} MB after trial 1, {soak['rss_warm_mb']:.0f} MB after trial"
        f" {soak['warm_at']:.0f}, {soak['rss_end_mb']:.0f} MB at the end (max {soak['rss_max_mb']:.0f});"
        f" {soak['growth_mb_per_100']:+.1f} MB per 100 trials after warm-up;"
        f" {soak['s_per_trial_first']:.2f} s/trial early, {soak['s_per_trial_last']:.2f} s/trial late"
    )
    print("wall: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f"; total {sum(timings.values()):.0f} s")


if __name__ == "__main__":
    sys.exit(main())
