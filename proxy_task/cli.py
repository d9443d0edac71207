"""Hydra entry points whose bad overrides are one line on stderr and exit status 2.

Hydra reports a mistyped group option (`proxy_task=bcdd`), an unknown key
(`proxy_task.train_jsn=x`) or a wrong type (`num_trials=abc`) over several lines, with a hint
about HYDRA_FULL_ERROR, and exits 1, the code of a crash. `run_app` composes the command
line's overrides once before handing over to `hydra.main`, so such a mistake is refused the
way every other bad input of this project is: `error: ...` on one line, exit 2.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

_DETAIL_PREFIXES = ("full_key:", "object_type=", "reference_type=", "To append to your config", "Set the environment")


def override_error(exc: BaseException) -> str:
    """One line from a composition error and its cause: what was wrong and, for a missing group
    option, the options there are; without OmegaConf's detail lines or Hydra's search path."""
    parts: list[str] = []
    for e in (exc, exc.__cause__):
        for line in str(e or "").splitlines():
            if line.startswith("Config search path"):
                break
            item = line.strip()
            if not item or item.startswith(_DETAIL_PREFIXES) or item in parts:
                continue
            if line.startswith("\t") and parts:  # a tab-indented option under `Available options in`
                parts[-1] += (" " if parts[-1].endswith(":") else ", ") + item
            else:
                parts.append(item)
    return "; ".join(p.rstrip(".;") for p in parts)


def _did_you_mean(exc: BaseException, config: DictConfig | None) -> str:
    """` (did you mean train_json?)` for a mistyped key, from the keys beside it in `config`."""
    match = re.search(r"full_key: (\S+)", str(exc.__cause__ or exc))
    if match is None or config is None:
        return ""
    parent, _, key = match.group(1).rpartition(".")
    node = OmegaConf.select(config, parent) if parent else config
    keys = [str(k) for k in node] if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(key, keys, n=1)
    return f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""


_ABSENT = object()


def _schema(config_name: str, groups: list[str]) -> DictConfig | None:
    """The config the keys are checked against: under the group choices if they compose."""
    for tried in (groups, []):
        try:
            return compose(config_name, overrides=tried)
        except (HydraException, OmegaConfBaseException, ValueError):
            continue
    return None


def check_overrides(config_name: str, config_dir: Path | None, argv: list[str]) -> str | None:
    """The one-line reason why `argv`'s overrides do not compose, or None when they do (or
    when a flag such as --help / --cfg / -m asks Hydra itself to handle the command line).
    Adding a key (`+key=value`) is refused too: every option is in the schema, so an added
    key would be read by nothing and the run would go ahead without the user's setting."""
    if any(a.startswith("-") for a in argv):
        return None
    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    groups = [o for o in overrides if "." not in o.split("=", 1)[0] and not o.startswith(("+", "~"))]  # or top keys
    added = [o for o in overrides if o.startswith("+")]
    init = initialize_config_dir(str(config_dir), version_base=None) if config_dir else initialize(version_base=None)
    with init:
        try:
            compose(config_name, overrides=overrides)
        except (HydraException, OmegaConfBaseException, ValueError) as e:
            return override_error(e) + _did_you_mean(e, _schema(config_name, groups))
        base = _schema(config_name, groups) if added else None  # composed again only to check added keys
    for o in added:
        key = o.lstrip("+").split("=", 1)[0]
        if base is not None and OmegaConf.select(base, key, default=_ABSENT) is _ABSENT:
            return f"{o}: adds '{key}', a key no part of the program reads"
    return None


def run_app(task: Callable[[Any], Any], config_name: str, config_dir: Path | None = None) -> None:
    """`hydra.main(config_name=..., config_path=config_dir)(task)()`, after refusing overrides
    that do not compose (one line, exit 2). The config schema must already be registered in
    Hydra's ConfigStore; `config_dir` is an absolute folder of YAML configs, or None."""
    reason = check_overrides(config_name, config_dir, sys.argv[1:])
    if reason is not None:
        print(f"error: {reason} (every option: --help)", file=sys.stderr)
        sys.exit(2)
    path = str(config_dir) if config_dir else None
    hydra.main(version_base=None, config_path=path, config_name=config_name)(task)()
