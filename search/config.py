"""Structured Hydra configs of `python -m search.run`: type-checked overrides, clear errors.

Groups: `controller` (ppo, reinforce, random, evolution, and the named option sets of
`controller.PRESETS`, e.g. ppo_paper), `proxy_task` (proxy_task.config.PRESETS). A
controller option's schema is its strategy's options dataclass (`controller.options`), the
top-level settings' is `RunConfig`, and every section checks its own values in
`__post_init__` when search/settings.py builds it: each setting, its default and its bounds
are spelled in one place.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

import controller
import proxy_task.config
from search.wandb_logger import MODES as WANDB_MODES
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


# The run directory is storage_path/name: one component, so '..', '.', 'a/b' or an absolute
# path cannot put the record in storage_path itself or outside it.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+=@][A-Za-z0-9._+=@-]{0,127}")
_MAX_SEED = 2**63 - 1  # torch, numpy and SQLite all take it; 2**64 overflowed in torch's generator


def _first_problem(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


@dataclass
class RayConfig:
    address: Optional[str] = None  # noqa: UP045  None: start a local cluster; "auto" or HOST:PORT: join one
    num_cpus: Optional[int] = None  # noqa: UP045  local cluster size; None: all cores
    num_gpus: Optional[int] = None  # noqa: UP045


@dataclass
class ResourcesConfig:
    cpus: float = 1.0  # per trial; torch threads = this
    gpus: float = 0.0  # per trial, fractional allowed (e.g. 0.5: two trials per GPU)

    def __post_init__(self) -> None:
        _first_problem([(self.cpus > 0, "resources.cpus must be > 0"), (self.gpus >= 0, "resources.gpus must be >= 0")])


@dataclass
class WandbConfig:
    mode: str = "offline"  # offline (no key, no network), online, disabled
    project: str = "nasfpn"
    entity: Optional[str] = None  # noqa: UP045
    top_k: int = 10  # rows of the top-architectures table
    table_every: int = 10  # refresh the table every this many trials

    def __post_init__(self) -> None:
        _first_problem(
            [
                (self.mode in WANDB_MODES, f"wandb.mode={self.mode!r}: expected one of {', '.join(WANDB_MODES)}"),
                (self.top_k >= 1, f"wandb.top_k={self.top_k}: must be >= 1"),
                (self.table_every >= 1, f"wandb.table_every={self.table_every}: must be >= 1"),
            ]
        )


@dataclass
class ObjectiveConfig:
    """MnasNet-style reward AP * (cost / target) ** weight; off by default."""

    enabled: bool = False
    cost: str = "macs"  # macs | latency (eval_latency_ms)
    target: float = 1.0e9
    weight: float = -0.07

    def __post_init__(self) -> None:
        _first_problem(
            [
                (self.cost in ("macs", "latency"), "objective.cost: expected macs or latency"),
                (not self.enabled or self.target > 0, f"objective.target={self.target}: must be > 0"),
            ]
        )


@dataclass
class RunConfig:
    """The top-level settings of a search (the groups are in SearchConfig)."""

    name: str = "default"  # run name: the run lives in storage_path/name
    storage_path: str = "runs"  # made absolute at start; must be shared storage on a cluster
    num_trials: int = 300  # trained architectures (cache hits do not count); the default run is bounded by time
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

    def __post_init__(self) -> None:
        _first_problem(
            [
                (self.num_trials >= 1, f"num_trials={self.num_trials}: must be >= 1"),
                (self.concurrency >= 1, f"concurrency={self.concurrency}: must be >= 1"),
                (self.max_retries >= 0, f"max_retries={self.max_retries}: must be >= 0"),
                (self.time_budget_s is None or self.time_budget_s > 0, "time_budget_s must be > 0 or null"),
                (self.trial_timeout_s is None or self.trial_timeout_s > 0, "trial_timeout_s must be > 0 or null"),
                (self.device in ("auto", "cpu", "cuda"), f"device={self.device!r}: expected auto, cpu or cuda"),
                (
                    isinstance(self.name, str) and _SAFE_NAME.fullmatch(self.name) is not None,
                    f"name={self.name!r}: the run directory's name, one path component: letters, digits and"
                    " . _ - + = @ (not starting with '.' or '-', at most 128 characters)",
                ),
                (
                    isinstance(self.seed, int) and 0 <= self.seed <= _MAX_SEED,
                    f"seed={self.seed}: must be an integer from 0 to 2**63 - 1",
                ),
                (self.top_k >= 1, f"top_k={self.top_k}: must be >= 1"),
                (self.max_cache_hits >= 1, f"max_cache_hits={self.max_cache_hits}: must be >= 1"),
            ]
        )


@dataclass
class SearchConfig(RunConfig):
    """The schema of `python -m search.run`: RunConfig's settings and the groups."""

    controller: Any = MISSING
    proxy_task: Any = MISSING
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
