"""The search driver: resume, Ray Tune, and the end-of-search summary.

`run_search(cfg)` takes the resolved config as a plain dict (the Hydra entry point and the
tests both call it) and maps it to typed settings at once (search/settings.py). Everything
that can be checked before work starts is checked first, and raises SearchSetupError with
a one-line message; a new run's directory is made only after that (and after the data is
prepared), so a refused config leaves nothing behind. One driver drives a run at a time
(search/lock.py): a second is refused in one line naming the first.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import controller
from proxy_task import ProxyTaskConfig
from proxy_task.config import reward_settings
from results import RecordError, TrialRecord, TrialStore
from search.errors import SearchSetupError, SearchStopped
from search.journal import PendingJournal, record_line
from search.lock import RunLock
from search.progress import Progress
from search.searcher import ControllerSearcher, describe_write_error
from search.settings import SearchSettings
from search.signals import StopRequests
from search.state import load_state, rebuild, reconcile, save_state


def _not_writable(storage_path: str, reason: str | None) -> SearchSetupError:
    return SearchSetupError(
        f"storage_path {storage_path!r} is not writable ({reason}); pass storage_path=A_WRITABLE_DIR"
    )


def _run_path(storage_path: str, name: str) -> Path:
    """The run directory, not created here: its nearest existing ancestor must be a writable
    directory."""
    run_dir = Path(storage_path).expanduser().resolve() / name
    existing = run_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise _not_writable(storage_path, f"{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _not_writable(storage_path, f"{existing}: permission denied")
    return run_dir


def _make_run_dir(run_dir: Path, storage_path: str) -> None:
    """Create the run directory (if new) and prove that a file can be written in it."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise _not_writable(storage_path, e.strerror) from None


def _build_strategy(s: SearchSettings) -> controller.Strategy:
    try:
        return controller.build(
            s.strategy, s.space, **s.strategy_options, failure_reward=s.run.failure_reward, seed=s.run.seed
        )
    except (ValueError, TypeError) as e:
        raise SearchSetupError(f"bad controller settings: {e}") from None


def _check_ray_address(address: str | None) -> None:
    if address in (None, "auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError):
        raise SearchSetupError(
            f"ray.address={address!r} does not answer; start the head with `ray start --head --port=6379`"
            " or leave ray.address unset for a local cluster"
        ) from None


def _open_record(run_dir: Path, s: SearchSettings) -> TrialStore:
    """The run's record; a new one stores the strategy and config, an existing one must have
    been started with the same strategy and reward settings."""
    try:
        store = TrialStore(run_dir / "trials.sqlite")
    except RecordError as e:
        raise SearchSetupError(str(e)) from None
    try:
        started_with = store.get_meta("strategy")
        if started_with is None:
            store.set_meta("strategy", s.strategy)
            store.set_meta("strategy_label", controller.label(s.strategy, s.plain["controller"]))
            store.set_meta("config", s.plain)
            return store
        started_config = store.get_meta("config") or {}
    except RecordError as e:  # damaged meta (results/store.py says so and how to recover)
        store.close()
        raise SearchSetupError(str(e)) from None
    except (sqlite3.Error, OSError, ValueError) as e:
        store.close()
        raise SearchSetupError(
            f"{store.path}: {describe_write_error(e)}; check the record's permissions and disk space"
        ) from None
    problem = None
    if started_with != s.strategy:
        problem = f"controller={started_with}"
    else:
        changed = reward_settings_changed(started_config, s.plain)
        if changed:
            problem = ", ".join(changed[:3]) + (f" (and {len(changed) - 3} more)" if len(changed) > 3 else "")
    if problem:
        store.close()
        raise SearchSetupError(
            f"run {s.run.name!r} was started with {problem}; resume it with those settings or choose another name=..."
        )
    return store


def reward_settings_changed(started: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`KEY=VALUE` (as the run was started) for every setting that changes a trial's reward
    and differs between the stored config `started` and `now`: the trial seed, every
    proxy_task setting but paths, threads and workers (threads and latency_images count when
    the objective has a latency term) and every objective setting. A resumed run with any
    of them would mix rewards of two different tasks in one record. Keys only one side
    knows (older or newer versions) are not compared, except the proxy settings added
    later, which a record without them had at their earlier value. Which proxy settings
    change the reward is the proxy task's to say (`proxy_task.config.reward_settings`)."""

    objective = now.get("objective") or {}
    latency = bool(objective.get("enabled")) and objective.get("cost") == "latency"
    task_then = reward_settings(started.get("proxy_task") or {}, latency) if started.get("proxy_task") else {}
    return (
        _differing({k: started[k] for k in ("seed",) if k in started}, now, "")
        + _differing(task_then, now.get("proxy_task") or {}, "proxy_task.")
        + _differing(started.get("objective") or {}, objective, "objective.")
    )


def _resume(
    run_dir: Path, s: SearchSettings, strategy: controller.Strategy
) -> tuple[TrialStore, list[TrialRecord], list[controller.Sample]]:
    """Open an existing run: (record, its records, the samples to run again); the strategy
    continues from its checkpoint. Finished trials that an earlier session could not
    write (search/journal.py) are appended to the record first."""
    _make_run_dir(run_dir, s.run.storage_path)
    store = _open_record(run_dir, s)
    state_path = run_dir / "controller_state.pt"
    try:
        _replay_journal(store, run_dir)
        records = store.records()  # reconcile only tells the strategy: the record does not change here
        rerun = []
        if state_path.exists():
            try:
                load_state(strategy, state_path)
            except ValueError as e:
                raise SearchSetupError(str(e)) from None
            _check_record_not_behind(strategy, records, state_path)
            rerun = reconcile(strategy, {r.step: r for r in records})
        elif records:
            rerun = _rebuild(store, strategy, records, s, state_path)
    except RecordError as e:  # a damaged row found while reading (results/store.py)
        store.close()
        raise SearchSetupError(str(e)) from None
    except BaseException:
        store.close()
        raise
    return store, records, rerun


def _replay_journal(store: TrialStore, run_dir: Path) -> None:
    journal = PendingJournal(run_dir)
    try:
        n = journal.replay(store)
    except (ValueError, OSError, sqlite3.Error, RecordError) as e:
        cause = describe_write_error(e)
        raise SearchSetupError(
            f"{journal.path} holds finished trials that cannot be added to the record ({cause}); fix the cause"
            " (disk space, permissions) and run the same command again"
        ) from None
    if n:
        print(f"{n} finished trial(s) from {journal.path.name} added to the record", file=sys.stderr)


def _check_record_not_behind(strategy: controller.Strategy, records: list[TrialRecord], state_path: Path) -> None:
    """The state is saved after the record is written, so it never knows more than the record
    unless the record lost writes (its -wal file deleted or not copied after a kill).
    Resuming then would re-ask recorded steps and mix the two histories: refuse instead."""
    told = strategy.stats()["num_told"]
    if told > len(records):
        raise SearchSetupError(
            f"the record holds {len(records)} trials but {state_path.name} has been told {told}: the record lost"
            f" its latest writes (a lost trials.sqlite-wal?); restore that file, or delete {state_path} to rebuild"
            " the state from the record"
        )


def _rebuild(
    store: TrialStore,
    strategy: controller.Strategy,
    records: list[TrialRecord],
    s: SearchSettings,
    state_path: Path,
) -> list[controller.Sample]:
    """The controller checkpoint is gone but the record is there (e.g. only trials.sqlite was
    copied): replay the record into the fresh strategy (search/state.py) and save it."""
    started = store.get_meta("config") or {}
    changed = _differing(started.get("controller") or {}, s.plain["controller"], "controller.")
    changed += _differing(started.get("space") or {}, s.plain["space"], "space.")
    changed += _differing({k: started[k] for k in ("failure_reward",) if k in started}, s.plain, "")
    if changed:
        raise SearchSetupError(
            f"{state_path} is missing and the run was started with {', '.join(changed[:3])}; resume with"
            " those settings to rebuild it from the record"
        )
    concurrency = started.get("concurrency", s.run.concurrency)  # as the record was made
    try:
        rerun = rebuild(strategy, records, concurrency)
    except (ValueError, KeyError) as e:
        raise SearchSetupError(f"{state_path} is missing and the record cannot be replayed: {e}") from None
    save_state(strategy, state_path)
    print(f"{state_path.name} missing: rebuilt from the {len(records)} records", file=sys.stderr)
    return rerun


def _differing(then: dict[str, Any], now: dict[str, Any], prefix: str) -> list[str]:
    """`PREFIXKEY=THEN` for the keys both dicts hold whose values differ (tuples = lists)."""

    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    return [f"{prefix}{k}={then[k]}" for k in sorted(set(then) & set(now)) if plain(then[k]) != plain(now[k])]


def _prepare_data(task: ProxyTaskConfig) -> None:
    """Build the dataset and the frozen backbone once, in the driver, before workers start.

    Raises SearchSetupError for data that cannot be used (one line)."""
    from proxy_task import ProxyTask

    print(f"preparing proxy data ({task.name}) ...", file=sys.stderr, flush=True)
    try:
        ProxyTask(task, "cpu").prepare()
    except (OSError, ValueError) as e:  # DataError, missing files, malformed annotation JSON
        raise SearchSetupError(f"proxy_task data: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def run_search(cfg: dict[str, Any], trainable: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) the search described by `cfg`; returns a summary dict.

    `trainable` replaces the proxy-task trial (fault-injection tests and benchmarks);
    it takes the arguments of `search.trainable.run_trial`."""
    session_start = time.monotonic()
    s = SearchSettings.from_dict(cfg)
    strategy = _build_strategy(s)
    _check_ray_address(s.ray.address)
    run_dir = _run_path(s.run.storage_path, s.run.name)
    lock = RunLock(run_dir, s.run.name)  # one driver per run, held until this function returns
    try:
        lock.acquire()
    except OSError as e:
        raise _not_writable(s.run.storage_path, e.strerror) from None
    try:
        return _drive(s, strategy, run_dir, session_start, trainable, resume=not lock.created)
    finally:
        lock.release(discard=True)  # a refused new run leaves no directory behind


def _drive(
    s: SearchSettings,
    strategy: controller.Strategy,
    run_dir: Path,
    session_start: float,
    trainable: Callable[..., None] | None,
    resume: bool,
) -> dict[str, Any]:
    store, records, rerun = _resume(run_dir, s, strategy) if resume else (None, [], [])
    trained = [r for r in records if not r.cache_hit]
    remaining = s.run.num_trials - len(trained)
    print(
        f"run {run_dir}: {len(trained)}/{s.run.num_trials} trials done"
        + (f", {len(rerun)} to run again" if rerun else ""),
        file=sys.stderr,
    )
    summary: dict[str, Any] = {"run_dir": str(run_dir)}
    if store is not None and remaining <= 0:
        with store:
            summary.update(_finish(store, run_dir, s, None))
        return summary
    from search.tune_runner import check_gpus, connect_ray
    from search.wandb_logger import configure_env

    try:
        _prepare_data(s.task)
        configure_env(s.wandb.mode)  # before Ray starts: workers inherit WANDB_MODE
        with StopRequests() as stops:
            started_ray = connect_ray(s.ray)  # a refused start (no cluster, no GPU) leaves no record
            stops.install()  # ray.init replaced the SIGTERM handler
            try:
                check_gpus(s.resources, s.run.device)
                if store is None:  # a new run: everything that can refuse it has passed
                    _make_run_dir(run_dir, s.run.storage_path)
                    store = _open_record(run_dir, s)
                return _session(s, strategy, store, records, rerun, run_dir, session_start, trainable, stops,
                                summary, new_run=not resume)  # fmt: skip
            finally:
                if started_ray:
                    import ray

                    ray.shutdown()
    finally:
        if store is not None:
            store.close()


def _session(
    s: SearchSettings,
    strategy: controller.Strategy,
    store: TrialStore,
    records: list[TrialRecord],
    rerun: list[controller.Sample],
    run_dir: Path,
    session_start: float,
    trainable: Callable[..., None] | None,
    stops: StopRequests,
    summary: dict[str, Any],
    new_run: bool,
) -> dict[str, Any]:
    """One Tune session over the open record: W&B, the searcher, Tune, and why it stopped."""
    from search.tune_runner import run_tune

    trained = [r for r in records if not r.cache_hit]
    wandb_logger = _start_wandb(store, run_dir, s, new=new_run)
    searcher = ControllerSearcher(
        strategy,
        s.strategy,
        store,
        run_dir / "controller_state.pt",
        rerun,
        reevaluate_cached=s.run.reevaluate_cached,
        max_cache_hits=s.run.max_cache_hits,
        objective=vars(s.objective),
    )
    best = max((r.reward for r in records if r.reward is not None), default=None)
    # the time budget counts from the session start (data preparation included); Tune is
    # given at least 30 s
    deadline = (
        None if s.run.time_budget_s is None else max(session_start + s.run.time_budget_s, time.monotonic() + 30.0)
    )
    progress = Progress(s.run.num_trials, len(trained), best, sum(r.cache_hit for r in records), deadline)
    searcher.listeners.append(progress)
    if wandb_logger is not None:
        searcher.listeners.append(wandb_logger)
    start = time.monotonic()
    try:
        run_tune(
            searcher,
            {
                "task": s.task,
                "seed": s.run.seed,
                "device": s.run.device,
                "cpus": s.resources.cpus,
                "time_limit_s": s.run.trial_timeout_s,
            },  # fmt: skip
            run_dir=run_dir,
            trials=s.run.num_trials - len(trained),
            concurrency=s.run.concurrency,
            resources=s.resources,
            ray_config=s.ray,
            max_retries=s.run.max_retries,
            time_budget_s=None if deadline is None else max(30.0, deadline - time.monotonic()),
            stop_when=lambda: stops.signum is not None or searcher.write_error is not None,
            **({"trainable": trainable} if trainable else {}),
        )
    finally:
        progress.close()
    summary["wall_s"] = time.monotonic() - start
    summary["converged"] = searcher.converged
    if searcher.write_error is not None:
        if wandb_logger is not None:
            wandb_logger.close()
        raise SearchStopped(_write_failure(searcher, run_dir), exit_code=1)
    summary.update(_finish(store, run_dir, s, wandb_logger))
    if stops.signum is not None:
        name = signal.Signals(stops.signum).name
        raise SearchStopped(
            f"stopped by {name} with {summary['trials']}/{s.run.num_trials} trials trained, every finished trial"
            " kept; run the same command again to continue",
            exit_code=stops.exit_code,
        )
    return summary


def _start_wandb(store: TrialStore, run_dir: Path, s: SearchSettings, new: bool) -> Any:
    """The W&B listener (None when disabled). A W&B that does not start refuses the search in
    one line; a new run's empty record is removed then, so the refusal leaves nothing."""
    if s.wandb.mode == "disabled":
        return None
    from search.wandb_logger import WandbLogger

    w = s.wandb
    try:
        return WandbLogger(store, run_dir, s.run.name, s.plain, w.project, w.entity, w.top_k, w.table_every)
    except Exception as e:  # wandb raises UsageError, CommError, timeouts, ... in online mode
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        if new and store.count() == 0:
            store.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store.path}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(run_dir / "wandb", ignore_errors=True)
        raise SearchSetupError(
            f"wandb.mode={w.mode}: W&B did not start ({first[:200]}); run `wandb login` (or set"
            " WANDB_API_KEY), or use wandb.mode=offline and `wandb sync` later"
        ) from None


def _write_failure(searcher: ControllerSearcher, run_dir: Path) -> str:
    """The one-line message for a search stopped by a failed write; records that could be
    kept nowhere are printed on stdout first, as their last copy."""
    journal = searcher.journal
    where = ""
    if journal.saved:
        where = f"; {journal.saved} finished trial(s) kept in {journal.path}, added to the record on resume"
    if journal.unsaved:
        for record in journal.unsaved:
            print(record_line(record))
        where += (
            f"; {len(journal.unsaved)} finished trial(s) could not be saved anywhere: their records are printed above"
        )
    return (
        f"{searcher.write_error}; the search stopped{where}; fix the cause (disk space, permissions) and run"
        " the same command again"
    )


def _finish(store: TrialStore, run_dir: Path, s: SearchSettings, wandb_logger: Any) -> dict[str, Any]:
    from results.export import export_genotype
    from results.ranking import rank_architectures, text_table

    out: dict[str, Any] = {}
    records = store.records()
    trained = [r for r in records if not r.cache_hit]
    print(
        f"\n{len(trained)}/{s.run.num_trials} trials trained, {len(records) - len(trained)} cache hits,"
        f" {len(store.unique_hashes())} unique architectures"
    )
    best_path = run_dir / "best_genotype.json"
    if store.top(1):
        print(text_table(rank_architectures(records, s.run.top_k)))
        export_genotype(run_dir, best_path)
        out["best_genotype"] = str(best_path)
        print(f"best genotype: {best_path}")
    else:
        print("no trial has finished successfully yet: nothing to export")
    if wandb_logger is not None:
        wandb_dir = wandb_logger.finish(best_path if best_path.exists() else None)
        out["wandb_dir"] = wandb_dir
        if s.wandb.mode == "offline":
            print(f"W&B offline run: {wandb_dir}\n  upload with: wandb sync {wandb_dir}")
    remaining = s.run.num_trials - len(trained)
    if remaining > 0:
        print(f"{remaining} trials left: run the same command again to continue")
    out["trials"] = len(trained)
    out["cache_hits"] = len(records) - len(trained)
    return out
