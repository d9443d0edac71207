"""Is the reward worth optimising? `python -m studies.variance [proxy_task=bccd] ...`

Trains K genotypes (the paper's, the FPN baseline and `random` samples of the search space)
with `seeds` seeds each on the proxy, and each genotype once more on a schedule `long_factor`
times longer (seed 0). Reports, for `metric` (ap or ap50):
* within: pooled within-genotype std over seeds, sqrt(mean of per-genotype variances);
* between: std over genotypes of the per-genotype mean;
* ratio = between / within (signal to noise of one trial);
* Kendall tau-b between the proxy mean and the long-schedule value.
Writes variance.json and variance.md to out_dir. Options: random=8 seeds=3 long_factor=3
(0: no long runs) metric=ap out_dir=runs/variance proxy_task.FIELD=VALUE, and
against=OTHER/variance.json: Kendall tau between this proxy's means and those of another
run (a proxy before a change that alters the reward must rank as it did).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

import space
from proxy_task.cli import run_app
from proxy_task.config import ProxyTaskConfig, register_configs


@dataclass
class VarianceConfig:
    random: int = 8
    seeds: int = 3
    long_factor: float = 3.0
    metric: str = "ap"
    device: str = "cpu"
    out_dir: str = "runs/variance"
    random_seed: int = 2019
    against: str = ""  # another variance.json (a proxy before a change): rank agreement with it
    defaults: list = field(default_factory=lambda: [{"proxy_task": "bccd"}, "_self_"])
    proxy_task: ProxyTaskConfig = MISSING


def kendall_tau(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b (ties in either list handled); nan for fewer than 2 items."""
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif dx * dy > 0:
            concordant += 1
        else:
            discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom else float("nan")


def summarize(per_genotype: dict[str, list[float]], long: dict[str, float]) -> dict[str, float]:
    """within, between, ratio and Kendall tau from per-genotype seed values and long values.

    Also `crn_residual_std`: the noise left when every genotype is trained with the same
    seed (common random numbers): the residual of genotype + seed main effects (two-way
    layout, needs the same seeds for every genotype), and `crn_ratio` = between / it.
    """
    means = {g: statistics.fmean(v) for g, v in per_genotype.items()}
    within = math.sqrt(statistics.fmean(statistics.variance(v) for v in per_genotype.values() if len(v) > 1))
    between = statistics.stdev(means.values())
    names = [g for g in means if g in long and not math.isnan(long[g])]  # no long runs: tau is nan
    out = {
        "within_std": within,
        "between_std": between,
        "ratio": between / within if within else (float("inf") if between else float("nan")),
        "kendall_tau": kendall_tau([means[g] for g in names], [long[g] for g in names]),
        "kendall_tau_seed0": kendall_tau([per_genotype[g][0] for g in names], [long[g] for g in names]),
    }
    n_seeds = {len(v) for v in per_genotype.values()}
    s = n_seeds.pop() if len(n_seeds) == 1 else 0
    if s > 1:
        grand = statistics.fmean(means.values())
        seed_means = [statistics.fmean(v[j] for v in per_genotype.values()) for j in range(s)]
        sq = sum((v[j] - means[g] - seed_means[j] + grand) ** 2 for g, v in per_genotype.items() for j in range(s))
        residual = math.sqrt(sq / ((len(means) - 1) * (s - 1)))
        out.update(crn_residual_std=residual, crn_ratio=between / residual if residual else float("nan"))
    return out


class VarianceError(ValueError):
    """A setting of the study the user has to fix (one line)."""


def _load_reference(path: str) -> dict:
    """A variance.json to compare with. Raises VarianceError naming the file."""
    try:
        report = json.loads(Path(path).read_text())
        if not all("hash" in r and "mean" in r for r in report["rows"]):
            raise KeyError("rows without hash/mean")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VarianceError(f"against={path}: not a readable variance.json ({type(e).__name__}: {e})") from None
    return report


def compare(reference: dict, candidate: dict) -> dict[str, float]:
    """Does a changed proxy rank genotypes as the reference did? Both are variance.json
    reports; genotypes are matched by hash. Returns Kendall tau-b between the per-genotype
    means, the mean shift (candidate - reference) and the candidate's between/within ratio."""
    ref = {r["hash"]: r["mean"] for r in reference["rows"]}
    common = [r for r in candidate["rows"] if r["hash"] in ref]
    if len(common) < 2:
        raise ValueError("the two reports share fewer than 2 genotypes")
    return {
        "genotypes": len(common),
        "kendall_tau": kendall_tau([ref[r["hash"]] for r in common], [r["mean"] for r in common]),
        "mean_shift": statistics.fmean(r["mean"] - ref[r["hash"]] for r in common),
        "ratio": candidate["summary"].get("ratio", float("nan")),
    }


def random_genotypes(n: int, seed: int) -> dict[str, space.Genotype]:
    """n distinct uniform samples of the paper's search space, named random-<hash prefix>."""
    out: dict[str, space.Genotype] = {}
    rng = random.Random(seed)
    ss = space.SearchSpace()
    while len(out) < n:
        g = ss.sample(rng)
        out.setdefault(f"random-{g.hash()[:8]}", g)
    return out


def genotypes(n_random: int, seed: int) -> dict[str, space.Genotype]:
    """paper, fpn and n_random uniform samples of the paper's search space."""
    out = {"paper": space.load_builtin("nasfpn_paper"), "fpn": space.load_builtin("fpn")}
    return out | random_genotypes(n_random, seed)


def _table(rows: list[dict], metric: str, summary: dict, task: ProxyTaskConfig, factor: float) -> str:
    lines = [f"| genotype | {metric} per seed | mean | long ({factor:g}x) | s/trial |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["mean"]):
        seeds = ", ".join(f"{v:.4f}" for v in r["values"])
        lines.append(f"| {r['name']} | {seeds} | {r['mean']:.4f} | {r['long']:.4f} | {r['seconds']:.1f} |")
    lines.append("")
    for k, sm in summary.get("by_metric", {"": summary}).items():
        lines.append(
            f"{k}: within-genotype std {sm['within_std']:.4f}, between-genotype std {sm['between_std']:.4f}, "
            f"ratio {sm['ratio']:.2f}, same-seed (CRN) residual std {sm.get('crn_residual_std', float('nan')):.4f}, "
            f"CRN ratio {sm.get('crn_ratio', float('nan')):.2f}, Kendall tau (proxy mean vs {factor:g}x schedule) "
            f"{sm['kendall_tau']:.3f} (seed 0 alone: {sm['kendall_tau_seed0']:.3f})"
        )
    lines.append(f"preset {task.name}, {task.epochs:g} epochs, {task.repeats}@{task.channels}.")
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> dict:
    """Hydra task: the study; a setting the user has to fix exits 2 with one line."""
    try:
        return _study(cfg)
    except (OSError, ValueError) as e:  # VarianceError, bad proxy_task values, unusable data
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        sys.exit(2)


def _study(cfg: DictConfig) -> dict:
    from proxy_task.task import ProxyTask
    from proxy_task.trainer import NonFiniteLossError

    task = ProxyTaskConfig(**OmegaConf.to_container(cfg.proxy_task, resolve=True, throw_on_missing=True))
    reference = _load_reference(cfg.against) if cfg.against else None  # checked before hours of training
    long_task = task.replace(epochs=task.epochs * cfg.long_factor) if cfg.long_factor > 0 else None  # 0: no long run
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    proxy = ProxyTask(task, cfg.device)  # data and frozen features built once for every training
    long_proxy = proxy.derive(epochs=long_task.epochs) if long_task is not None else None
    rows, per_genotype, long, extra, long_all = [], {}, {}, {}, {}
    for name, g in genotypes(cfg.random, cfg.random_seed).items():
        values, seconds = [], []
        for seed in range(cfg.seeds):
            try:
                m = proxy.train(g, seed).as_dict()
            except NonFiniteLossError:
                m = {cfg.metric: 0.0, "total_time_s": float("nan")}
            values.append(m[cfg.metric])
            for k in ("ap", "ap50"):
                extra.setdefault(name, {}).setdefault(k, []).append(m.get(k, 0.0))
            seconds.append(m["total_time_s"])
            print(f"{name} seed {seed}: {cfg.metric} {values[-1]:.4f} ({seconds[-1]:.1f} s)", flush=True)
        long_metrics = long_proxy.train(g, 0).as_dict() if long_proxy is not None else {}
        long_value = long_metrics.get(cfg.metric, float("nan"))
        long_all[name] = {k: long_metrics.get(k, float("nan")) for k in ("ap", "ap50")}
        print(f"{name} long: {cfg.metric} {long_value:.4f}", flush=True)
        per_genotype[name], long[name] = values, long_value
        rows.append(
            {
                "name": name,
                "hash": g.hash(),
                "values": values,
                "mean": statistics.fmean(values),
                "long": long_value,
                "seconds": statistics.fmean(seconds),
                "all": extra[name],
                "long_all": long_all[name],
            }
        )
        (out_dir / "variance.json").write_text(json.dumps({"rows": rows, "config": task.to_dict()}, indent=1))
    summary = summarize(per_genotype, long) if len(rows) > 1 else {}
    if len(rows) > 1:
        summary["by_metric"] = {
            k: summarize({g: extra[g][k] for g in extra}, {g: long_all[g][k] for g in long_all}) for k in ("ap", "ap50")
        }
    report = {
        "rows": rows,
        "summary": summary,
        "config": task.to_dict(),
        "seeds": cfg.seeds,
        "long_factor": cfg.long_factor,
        "metric": cfg.metric,
        "time": time.strftime("%Y-%m-%d %H:%M"),
    }
    table = _table(rows, cfg.metric, summary, task, cfg.long_factor)
    (out_dir / "variance.json").write_text(json.dumps(report, indent=1))
    if reference is not None and len(rows) > 1:
        try:
            report["against"] = {"path": cfg.against, **compare(reference, report)}
        except ValueError as e:
            raise VarianceError(f"against={cfg.against}: {e}") from None
        a = report["against"]
        table += (
            f"against {cfg.against}: Kendall tau of the means {a['kendall_tau']:.3f} over {a['genotypes']}"
            f" genotypes, mean shift {a['mean_shift']:+.4f}\n"
        )
    (out_dir / "variance.json").write_text(json.dumps(report, indent=1))
    (out_dir / "variance.md").write_text(table)
    print(table)
    return report


def main() -> None:
    cs = ConfigStore.instance()
    cs.store(name="variance", node=VarianceConfig)
    register_configs(cs)
    run_app(run, "variance")


if __name__ == "__main__":
    sys.exit(main())
