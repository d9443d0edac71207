"""Ray Tune wiring: local or remote cluster, the trainable with its resources, one
experiment per driver session, retries, error capture, and a stop on request (a signal,
a record that cannot be written: `stop_when`)."""

from __future__ import annotations

import os
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback, FailureConfig, RunConfig, Stopper, TuneConfig, Tuner

from search.config import RayConfig, ResourcesConfig
from search.errors import SearchSetupError
from search.lost_workers import tolerate_lost_workers
from search.searcher import ControllerSearcher
from search.trainable import run_trial

# The environment variables a trial needs; nothing else of the driver's environment is
# handed to Ray (its runtime_env is logged in the session's runtime_env_agent.log).
WORKER_ENV = ("WANDB_MODE", "WANDB_SILENT", "NASFPN_CACHE")
_SECRET_ENV = re.compile(r"^AWS_|KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.IGNORECASE)


def keep_secrets_out_of_ray() -> None:
    """Tune copies AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the session tokens from the
    driver's environment into every trial actor's runtime_env, and Ray's runtime-env agent
    writes that runtime_env, values included, to the session's runtime_env_agent.log. Trials
    need no credentials (the driver writes the record and Tune's files), so those names are
    taken off Tune's list. Workers of a local cluster still inherit the driver's environment,
    as any child process does; nodes of a multi-node cluster keep their own."""
    from ray.tune.execution import class_cache

    names = class_cache.ENV_VARS_TO_PROPAGATE
    class_cache.ENV_VARS_TO_PROPAGATE = {n for n in names if not _SECRET_ENV.search(n)}


class ErrorCapture(Callback):
    """Hands each crashed trial's last error line to the searcher, which records the trial then."""

    def __init__(self, searcher: ControllerSearcher) -> None:
        self.searcher = searcher

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        lines = [ln for ln in str(trial.error_file and _read(trial.error_file)).splitlines() if ln.strip()]
        self.searcher.record_failure(trial.trial_id, lines[-1][:500] if lines else None)

    def __getstate__(self) -> dict[str, Any]:
        return {"searcher": None}


class StopWhen(Stopper):
    """Stops the whole Tune run (running trials too) once `should_stop()` is true; checked
    by Tune at every step. Running trials are not told to the searcher: they stay
    outstanding in the controller state and run again on resume."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop: Callable[[], bool] | None = should_stop

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.should_stop is not None and self.should_stop()

    def __getstate__(self) -> dict[str, Any]:
        return {"should_stop": None}  # Tune pickles its stopper with the experiment


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def init_ray(ray_config: RayConfig) -> None:
    """Join `ray.address` or start a local cluster (no dashboard, workers inherit env)."""
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
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


def connect_ray(ray_config: RayConfig) -> bool:
    """Join `ray.address` or start a local cluster unless Ray runs already; returns True if
    it was started here (the caller shuts it down). Raises SearchSetupError in one line."""
    if ray.is_initialized():
        return False
    try:
        init_ray(ray_config)
    except Exception as e:  # ConnectionError, ray:// without ray[client], auth, version mismatch
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        if ray_config.address in (None, "local"):
            raise SearchSetupError(
                f"cannot start a local Ray cluster ({first[:200]}); check RAY_TMPDIR (a short, writable path)"
                " and the machine's free memory and disk"
            ) from None
        raise SearchSetupError(
            f"cannot reach Ray at ray.address={ray_config.address!r} ({first[:200]}); start the cluster"
            " (`ray start --head`) or leave ray.address unset for a local one"
        ) from None
    return True


def check_gpus(resources: ResourcesConfig, device: str) -> None:
    """Refuse a search whose trials need a GPU that no node of the cluster has: its trials
    would all fail (device=cuda) or never be scheduled (resources.gpus > 0)."""
    need = resources.gpus if resources.gpus > 0 else (1.0 if device == "cuda" else 0.0)
    if need <= 0:
        return
    per_node = [n.get("Resources", {}).get("GPU", 0.0) for n in ray.nodes() if n.get("Alive")]
    most = max(per_node, default=0.0)
    if most >= need:
        return
    asked = f"resources.gpus={resources.gpus:g}" if resources.gpus > 0 else "device=cuda"
    have = "no GPU" if most == 0 else f"at most {most:g} GPUs on a node"
    raise SearchSetupError(f"{asked} but the Ray cluster has {have}; use device=cpu resources.gpus=0 or add GPU nodes")


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
    stop_when: Callable[[], bool] | None = None,
) -> None:
    """Run up to `trials` trials with `searcher`, `concurrency` at a time (Tune stops early
    when `time_budget_s` runs out).

    `trainable(config, **trial_kwargs)` runs one trial (run_trial's arguments: task, seed,
    device, cpus, time_limit_s); benchmarks pass one of known cost. A crashed trial is
    retried `max_retries` times, a worker lost to OOM included (search/lost_workers.py).
    `stop_when()` true stops the run (every trial) at Tune's next step. Ray is joined or
    started from `ray_config` unless it runs."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress line instead
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    tolerate_lost_workers()
    keep_secrets_out_of_ray()
    started_here = connect_ray(ray_config)
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
            stop=StopWhen(stop_when) if stop_when is not None else None,
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
