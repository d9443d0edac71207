"""One search trial inside a Ray worker: train the proxy task on a genotype, report to Tune.

Reports every epoch (so Tune and its schedulers see progress) and a final result with
`status` (ok | nonfinite | timeout), `error`, `node`, `duration_s` and all metrics. A
non-finite loss and a time-out are results, not crashes: they are recorded with the
failure reward and never retried. Anything else that goes wrong (an exception, a lost
worker) is a crash: Tune retries it (FailureConfig) and the searcher records it as
'failed' after the last retry.

After each trial the worker collects its garbage and freezes what survives (`gc.freeze`):
the long-lived heap of a reused worker (Ray, torch, the cached data and features: ~350k
objects) then stays out of Python's full collections, which otherwise cost ~0.2 s each,
about one every other trial, in the middle of a training.
"""

from __future__ import annotations

import gc
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import torch
from ray import tune

from proxy_task import NonFiniteLossError, ProxyTaskConfig, train_and_evaluate
from results.record import TrialStatus
from search.deadline import Deadline, TrialTimeoutError
from space import loads

TrainFunction = Callable[..., dict[str, Any]]


def run_trial(
    config: dict[str, Any],
    *,
    task: ProxyTaskConfig,
    seed: int,
    device: str,
    cpus: float,
    time_limit_s: float | None,
    train: TrainFunction = train_and_evaluate,
) -> None:
    """Tune function trainable. `config` comes from the searcher: genotype JSON and step.

    `train` is called as `proxy_task.train_and_evaluate` is (genotype, task config, seed=,
    device=, on_epoch=) and returns its metrics; fault-injection benchmarks pass their own.
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
