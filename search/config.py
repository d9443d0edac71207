"""Structured Hydra configs of `python -m search.run`: type-checked overrides, clear errors.

Groups: `controller` (ppo, reinforce, random, evolution, and the named option sets of
`controller.PRESETS`, e.g. ppo_paper), `proxy_task` (synthetic,
coco_paper, coco_retrain, tiny). A controller option's schema is its strategy's options
dataclass (`controller.options`), so an option and its default are spelled in one place.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

import controller
import proxy_task.config
from space import SearchSpace

# the options of every strategy (failure_reward, seed): set by the top-level config, not per strategy
_SHARED_OPTIONS = frozenset(f.name for f in dataclasses.fields(controller.StrategyOptions))


def _optional(tp: Any) -> Any:
    # OmegaConf understands Optional[X], not the PEP 604 spelling X | None.
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return Optional[args[0]]  # noqa: UP045
    return tp


def controller_schema(name: str) -> type:
    """Hydra's schema of `controller=<name>`: the strategy's options dataclass with its
    `name` added and the shared options left out (a plain mutable copy: OmegaConf needs
    Optional[X] for `X | None`, and merges overrides into it)."""
    options_type = controller.STRATEGIES[name].options_type
    hints = typing.get_type_hints(options_type)
    fields: list[tuple[str, Any, Any]] = [("name", str, field(default=name))]
    for f in dataclasses.fields(options_type):
        if f.name not in _SHARED_OPTIONS:
            fields.append((f.name, _optional(hints[f.name]), field(default=f.default)))
    return dataclasses.make_dataclass(f"{name.capitalize()}Config", fields)


def controller_options(node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split a resolved controller node into (strategy name, keyword options)."""
    options = dict(node)
    return options.pop("name"), options


def space_schema() -> type:
    """A dataclass of `SearchSpace`'s fields with its defaults (tuples as lists for Hydra)."""
    hints = typing.get_type_hints(SearchSpace)
    lists = {"intermediate_levels": Optional[list[int]], "ops": list[str]}  # noqa: UP045  (tuples in SearchSpace)
    fields: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(SearchSpace):
        if not f.init:
            continue
        default = f.default
        tp = lists.get(f.name, hints[f.name])
        if isinstance(default, tuple):
            fields.append((f.name, tp, field(default_factory=lambda d=default: list(d))))
        else:
            fields.append((f.name, tp, field(default=default)))
    return dataclasses.make_dataclass("SpaceConfig", fields)


SpaceConfig = space_schema()


@dataclass
class RayConfig:
    address: Optional[str] = None  # noqa: UP045  None: start a local cluster; "auto" or HOST:PORT: join one
    num_cpus: Optional[int] = None  # noqa: UP045  local cluster size; None: all cores
    num_gpus: Optional[int] = None  # noqa: UP045


@dataclass
class ResourcesConfig:
    cpus: float = 1.0  # per trial; torch threads = this
    gpus: float = 0.0  # per trial, fractional allowed (e.g. 0.5: two trials per GPU)


@dataclass
class WandbConfig:
    mode: str = "offline"  # offline (no key, no network), online, disabled
    project: str = "nasfpn"
    entity: Optional[str] = None  # noqa: UP045
    top_k: int = 10  # rows of the top-architectures table
    table_every: int = 10  # refresh the table every this many trials


@dataclass
class ObjectiveConfig:
    """MnasNet-style reward AP * (cost / target) ** weight; off by default."""

    enabled: bool = False
    cost: str = "macs"  # macs | latency (eval_latency_ms)
    target: float = 1.0e9
    weight: float = -0.07


@dataclass
class SearchConfig:
    controller: Any = MISSING
    proxy_task: Any = MISSING
    name: str = "default"  # run name: the run lives in storage_path/name
    storage_path: str = "runs"  # made absolute at start; must be shared storage on a cluster
    num_trials: int = (
        300  # trained architectures (cache hits do not count); the default run is bounded by time_budget_s
    )
    time_budget_s: Optional[float] = 840.0  # noqa: UP045  wall clock of one driver session, data preparation included; None: no limit
    trial_timeout_s: Optional[float] = None  # noqa: UP045  a trial running longer is recorded as 'timeout'
    concurrency: int = 2  # trials at once
    max_retries: int = 1  # retries of a crashed trial (worker lost, exception) before the failure reward
    failure_reward: float = 0.0
    seed: int = 0  # controller seed; the proxy trains every architecture with this seed too
    device: str = "auto"  # auto | cpu | cuda
    reevaluate_cached: bool = False  # train again an architecture already in the record
    max_cache_hits: int = 500  # consecutive cache hits after which the search ends (policy converged)
    top_k: int = 5  # rows printed at the end
    space: SpaceConfig = field(default_factory=SpaceConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)


def register_configs() -> ConfigStore:
    """Put the schema and every group option into Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(name="search_schema", node=SearchConfig)
    for name in controller.STRATEGIES:
        cs.store(group="controller", name=name, node=controller_schema(name))
    for preset in controller.PRESETS:
        name, options = controller.preset(preset)
        cs.store(group="controller", name=preset, node=controller_schema(name)(**options))
    proxy_task.config.register_configs(cs)
    return cs
