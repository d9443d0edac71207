"""Trainings per hour of a whole search, this code against an earlier commit, in one run.

    python -m benchmarks.search_throughput                       # against f58b64f, 30 trainings x 2 reps
    python -m benchmarks.search_throughput --reference HEAD~5 --trainings 40 --reps 3

Both versions run `python -m search.run` as a user would: random search with one seed (so
both train the same architectures, checked), 2 workers, the built-in `synthetic` proxy, W&B
off. The reference is checked out into a temporary git worktree and run with this
environment's packages; runs alternate (reference, this, reference, this, ...) so that a
change of machine load hits both alike. Throughput counts trainings from the first
training's start to the last one's end in the record, so the one-off data preparation and
Ray start-up are left out (`benchmarks.search_overhead` measures those). Printed: trainings
per hour per run, the medians, their ratio, and the median training time.

The default reference, f58b64f, is the code when the target of 1.3x more trainings per
hour was set (before the anchor-assignment cache, `channels_last`, the array-fed evaluator
and the per-trial overhead cuts).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REFERENCE = "f58b64f"
ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout


def run_search(code: Path, storage: Path, name: str, trainings: int, seed: int) -> Path:
    """Run one search with the code in `code`; returns its record file."""
    env = {**os.environ, "PYTHONPATH": str(code), "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [sys.executable, "-m", "search.run", "controller=random", f"seed={seed}", f"num_trials={trainings}"]
    cmd.append("proxy_task=synthetic")  # the proxy the reference was measured on
    cmd += ["time_budget_s=null", f"name={name}", f"storage_path={storage}", "wandb.mode=disabled"]
    log = storage / f"{name}.log"
    with log.open("w") as out:
        done = subprocess.run(cmd, cwd=code, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"search_throughput: the search in {code} failed (exit {done.returncode}); see {log}")
    return storage / name / "trials.sqlite"


def throughput(record: Path) -> tuple[float, float, frozenset[str]]:
    """(trainings per hour, median training seconds, trained architecture hashes) of a record."""
    with sqlite3.connect(f"file:{record}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT created_at, duration_s, genotype_hash FROM trials WHERE status = 'ok'").fetchall()
    start = min(end - duration for end, duration, _ in rows)  # the record is written as a training ends
    span = max(end for end, _, _ in rows) - start
    return 3600 * len(rows) / span, statistics.median(d for _, d, _ in rows), frozenset(h for _, _, h in rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", default=REFERENCE, help=f"git commit to compare with (default {REFERENCE})")
    p.add_argument("--trainings", type=int, default=30, help="trainings per search (default 30)")
    p.add_argument("--reps", type=int, default=2, help="searches per version (default 2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        commit = _git("rev-parse", "--verify", f"{args.reference}^{{commit}}").strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise SystemExit(f"search_throughput: {args.reference!r} is not a commit of {ROOT}; pass --reference") from None
    with tempfile.TemporaryDirectory(prefix="nasfpn-throughput-") as tmp:
        tmp_path = Path(tmp)
        ref_code = tmp_path / "reference"
        _git("worktree", "add", "--detach", str(ref_code), commit)
        try:
            results: dict[str, list[tuple[float, float, frozenset[str]]]] = {"reference": [], "this": []}
            for rep in range(args.reps):
                for label, code in (("reference", ref_code), ("this", ROOT)):
                    record = run_search(code, tmp_path, f"{label}-{rep}", args.trainings, args.seed)
                    results[label].append(throughput(record))
                    per_hour, median_s, _ = results[label][-1]
                    print(
                        f"rep {rep} {label:<9}: {per_hour:6.0f} trainings/h, median training {median_s:.2f} s",
                        flush=True,
                    )
        finally:
            _git("worktree", "remove", "--force", str(ref_code))
    medians = {label: statistics.median(r[0] for r in runs) for label, runs in results.items()}
    same = len({r[2] for runs in results.values() for r in runs}) == 1
    print(
        f"\nreference {args.reference} ({commit[:10]}): {medians['reference']:.0f} trainings/h (median of {args.reps})"
    )
    print(f"this code: {medians['this']:.0f} trainings/h")
    print(f"ratio: {medians['this'] / medians['reference']:.2f}x; same architectures trained: {same}")


if __name__ == "__main__":
    main()
