"""The resolved search config mapped to typed objects, once, at the entry point.

`SearchSettings.from_dict(cfg)` checks every value that can be checked before work starts
and builds what the driver hands on: the `SearchSpace`, the strategy's name and options,
the `ProxyTaskConfig` (built here only; workers receive this object), and the Ray,
resources, W&B and objective sections as the dataclasses of search/config.py, which check
their own values. Anything wrong raises SearchSetupError with one line naming the setting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from proxy_task import ProxyTaskConfig
from search.config import ObjectiveConfig, RayConfig, ResourcesConfig, RunConfig, WandbConfig, controller_options
from search.errors import SearchSetupError
from space import SearchSpace
from space.genotype import MAX_CELLS


@dataclass(frozen=True)
class SearchSettings:
    """Everything `run_search` needs, typed: the top-level settings (`run`), the objects the
    groups become, and `plain`, the config as given (stored in the run's record, so that a
    resume can be checked against it)."""

    run: RunConfig
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
        try:
            run = RunConfig(**{f.name: cfg[f.name] for f in dataclasses.fields(RunConfig)})
            sections = (RayConfig(**cfg["ray"]), ResourcesConfig(**cfg["resources"]), WandbConfig(**cfg["wandb"]))
            objective = ObjectiveConfig(**cfg["objective"])
        except ValueError as e:  # the dataclasses check their own values, in one line
            raise SearchSetupError(str(e)) from None
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
        if task.eval_split == "test":  # the split retraining is scored on: a search that rewards it has seen it
            raise SearchSetupError(
                f"proxy_task.eval_split=test ({task.name}): a search rewards on val or a proxy split, never on the"
                " test split that judges the retrained result (retrain with studies.retrain proxy_task=...)"
            )
        return cls(run, space, strategy, options, task, *sections, objective, plain=cfg)
