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


def init_ray(cfg: dict[str, Any]) -> None:
    """Join `ray.address` or start a local cluster (no dashboard, workers inherit env)."""
    r = cfg["ray"]
    env = {k: os.environ[k] for k in ("WANDB_MODE", "WANDB_SILENT", "NASFPN_CACHE") if k in os.environ}
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": True,
        "runtime_env": {"env_vars": env},
        "configure_logging": True,
        "logging_level": "ERROR",
    }
    if r["address"] not in (None, "local"):
        kwargs["address"] = r["address"]
    else:
        kwargs.update(num_cpus=r["num_cpus"], num_gpus=r["num_gpus"])
    ray.init(**kwargs)


def run_tune(
    searcher: ControllerSearcher,
    cfg: dict[str, Any],
    task: dict[str, Any],
    run_dir: Path,
    trials: int,
    trainable: Callable[..., None] = run_trial,
    reuse_actors: bool = True,
) -> None:
    """Run up to `trials` trials with `searcher` (Tune stops early on the time budget).

    `trainable` takes run_trial's arguments; benchmarks pass one of known cost."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress line instead
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    started_here = not ray.is_initialized()
    if started_here:
        try:
            init_ray(cfg)
        except ConnectionError as e:
            raise SearchSetupError(f"cannot reach Ray at ray.address={cfg['ray']['address']!r}: {e}") from None
    res = cfg["resources"]
    with_params = tune.with_parameters(
        trainable,
        task=task,
        seed=cfg["seed"],
        device=cfg["device"],
        cpus=res["cpus"],
        time_limit_s=cfg["trial_timeout_s"],
    )
    resources = {"cpu": res["cpus"], "gpu": res["gpus"]}
    tuner = Tuner(
        tune.with_resources(with_params, resources),
        tune_config=TuneConfig(
            search_alg=searcher,
            num_samples=trials,
            max_concurrent_trials=cfg["concurrency"],
            time_budget_s=cfg["time_budget_s"],
            reuse_actors=reuse_actors,
            trial_dirname_creator=lambda t: t.trial_id,
            trial_name_creator=lambda t: t.trial_id,
        ),
        run_config=RunConfig(
            name=f"session-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=str(run_dir / "tune"),
            failure_config=FailureConfig(max_failures=cfg["max_retries"]),
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
