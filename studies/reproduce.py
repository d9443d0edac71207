"""Do a run's rewards reproduce on this machine? `python -m studies.reproduce RUN [--n 12]`

Retrains `n` of the run's trained architectures (evenly spread over its record, failures
skipped) exactly as its search did: the run's stored proxy-task config, seed and threads
per trial, on the CPU. Prints each recorded AP beside the new one and a summary:

* identical: how many came out bit for bit (same code, same CPU kind: all of them);
* shift: mean of (new - recorded) with its standard error; a shift beyond ~2 s.e. means the
  two machines do not give one reward distribution and their records should not be
  compared;
* noise: std of the differences (the proxy's seed-to-seed std is its yardstick);
* Kendall tau-b between recorded and new APs (ranking kept across machines).

Seeded float arithmetic is bit-for-bit only on one kind of CPU (kernels differ with the
instruction set), so records made on two machines differ per trial like a change of seed.
`--out FILE.json` keeps the rows and the summary. A bad RUN prints one line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from proxy_task.config import ProxyTaskConfig
from results.errors import ResultsError
from results.record import TrialRecord, TrialStatus
from results.run import load_run
from space.atomic import write_text_atomic
from studies.variance import kendall_tau


def pick(records: list[TrialRecord], n: int) -> list[TrialRecord]:
    """`n` trained 'ok' records evenly spread over the record (all when there are fewer)."""
    trained = [r for r in records if not r.cache_hit and r.status == TrialStatus.OK]
    if n >= len(trained):
        return trained
    return [trained[round(k * (len(trained) - 1) / max(1, n - 1))] for k in range(n)]


def summarize(recorded: list[float], new: list[float]) -> dict[str, Any]:
    """identical count, mean shift (new - recorded) with s.e., std of differences, tau-b."""
    diffs = [b - a for a, b in zip(recorded, new)]
    sd = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
    return {
        "n": len(diffs),
        "identical": sum(a == b for a, b in zip(recorded, new)),
        "shift": statistics.fmean(diffs) if diffs else float("nan"),
        "shift_se": sd / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan"),
        "diff_std": sd,
        "kendall_tau": kendall_tau(recorded, new),
    }


def _machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "torch": torch.__version__, "python": platform.python_version()}


def reproduce(run: str, n: int, out: str | None = None) -> dict[str, Any]:
    """Retrain `n` records of `run` here; returns {"rows", "summary", "machine"}.

    Raises ResultsError (bad run), ValueError (the run has no stored proxy config)."""
    from proxy_task.task import ProxyTask

    loaded = load_run(run)
    config = loaded.meta.get("config")
    if not config or "proxy_task" not in config:
        raise ValueError(f"{run}: the record holds no search config (made by an older version?)")
    threads = max(1, int((config.get("resources") or {}).get("cpus", 1)))  # as the search's trials had
    try:
        task = ProxyTaskConfig(**{**config["proxy_task"], "num_threads": threads})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{run}: its proxy_task config does not fit this version ({e})") from None
    proxy = ProxyTask(task, "cpu")
    chosen = pick(list(loaded.records), n)
    torch.set_num_threads(threads)
    rows: list[dict[str, Any]] = []
    start = time.monotonic()
    for k, record in enumerate(chosen):
        metrics = proxy.train(record.genotype(), seed=int(config["seed"]))
        rows.append({"trial_id": record.trial_id, "recorded": record.metrics["ap"], "new": metrics.ap})
        left = (time.monotonic() - start) / (k + 1) * (len(chosen) - k - 1)
        print(
            f"[{k + 1}/{len(chosen)}] {record.trial_id}: recorded {record.metrics['ap']:.5f} new {metrics.ap:.5f}"
            f" (ETA {left:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    summary = summarize([r["recorded"] for r in rows], [r["new"] for r in rows])
    result = {"run": str(run), "rows": rows, "summary": summary, "machine": _machine()}
    if out:
        write_text_atomic(Path(out), json.dumps(result, indent=1) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory (or its trials.sqlite)")
    parser.add_argument("--n", type=int, default=12, help="records to retrain (default 12)")
    parser.add_argument("--out", help="write rows and summary to this JSON file")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be >= 1")
    try:
        result = reproduce(args.run, args.n, args.out)
    except (ResultsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = result["summary"]
    print(
        f"{s['n']} retrained, {s['identical']} identical; shift (new - recorded) {s['shift']:+.5f}"
        f" +- {s['shift_se']:.5f} (s.e.); std of differences {s['diff_std']:.5f}; Kendall tau {s['kendall_tau']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
