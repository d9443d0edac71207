"""The README's commands and links work on a fresh clone: modules exist, search overrides
compose, linked files exist (docs pages' links too)."""

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from search.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> list[list[str]]:
    """Every `python -m ...` command of the README's bash blocks, continuation lines joined."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if re.match(r"(\.venv/bin/)?python -m ", line):
                out.append(shlex.split(line.split("&&")[-1]))
    return out


COMMANDS = _commands()


def test_the_readme_has_commands():
    assert len(COMMANDS) >= 20 and any(c[2] == "search.run" for c in COMMANDS)


@pytest.mark.parametrize("cmd", COMMANDS, ids=[" ".join(c[2:4]) for c in COMMANDS])
def test_each_module_exists(cmd):
    assert cmd[1] == "-m" and importlib.util.find_spec(cmd[2]) is not None, cmd[2]


SEARCHES = [c[3:] for c in COMMANDS if c[2] == "search.run" and "--help" not in c]


@pytest.mark.parametrize("overrides", SEARCHES, ids=[" ".join(o)[:60] for o in SEARCHES])
def test_each_search_command_composes(overrides):
    register_configs()
    with initialize_config_module(version_base=None, config_module="search.conf"):
        compose("search", overrides=overrides)  # an unknown key, group option or bad type raises


def _store(module: str) -> str:
    """Register the Hydra schema of `module`'s command (as its main() does); its config name."""
    from hydra.core.config_store import ConfigStore

    import proxy_task.config
    from proxy_task.train import TrainConfig
    from studies.retrain import RetrainConfig
    from studies.variance import VarianceConfig

    name, node = {"studies.retrain": ("retrain", RetrainConfig), "studies.variance": ("variance", VarianceConfig),
                  "proxy_task.train": ("train", TrainConfig)}[module]  # fmt: skip
    cs = ConfigStore.instance()
    cs.store(name=name, node=node)
    proxy_task.config.register_configs(cs)
    return name


STUDIES = [c[2:] for c in COMMANDS if c[2] in ("studies.retrain", "studies.variance", "proxy_task.train")]


@pytest.mark.parametrize("cmd", STUDIES, ids=[" ".join(c)[:60] for c in STUDIES])
def test_each_study_and_training_command_composes(cmd):
    from proxy_task.cli import check_overrides

    assert check_overrides(_store(cmd[0]), None, cmd[1:]) is None


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_point_at_files(page):
    text = page.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if "://" not in t and not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_the_first_command_searches_the_shipped_real_images_with_a_shipped_backbone():
    """The README's first command (no overrides) runs on BCCD, whose files and backbone ship."""
    from proxy_task.config import BCCD_ROOT

    register_configs()
    with initialize_config_module(version_base=None, config_module="search.conf"):
        cfg = compose("search", overrides=[])
    assert cfg.proxy_task.name == "bccd" and cfg.proxy_task.data_root == BCCD_ROOT
    assert (Path(BCCD_ROOT) / "ImageSets/Main/val.txt").is_file()
    assert "on real images" in README.split("```")[1]  # what the first command's comment promises
    assert len(list((ROOT / "data" / "backbones").glob("*.pt"))) == 3
