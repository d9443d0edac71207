"""A bad override at any Hydra entry point is one line on stderr and exit status 2, naming the
key and, for a typo, the key that was meant; an added key that nothing reads is refused."""

import subprocess
import sys
from pathlib import Path

import pytest

from proxy_task.cli import check_overrides
from search.config import register_configs

ROOT = Path(__file__).resolve().parent.parent
SEARCH_CONF = ROOT / "search" / "conf"


@pytest.mark.parametrize(
    "argv,words",
    [
        (["proxy_task=bcdd"], ["proxy_task/bcdd", "bccd, bccd_retrain, coco_paper"]),
        (["proxy_task.train_jsn=x"], ["train_jsn", "did you mean proxy_task.train_json?"]),
        (["controller=evolution", "controller.populaton_size=3"], ["did you mean controller.population_size?"]),
        (["num_trials=abc"], ["num_trials=abc", "could not be converted to Integer"]),
        (["+foo=1"], ["+foo=1: adds 'foo'"]),
    ],
)
def test_bad_overrides_are_one_line_naming_the_fix(argv, words):
    register_configs()
    reason = check_overrides("search", SEARCH_CONF, argv)
    assert reason is not None and "\n" not in reason
    assert "full_key" not in reason and "Config search path" not in reason
    for w in words:
        assert w in reason


def test_good_overrides_and_hydra_flags_pass():
    register_configs()
    assert check_overrides("search", SEARCH_CONF, ["proxy_task=synthetic", "proxy_task.epochs=3", "seed=2"]) is None
    assert check_overrides("search", SEARCH_CONF, ["++proxy_task.epochs=3", "hydra.run.dir=/tmp/x"]) is None
    assert check_overrides("search", SEARCH_CONF, ["--cfg", "job", "nonsense=1"]) is None  # Hydra's own


@pytest.mark.parametrize(
    "args,key",
    [
        (["search.run", "controller=nope"], "controller/nope"),
        (["proxy_task.train", "genotype=paper", "proxy_task.epoch=3"], "did you mean proxy_task.epochs?"),
        (["studies.retrain", "seedz=3"], "did you mean seeds?"),
        (["studies.variance", "proxy_task=nope"], "proxy_task/nope"),
    ],
)
def test_entry_points_exit_2_in_one_line(tmp_path, args, key):
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert key in r.stderr
    assert not list(tmp_path.iterdir())  # refused before anything is written or started
