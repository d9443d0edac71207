"""The resolved search config mapped to typed objects, once, at the entry point.

`SearchSettings.from_dict(cfg)` checks every value that can be checked before work starts
and builds what the driver hands on: the `SearchSpace`, the strategy's name and options,
the `ProxyTaskConfig` (built here only; workers receive this object), and the Ray,
resources, W&B and objective sections as the dataclasses of search/config.py. Anything
wrong raises SearchSetupError with one line naming the setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from proxy_task import ProxyTaskConfig
from search.config import ObjectiveConfig, RayConfig, ResourcesConfig, WandbConfig, controller_options
from search.errors import SearchSetupError
from search.wandb_logger import MODES as WANDB_MODES
from space import SearchSpace
from space.genotype import MAX_CELLS


@dataclass(frozen=True)
class SearchSettings:
    """Everything `run_search` needs, typed; `plain` is the config as given (it is stored in
    the run's record, so a resume can be checked against it)."""

    name: str
    storage_path: str
    num_trials: int
    time_budget_s: float | None
    trial_timeout_s: float | None
    concurrency: int
    max_retries: int
    failure_reward: float
    seed: int
    device: str
    reevaluate_cached: bool
    max_cache_hits: int
    top_k: int
    space: SearchSpace
    strategy: str
    strategy_options: dict[str, Any]
    task: ProxyTaskConfig
    ray: RayConfig
    resources: ResourcesConfig
    wandb: WandbConfig
    objective: ObjectiveConfig
    plain: dict[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> SearchSettings:
        """Check and map a resolved config (Hydra's, as a plain dict). Raises SearchSetupError."""
        _check(cfg)
        try:
            space = SearchSpace(**cfg["space"])  # SpaceConfig is generated from its fields
        except (ValueError, TypeError) as e:
            raise SearchSetupError(f"bad space settings: {e}") from None
        if space.num_cells > MAX_CELLS:  # its genotypes would be refused by every tool
            raise SearchSetupError(
                f"space.num_intermediate={space.num_intermediate}: at most {MAX_CELLS - space.num_levels}"
                f" with {space.num_levels} levels (a genotype has at most {MAX_CELLS} cells)"
            )
        strategy, options = controller_options(cfg["controller"])
        try:
            task = ProxyTaskConfig(**cfg["proxy_task"])
        except (TypeError, ValueError) as e:
            raise SearchSetupError(f"bad proxy_task settings: {e}") from None
        return cls(
            name=cfg["name"],
            storage_path=cfg["storage_path"],
            num_trials=cfg["num_trials"],
            time_budget_s=cfg["time_budget_s"],
            trial_timeout_s=cfg["trial_timeout_s"],
            concurrency=cfg["concurrency"],
            max_retries=cfg["max_retries"],
            failure_reward=float(cfg["failure_reward"]),
            seed=cfg["seed"],
            device=cfg["device"],
            reevaluate_cached=cfg["reevaluate_cached"],
            max_cache_hits=cfg["max_cache_hits"],
            top_k=cfg["top_k"],
            space=space,
            strategy=strategy,
            strategy_options=options,
            task=task,
            ray=RayConfig(**cfg["ray"]),
            resources=ResourcesConfig(**cfg["resources"]),
            wandb=WandbConfig(**cfg["wandb"]),
            objective=ObjectiveConfig(**cfg["objective"]),
            plain=cfg,
        )


# The run directory is storage_path/name: one component, so '..', '.', 'a/b' or an absolute
# path cannot put the record in storage_path itself or outside it.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+=@][A-Za-z0-9._+=@-]{0,127}")
_MAX_SEED = 2**63 - 1  # torch, numpy and SQLite all take it; 2**64 overflowed in torch's generator


def _check(cfg: dict[str, Any]) -> None:
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
        (
            isinstance(cfg["name"], str) and _SAFE_NAME.fullmatch(cfg["name"]) is not None,
            f"name={cfg['name']!r}: the run directory's name, one path component: letters, digits and . _ - + = @"
            " (not starting with '.' or '-', at most 128 characters)",
        ),
        (
            isinstance(cfg["seed"], int) and 0 <= cfg["seed"] <= _MAX_SEED,
            f"seed={cfg['seed']}: must be an integer from 0 to 2**63 - 1",
        ),
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
