"""The search driver: config -> objects, resume, Ray Tune, and the end-of-search summary.

`run_search(cfg)` takes the resolved config as a plain dict (the Hydra entry point and the
tests both call it). Everything that can be checked before work starts is checked first,
and raises SearchSetupError with a one-line message; a new run's directory is made only
after that (and after the data is prepared), so a refused config leaves nothing behind.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import controller
from proxy_task import ProxyTaskConfig
from results import RecordError, TrialStore
from search.config import controller_options
from search.errors import SearchSetupError
from search.progress import Progress
from search.searcher import ControllerSearcher
from search.state import load_state, rebuild, reconcile, save_state
from search.wandb_logger import MODES as WANDB_MODES
from space import SearchSpace


def _check_config(cfg: dict[str, Any]) -> None:
    checks = [
        (cfg["num_trials"] >= 1, f"num_trials={cfg['num_trials']}: must be >= 1"),
        (cfg["concurrency"] >= 1, f"concurrency={cfg['concurrency']}: must be >= 1"),
        (cfg["max_retries"] >= 0, f"max_retries={cfg['max_retries']}: must be >= 0"),
        (cfg["time_budget_s"] is None or cfg["time_budget_s"] > 0, "time_budget_s must be > 0 or null"),
        (cfg["trial_timeout_s"] is None or cfg["trial_timeout_s"] > 0, "trial_timeout_s must be > 0 or null"),
        (cfg["resources"]["cpus"] > 0, "resources.cpus must be > 0"),
        (cfg["resources"]["gpus"] >= 0, "resources.gpus must be >= 0"),
        (cfg["device"] in ("auto", "cpu", "cuda"), f"device={cfg['device']!r}: expected auto, cpu or cuda"),
        (cfg["objective"]["cost"] in ("macs", "latency"), "objective.cost: expected macs or latency"),
        (cfg["name"] and "/" not in cfg["name"], f"name={cfg['name']!r}: a non-empty name without '/'"),
        (cfg["top_k"] >= 1, f"top_k={cfg['top_k']}: must be >= 1"),
        (cfg["max_cache_hits"] >= 1, f"max_cache_hits={cfg['max_cache_hits']}: must be >= 1"),
        (
            not cfg["objective"]["enabled"] or cfg["objective"]["target"] > 0,
            f"objective.target={cfg['objective']['target']}: must be > 0",
        ),
        (
            cfg["wandb"]["mode"] in WANDB_MODES,
            f"wandb.mode={cfg['wandb']['mode']!r}: expected one of {', '.join(WANDB_MODES)}",
        ),
        (cfg["wandb"]["top_k"] >= 1, f"wandb.top_k={cfg['wandb']['top_k']}: must be >= 1"),
        (cfg["wandb"]["table_every"] >= 1, f"wandb.table_every={cfg['wandb']['table_every']}: must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise SearchSetupError(message)


def _not_writable(cfg: dict[str, Any], reason: str | None) -> SearchSetupError:
    return SearchSetupError(
        f"storage_path {cfg['storage_path']!r} is not writable ({reason}); pass storage_path=A_WRITABLE_DIR"
    )


def _run_path(cfg: dict[str, Any]) -> Path:
    """The run directory, not created here: its nearest existing ancestor must be a writable
    directory."""
    run_dir = Path(cfg["storage_path"]).expanduser().resolve() / cfg["name"]
    existing = run_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise _not_writable(cfg, f"{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _not_writable(cfg, f"{existing}: permission denied")
    return run_dir


def _make_run_dir(run_dir: Path, cfg: dict[str, Any]) -> None:
    """Create the run directory (if new) and prove that a file can be written in it."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise _not_writable(cfg, e.strerror) from None


def _build_strategy(cfg: dict[str, Any]) -> tuple[str, SearchSpace, controller.Strategy]:
    s = cfg["space"]
    try:
        space = SearchSpace(
            s["min_level"],
            s["max_level"],
            s["num_intermediate"],
            None if s["intermediate_levels"] is None else tuple(s["intermediate_levels"]),
            tuple(s["ops"]),
        )
        name, options = controller_options(cfg["controller"])
        strategy = controller.build(name, space, **options, failure_reward=cfg["failure_reward"], seed=cfg["seed"])
    except (ValueError, TypeError) as e:
        raise SearchSetupError(f"bad controller or space settings: {e}") from None
    return name, space, strategy


def _task(cfg: dict[str, Any]) -> dict[str, Any]:
    task = dict(cfg["proxy_task"])
    for key in ("scale_jitter", "anchor_ratios", "lr_milestones"):
        if isinstance(task.get(key), list):
            task[key] = tuple(task[key])
    try:
        ProxyTaskConfig(**task)
    except (TypeError, ValueError) as e:
        raise SearchSetupError(f"bad proxy_task settings: {e}") from None
    return task


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


def _open_record(run_dir: Path, strategy_name: str, cfg: dict[str, Any]) -> TrialStore:
    try:
        store = TrialStore(run_dir / "trials.sqlite")
    except RecordError as e:
        raise SearchSetupError(str(e)) from None
    started_with = store.get_meta("strategy")
    if started_with is None:
        store.set_meta("strategy", strategy_name)
        store.set_meta("config", cfg)
        return store
    problem = None
    if started_with != strategy_name:
        problem = f"controller={started_with}"
    else:
        changed = reward_settings_changed(store.get_meta("config") or {}, cfg)
        if changed:
            problem = ", ".join(changed[:3]) + (f" (and {len(changed) - 3} more)" if len(changed) > 3 else "")
    if problem:
        store.close()
        raise SearchSetupError(
            f"run {cfg['name']!r} was started with {problem}; resume it with those settings or choose another name=..."
        )
    return store


# Settings that do not change a trial's reward: they may differ when a run is resumed
# (another machine, another cache, more threads).
_FREE_TASK_KEYS = ("cache_dir", "data_root", "num_threads", "num_workers", "eval_every", "latency_images")


def reward_settings_changed(started: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`KEY=VALUE` (as the run was started) for every proxy_task / objective setting that
    differs between the stored config `started` and `now`; a resumed run with any of them
    would mix rewards of two different tasks in one record. Keys only one side knows
    (older or newer versions) are not compared."""

    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    out = []
    for section in ("proxy_task", "objective"):
        then, cur = started.get(section) or {}, now.get(section) or {}
        for key in sorted(set(then) & set(cur)):
            if section == "proxy_task" and key in _FREE_TASK_KEYS:
                continue
            if plain(then[key]) != plain(cur[key]):
                out.append(f"{section}.{key}={then[key]}")
    return out


def _resume(
    run_dir: Path, strategy_name: str, strategy: controller.Strategy, cfg: dict[str, Any]
) -> tuple[TrialStore, list[Any], list[Any]]:
    """Open an existing run: (record, its records, the trials to run again); the strategy
    continues from its checkpoint."""
    _make_run_dir(run_dir, cfg)
    store = _open_record(run_dir, strategy_name, cfg)
    state_path = run_dir / "controller_state.pt"
    try:
        records = store.records()  # reconcile only tells the strategy: the record does not change here
        rerun = []
        if state_path.exists():
            try:
                load_state(strategy, state_path)
            except ValueError as e:
                raise SearchSetupError(str(e)) from None
            rerun = reconcile(strategy, {r.step: r for r in records})
        elif records:
            rerun = _rebuild(store, strategy, records, cfg, state_path)
    except BaseException:
        store.close()
        raise
    return store, records, rerun


def _rebuild(
    store: TrialStore, strategy: controller.Strategy, records: list[Any], cfg: dict[str, Any], state_path: Path
) -> list[Any]:
    """The controller checkpoint is gone but the record is there (e.g. only trials.sqlite was
    copied): replay the record into the fresh strategy (search/state.py) and save it."""
    started = store.get_meta("config")
    if started is not None:
        then = (controller_options(started["controller"]), started["failure_reward"])
        now = (controller_options(cfg["controller"]), cfg["failure_reward"])
        if then != now:
            raise SearchSetupError(
                f"{state_path} is missing and the run was started with other controller options"
                f" ({then} vs now {now}); resume with the options it was started with"
            )
    try:
        rerun = rebuild(strategy, records, cfg["concurrency"])
    except (ValueError, KeyError) as e:
        raise SearchSetupError(f"{state_path} is missing and the record cannot be replayed: {e}") from None
    save_state(strategy, state_path)
    print(f"{state_path.name} missing: rebuilt from the {len(records)} records", file=sys.stderr)
    return rerun


def _prepare_data(task: dict[str, Any]) -> None:
    """Build the dataset and the frozen backbone once, in the driver, before workers start.

    Raises SearchSetupError for data that cannot be used (one line)."""
    from proxy_task.features import prepare_shared

    cfg = ProxyTaskConfig(**task)
    print(f"preparing proxy data ({cfg.name}) ...", file=sys.stderr, flush=True)
    try:
        prepare_shared(cfg)
    except (OSError, ValueError) as e:  # DataError, missing files, malformed annotation JSON
        raise SearchSetupError(f"proxy_task data: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def run_search(cfg: dict[str, Any], trainable: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) the search described by `cfg`; returns a summary dict.

    `trainable` replaces the proxy-task trial (fault-injection tests and benchmarks);
    it takes the arguments of `search.trainable.run_trial`."""
    session_start = time.monotonic()
    _check_config(cfg)
    strategy_name, _, strategy = _build_strategy(cfg)
    task = _task(cfg)
    _check_ray_address(cfg["ray"]["address"])
    run_dir = _run_path(cfg)
    state_path = run_dir / "controller_state.pt"
    store, records, rerun = _resume(run_dir, strategy_name, strategy, cfg) if run_dir.exists() else (None, [], [])
    trained = [r for r in records if not r.cache_hit]
    remaining = cfg["num_trials"] - len(trained)
    print(
        f"run {run_dir}: {len(trained)}/{cfg['num_trials']} trials done"
        + (f", {len(rerun)} to run again" if rerun else ""),
        file=sys.stderr,
    )
    if remaining > 0:
        _prepare_data(task)
    if store is None:  # a new run: everything that can refuse it has passed
        _make_run_dir(run_dir, cfg)
        store = _open_record(run_dir, strategy_name, cfg)
    summary: dict[str, Any] = {"run_dir": str(run_dir)}
    wandb_logger = None
    if remaining > 0:
        from search.tune_runner import run_tune
        from search.wandb_logger import WandbLogger, configure_env

        configure_env(cfg["wandb"]["mode"])
        searcher = ControllerSearcher(
            strategy,
            strategy_name,
            store,
            state_path,
            rerun,
            reevaluate_cached=cfg["reevaluate_cached"],
            max_cache_hits=cfg["max_cache_hits"],
            objective=dict(cfg["objective"]),
        )
        best = max((r.reward for r in records if r.reward is not None), default=None)
        budget = cfg["time_budget_s"]
        # the time budget counts from the session start; Tune is given at least 30 s (below)
        deadline = None if budget is None else max(session_start + budget, time.monotonic() + 30.0)
        progress = Progress(cfg["num_trials"], len(trained), best, sum(r.cache_hit for r in records), deadline)
        searcher.listeners.append(progress)
        if cfg["wandb"]["mode"] != "disabled":
            w = cfg["wandb"]
            wandb_logger = WandbLogger(
                store, run_dir, cfg["name"], cfg, w["project"], w["entity"], w["top_k"], w["table_every"]
            )
            searcher.listeners.append(wandb_logger)
        start = time.monotonic()
        if cfg["time_budget_s"] is not None:  # the budget covers preparation too
            cfg = {**cfg, "time_budget_s": max(30.0, cfg["time_budget_s"] - (start - session_start))}
        try:
            run_tune(searcher, cfg, task, run_dir, remaining, *([trainable] if trainable else []))
        finally:
            progress.close()
        summary["wall_s"] = time.monotonic() - start
        summary["converged"] = searcher.converged
    summary.update(_finish(store, run_dir, cfg, wandb_logger))
    store.close()
    return summary


def _finish(store: TrialStore, run_dir: Path, cfg: dict[str, Any], wandb_logger: Any) -> dict[str, Any]:
    from results.export import export_genotype
    from results.ranking import rank_architectures, text_table

    out: dict[str, Any] = {}
    records = store.records()
    trained = [r for r in records if not r.cache_hit]
    print(
        f"\n{len(trained)}/{cfg['num_trials']} trials trained, {len(records) - len(trained)} cache hits,"
        f" {len(store.unique_hashes())} unique architectures"
    )
    best_path = run_dir / "best_genotype.json"
    if store.top(1):
        print(text_table(rank_architectures(records, cfg["top_k"])))
        export_genotype(run_dir, best_path)
        out["best_genotype"] = str(best_path)
        print(f"best genotype: {best_path}")
    else:
        print("no trial has finished successfully yet: nothing to export")
    if wandb_logger is not None:
        wandb_dir = wandb_logger.finish(best_path if best_path.exists() else None)
        out["wandb_dir"] = wandb_dir
        if cfg["wandb"]["mode"] == "offline":
            print(f"W&B offline run: {wandb_dir}\n  upload with: wandb sync {wandb_dir}")
    remaining = cfg["num_trials"] - len(trained)
    if remaining > 0:
        print(f"{remaining} trials left: run the same command again to continue")
    out["trials"] = len(trained)
    out["cache_hits"] = len(records) - len(trained)
    return out
