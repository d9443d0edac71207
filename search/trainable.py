"""One search trial inside a Ray worker: train the proxy task on a genotype, report to Tune.

Reports every epoch (so Tune and its schedulers see progress) and a final result with
`status` (ok | nonfinite | timeout), `error`, `node`, `duration_s` and all metrics. A
non-finite loss and a time-out are results, not crashes: they are recorded with the
failure reward and never retried. Anything else that goes wrong (an exception, a lost
worker) is a crash: Tune retries it (FailureConfig) and the searcher records it as
'failed' after the last retry.

The worker keeps one `ProxyTask` (`worker_task`): the data, frozen features, anchor
assignments and ground truth the first trial builds serve every later trial of the search.

After each trial the worker collects its garbage and freezes what survives (`gc.freeze`):
the long-lived heap of a reused worker (Ray, torch, the cached data and features: ~350k
objects) then stays out of Python's full collections, which otherwise cost ~0.2 s each,
about one every other trial, in the middle of a training.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import torch
from ray import tune

from proxy_task import NonFiniteLossError, ProxyTask, ProxyTaskConfig
from results.record import TrialStatus
from search.deadline import Deadline, TrialTimeoutError
from space import loads

TrainFunction = Callable[..., dict[str, Any]]


@functools.lru_cache(maxsize=1)  # a worker serves one search: a new config replaces the old task
def worker_task(config_json: str, device: str) -> ProxyTask:
    """This worker process's proxy task for the config (JSON of `ProxyTaskConfig.to_dict()`).
    The driver has already reported what converting the annotations repaired (dropped boxes):
    workers converting the same files do not print it again (unreadable images still warn)."""
    logging.getLogger("proxy_task.data.repairs").setLevel(logging.ERROR)
    return ProxyTask(ProxyTaskConfig(**json.loads(config_json)), device)


def train_in_worker(
    genotype: Any, task: ProxyTaskConfig, *, seed: int, device: str, on_epoch: Callable[[int, dict], None]
) -> dict[str, Any]:
    """One trial on this worker's `ProxyTask`; its `TrialMetrics` as a dict."""
    proxy = worker_task(json.dumps(task.to_dict(), sort_keys=True), device)
    return proxy.train(genotype, seed, on_epoch).as_dict()


def run_trial(
    config: dict[str, Any],
    *,
    task: ProxyTaskConfig,
    seed: int,
    device: str,
    cpus: float,
    time_limit_s: float | None,
    train: TrainFunction = train_in_worker,
) -> None:
    """Tune function trainable. `config` comes from the searcher: genotype JSON and step.

    `train` is called as `train_in_worker` is (genotype, task config, seed=, device=,
    on_epoch=) and returns the metrics as a dict; fault-injection benchmarks pass their own.
    """
    # more threads than the CPUs given to the trial oversubscribe the node and slow every trial
    torch.set_num_threads(max(1, int(cpus)))
    genotype = loads(config["genotype"])
    task_cfg = task.replace(num_threads=max(1, int(cpus)))
    start = time.monotonic()

    def on_epoch(epoch: int, metrics: dict[str, Any]) -> None:
        tune.report({**_numbers(metrics), "epoch": epoch, "final": False})

    status, error, metrics = TrialStatus.OK.value, None, {}
    try:
        with Deadline(time_limit_s):
            metrics = train(genotype, task_cfg, seed=seed, device=device, on_epoch=on_epoch)
    except NonFiniteLossError as e:
        status, error = TrialStatus.NONFINITE.value, str(e)
    except TrialTimeoutError:
        status, error = TrialStatus.TIMEOUT.value, f"trial ran past its {time_limit_s:g} s limit"
    tune.report(
        {
            **_numbers(metrics),
            "final": True,
            "status": status,
            "error": error or "",
            "node": socket.gethostname(),
            "pid": os.getpid(),
            "duration_s": time.monotonic() - start,
        }
    )
    settle_heap()


def settle_heap() -> None:
    """Collect this trial's garbage cycles, then move every survivor to the permanent
    generation: later full collections only scan what later trials allocate (~10 ms)."""
    gc.collect()
    gc.freeze()


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
