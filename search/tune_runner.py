"""Ray Tune wiring: local or remote cluster, the trainable with its resources, one
experiment per driver session, retries, error capture, graceful Ctrl-C."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback, FailureConfig, RunConfig, TuneConfig, Tuner

from search.config import RayConfig, ResourcesConfig
from search.errors import SearchSetupError
from search.searcher import ControllerSearcher
from search.trainable import run_trial


class ErrorCapture(Callback):
    """Hands each crashed trial's last error line to the searcher, which records the trial then."""

    def __init__(self, searcher: ControllerSearcher) -> None:
        self.searcher = searcher

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        lines = [ln for ln in str(trial.error_file and _read(trial.error_file)).splitlines() if ln.strip()]
        self.searcher.record_failure(trial.trial_id, lines[-1][:500] if lines else None)

    def __getstate__(self) -> dict[str, Any]:
        return {"searcher": None}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def init_ray(ray_config: RayConfig) -> None:
    """Join `ray.address` or start a local cluster (no dashboard, workers inherit env)."""
    env = {k: os.environ[k] for k in ("WANDB_MODE", "WANDB_SILENT", "NASFPN_CACHE") if k in os.environ}
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": True,
        "runtime_env": {"env_vars": env},
        "configure_logging": True,
        "logging_level": "ERROR",
    }
    if ray_config.address not in (None, "local"):
        kwargs["address"] = ray_config.address
    else:
        kwargs.update(num_cpus=ray_config.num_cpus, num_gpus=ray_config.num_gpus)
    ray.init(**kwargs)


def run_tune(
    searcher: ControllerSearcher,
    trial_kwargs: dict[str, Any],
    *,
    run_dir: Path,
    trials: int,
    concurrency: int,
    resources: ResourcesConfig,
    ray_config: RayConfig,
    max_retries: int,
    time_budget_s: float | None,
    trainable: Callable[..., None] = run_trial,
    reuse_actors: bool = True,
) -> None:
    """Run up to `trials` trials with `searcher`, `concurrency` at a time (Tune stops early
    when `time_budget_s` runs out).

    `trainable(config, **trial_kwargs)` runs one trial (run_trial's arguments: task, seed,
    device, cpus, time_limit_s); benchmarks pass one of known cost. A crashed trial is
    retried `max_retries` times. Ray is joined or started from `ray_config` unless it runs."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress line instead
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    started_here = not ray.is_initialized()
    if started_here:
        try:
            init_ray(ray_config)
        except ConnectionError as e:
            raise SearchSetupError(f"cannot reach Ray at ray.address={ray_config.address!r}: {e}") from None
    tuner = Tuner(
        tune.with_resources(
            tune.with_parameters(trainable, **trial_kwargs), {"cpu": resources.cpus, "gpu": resources.gpus}
        ),
        tune_config=TuneConfig(
            search_alg=searcher,
            num_samples=trials,
            max_concurrent_trials=concurrency,
            time_budget_s=time_budget_s,
            reuse_actors=reuse_actors,
            trial_dirname_creator=lambda t: t.trial_id,
            trial_name_creator=lambda t: t.trial_id,
        ),
        run_config=RunConfig(
            name=f"session-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=str(run_dir / "tune"),
            failure_config=FailureConfig(max_failures=max_retries),
            callbacks=[ErrorCapture(searcher)],
            verbose=0,
        ),
    )
    try:
        tuner.fit()
    finally:
        searcher.flush_failures()
        sys.stderr.flush()
        if started_here:
            ray.shutdown()
