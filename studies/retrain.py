"""Retrain genotypes on a longer schedule, several seeds each: `python -m studies.retrain`.

    python -m studies.retrain "genotypes=[best:runs/default,paper,fpn]" random=3 seeds=3 workers=2

The default preset, bccd_retrain, trains 3x the search proxy's epochs on BCCD train + val
and scores BCCD test, images no search ever rewarded, so a genotype picked for its proxy AP
gets no head start (synthetic_retrain does the same for the built-in dataset). A genotype spec is a genotype JSON path, `paper`, `fpn`, or
`best:RUN` / `best:RUN@RANK` (the RANK-th best architecture of a search record, 1 = best).
`random=N` adds N uniform samples of the paper's space (drawn with `random_seed`, the same
draw as studies.variance). Trainings run `workers` at a time, each with
proxy_task.num_threads threads. retrain.json is rewritten after every training, so an
interrupted retrain run again with the same out_dir trains only what is missing (and one
with nothing missing redraws from retrain.json alone); retrain.md holds the table (AP mean
and std over seeds, params and multiply-adds), retrain.png the figure. A bad spec, path or
config prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

import space
from proxy_task.cli import run_app
from proxy_task.config import ProxyTaskConfig, register_configs
from proxy_task.task import ProxyTask
from results.record import TrialStatus
from space.atomic import write_text_atomic

METRICS = ("ap", "ap50", "ap75")


@dataclass
class RetrainConfig:
    genotypes: list[str] = field(default_factory=lambda: ["paper", "fpn"])
    random: int = 3  # uniform samples of the search space added to `genotypes`
    random_seed: int = 2019
    seeds: int = 3  # seeds 0 .. seeds-1 for every genotype
    workers: int = 1  # trainings at once (processes)
    device: str = "cpu"
    out_dir: str = "runs/retrain"
    defaults: list = field(default_factory=lambda: [{"proxy_task": "bccd_retrain"}, "_self_"])
    proxy_task: ProxyTaskConfig = MISSING


class RetrainError(ValueError):
    """A spec, path or output directory the user has to fix (one line)."""


def resolve_spec(spec: str) -> tuple[str, space.Genotype]:
    """(display name, genotype) of one spec. Raises RetrainError, space.GenotypeError."""
    if spec.startswith("best:"):
        from results.errors import ResultsError
        from results.ranking import pick_rank
        from results.run import load_run

        run, _, rank_text = spec[len("best:") :].partition("@")
        if rank_text and not rank_text.isdigit():
            raise RetrainError(f"genotype spec {spec!r}: the rank after '@' must be an integer >= 1")
        rank = int(rank_text or 1)
        try:
            loaded = load_run(run)
            best = pick_rank(loaded.records, rank).best
        except ResultsError as e:
            raise RetrainError(f"genotype spec {spec!r}: {e}") from None
        return f"best of {loaded.name}" + (f" #{rank}" if rank > 1 else ""), best.genotype()
    try:
        genotype = space.load_spec(spec)
    except FileNotFoundError as e:
        raise RetrainError(f"{e}; give a genotype JSON path, paper, fpn or best:RUN_DIR") from None
    return ("paper" if space.BUILTIN_NAMES.get(spec) == "nasfpn_paper" else Path(spec).stem), genotype


def collect_genotypes(specs: Iterable[str], n_random: int, random_seed: int) -> dict[str, dict[str, Any]]:
    """hash -> {"name", "genotype"} in spec order, then the random samples; a genotype named
    twice (e.g. the best of a search is the paper's) is trained once under both names."""
    from studies.variance import random_genotypes

    out: dict[str, dict[str, Any]] = {}
    named = [resolve_spec(s) for s in specs] + list(random_genotypes(n_random, random_seed).items())
    for name, g in named:
        entry = out.setdefault(g.hash(), {"name": name, "genotype": g})
        if name not in entry["name"].split(" = "):
            entry["name"] += f" = {name}"
    return out


def _train_one(genotype_json: str, task: dict, seed: int, device: str) -> dict[str, Any]:
    """One training in a worker process; returns the metrics kept in retrain.json (a training
    whose loss became non-finite has no AP: it is counted as failed, not averaged in)."""
    from proxy_task.trainer import NonFiniteLossError

    genotype = space.loads(genotype_json)
    start = time.perf_counter()
    try:
        m = _process_task(json.dumps(task, sort_keys=True), device).train(genotype, seed).as_dict()
    except NonFiniteLossError as e:
        return {"status": TrialStatus.NONFINITE.value, "error": str(e).splitlines()[0], **dict.fromkeys(METRICS)}
    kept = {k: m[k] for k in (*METRICS, "params", "pyramid_params", "macs")}
    return {"status": TrialStatus.OK.value, **kept, "seconds": time.perf_counter() - start}


@functools.lru_cache(maxsize=1)  # one config per study: its data and frozen features serve every training
def _process_task(task_json: str, device: str) -> ProxyTask:
    return ProxyTask(ProxyTaskConfig(**json.loads(task_json)), device)


def pyramid_macs(genotype: space.Genotype, task: ProxyTaskConfig) -> int:
    """Multiply-adds of the genotype's pyramid alone at the task's resolution and N@C."""
    from proxy_task.backbones import build_backbone
    from space.complexity import pyramid_cost

    in_channels = list(build_backbone(task.backbone, task.backbone_width).out_channels)
    return pyramid_cost(genotype, in_channels, task.channels, task.repeats, task.image_size, task.separable)[1]


def summarize(entries: dict[str, dict[str, Any]], runs: dict[str, dict], seeds: int) -> list[dict[str, Any]]:
    """One row per genotype with every seed finished, best mean AP first. AP statistics are
    over the seeds that trained ('ok'); `failed` counts the others, and a genotype with no
    'ok' seed has no mean (None) and comes last."""
    rows = []
    for h, e in entries.items():
        done = [runs[f"{h}/{s}"] for s in range(seeds) if f"{h}/{s}" in runs]
        if len(done) < seeds:
            continue
        ok = [r for r in done if r["status"] == TrialStatus.OK]
        ap = [r["ap"] for r in ok]
        rows.append(
            {
                "name": e["name"],
                "hash": h,
                "ap": ap,
                "ap_per_seed": [r["ap"] if r["status"] == TrialStatus.OK else None for r in done],  # None: failed
                "ap_mean": statistics.fmean(ap) if ap else None,
                "ap_std": statistics.stdev(ap) if len(ap) > 1 else 0.0,
                "ap50_mean": statistics.fmean(r["ap50"] for r in ok) if ok else None,
                "params": ok[0]["params"] if ok else None,
                "pyramid_params": ok[0]["pyramid_params"] if ok else None,
                "macs": ok[0]["macs"] if ok else None,
                "pyramid_macs": e.get("pyramid_macs"),
                "seconds": statistics.fmean(r["seconds"] for r in ok) if ok else None,
                "failed": len(done) - len(ok),
            }
        )
    return sorted(rows, key=lambda r: (r["ap_mean"] is None, -(r["ap_mean"] or 0.0)))


def _ap(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _m(x: int | None, unit: float, suffix: str, digits: int) -> str:
    return "-" if x is None else f"{x / unit:.{digits}f}{suffix}"


def table(rows: list[dict[str, Any]], task: ProxyTaskConfig) -> str:
    """Markdown table of `rows` (summarize's output)."""
    lines = [
        "| genotype | AP mean ± std | AP per seed | AP50 | params | pyramid params | MACs | pyramid MACs | s/run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        seeds = ", ".join("failed" if v is None else f"{v:.4f}" for v in r["ap_per_seed"])
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.0f}"
        mean = "-" if r["ap_mean"] is None else f"{r['ap_mean']:.4f} ± {r['ap_std']:.4f}"
        ap50 = _ap(r["ap50_mean"])
        lines.append(
            f"| {r['name']} | {mean} | {seeds} | {ap50} "
            f"| {_m(r['params'], 1e6, 'M', 3)} | {_m(r['pyramid_params'], 1e6, 'M', 3)} "
            f"| {_m(r['macs'], 1e6, 'M', 1)} | {_m(r['pyramid_macs'], 1e6, 'M', 1)} | {secs} |"
        )
    lines.append("")
    lines.append(
        f"preset {task.name}: {task.epochs:g} epochs, {task.repeats}@{task.channels}, {task.image_size} px, "
        f"scored on {_eval_name(task)}; std over seeds (n-1)."
    )
    return "\n".join(lines) + "\n"


def _eval_name(task: ProxyTaskConfig) -> str:
    if task.eval_split == "proxy":
        return "the proxy split"
    if task.dataset == "voc":
        return f"{Path(task.data_root).name} {task.eval_split}"
    return "val2017" if task.eval_split == "val" else task.eval_split


def _write_json(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=1))


def _load_previous(path: Path, task: dict) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        previous = json.loads(path.read_text())
        runs, previous_task = previous["runs"], previous["config"]
    except (ValueError, KeyError, TypeError):
        raise RetrainError(f"{path} is not a retrain record; delete it or choose another out_dir") from None
    if previous_task != task:
        raise RetrainError(f"{path} holds results of a different proxy_task config; choose another out_dir")
    return runs


def retrain(
    entries: dict[str, dict[str, Any]],
    task: ProxyTaskConfig,
    seeds: int,
    out_dir: Path,
    workers: int = 1,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Train every genotype of `entries` (collect_genotypes' output) with seeds 0..seeds-1,
    skipping pairs already in out_dir/retrain.json; returns summarize's rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record = out_dir / "retrain.json"
    task_dict = task.to_dict()
    runs = _load_previous(record, task_dict)
    for e in entries.values():
        e["pyramid_macs"] = pyramid_macs(e["genotype"], task)
    jobs = [(h, s) for h in entries for s in range(seeds) if f"{h}/{s}" not in runs]
    print(f"{len(entries)} genotypes x {seeds} seeds: {len(jobs)} trainings to run, {len(runs)} in {record}")
    if jobs:
        ProxyTask(task, "cpu").prepare()  # data and shared backbone once, before workers race for them

    def save() -> None:
        genotypes = {
            h: {"name": e["name"], "genotype": json.loads(space.dumps(e["genotype"]))} for h, e in entries.items()
        }
        rows = summarize(entries, runs, seeds)
        _write_json(record, {"config": task_dict, "seeds": seeds, "genotypes": genotypes, "runs": runs, "rows": rows})
        (out_dir / "retrain.md").write_text(table(rows, task))

    start, done = time.perf_counter(), [0]

    def finished(h: str, s: int, result: dict) -> None:
        runs[f"{h}/{s}"] = {"seed": s, **result}
        save()
        done[0] += 1
        n = done[0]
        eta = (time.perf_counter() - start) / n * (len(jobs) - n)
        print(
            f"[{n}/{len(jobs)}] {entries[h]['name']} seed {s}: AP {_ap(result['ap'])} ({result['status']}), "
            f"ETA {eta / 60:.1f} min",
            flush=True,
        )

    if workers <= 1:
        for h, s in jobs:
            finished(h, s, _train_one(space.dumps(entries[h]["genotype"]), task_dict, s, device))
    else:
        ctx = multiprocessing.get_context("spawn")  # no forked torch thread pools
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {
                pool.submit(_train_one, space.dumps(entries[h]["genotype"]), task_dict, s, device): (h, s)
                for h, s in jobs
            }
            for f in as_completed(futures):
                finished(*futures[f], f.result())
    save()
    rows = summarize(entries, runs, seeds)
    if rows:
        from studies.retrain_plot import plot_retrain

        title = f"retrained {task.epochs:g} epochs ({task.name}), {seeds} seeds"
        plot_retrain(rows, out_dir / "retrain.png", title)
    return rows


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """Hydra task: resolve the config, retrain, print the table; user errors exit 2."""
    from proxy_task.data import DataError

    try:
        task = ProxyTaskConfig(**OmegaConf.to_container(cfg.proxy_task, resolve=True, throw_on_missing=True))
        if cfg.seeds < 1 or cfg.workers < 1 or cfg.random < 0:
            raise RetrainError(f"seeds={cfg.seeds} workers={cfg.workers} random={cfg.random}: need seeds, workers >= 1")
        entries = collect_genotypes(list(cfg.genotypes), cfg.random, cfg.random_seed)
        if not entries:
            raise RetrainError("nothing to train: give genotypes=[...] or random=N")
        rows = retrain(entries, task, cfg.seeds, Path(cfg.out_dir), cfg.workers, cfg.device)
    except (OSError, ValueError, DataError) as e:  # RetrainError and GenotypeError are ValueErrors
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        sys.exit(2)
    print(table(rows, task))
    return rows


def main() -> None:
    cs = ConfigStore.instance()
    cs.store(name="retrain", node=RetrainConfig)
    register_configs(cs)
    run_app(run, "retrain")


if __name__ == "__main__":
    main()
