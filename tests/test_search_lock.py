"""One driver per run: a second driver is refused in one line naming the holder, before Ray."""

import os
import subprocess
import sys
import textwrap

import pytest

from search.driver import run_search
from search.errors import SearchSetupError
from search.lock import LOCK_NAME, RunLock
from tests.search_helpers import compose_search

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from search.lock import RunLock
    lock = RunLock(Path(sys.argv[1]), "x")
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of run `x` under tmp_path."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "x")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_driver_is_refused_naming_the_holder(tmp_path, holder):
    cfg = compose_search(tmp_path, "name=x", "wandb.mode=disabled")
    with pytest.raises(SearchSetupError) as e:
        run_search(cfg)
    message = str(e.value)
    assert "\n" not in message
    assert f"pid {holder.pid} on " in message and "choose another name=" in message
    assert os.listdir(tmp_path / "x") == [LOCK_NAME]  # the holder's run is left as it was


def test_the_cli_exits_2_in_one_line(tmp_path, holder):
    out = subprocess.run(
        [sys.executable, "-m", "search.run", f"storage_path={tmp_path}", "name=x", "proxy_task=tiny"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: run 'x' is being driven by pid {holder.pid} on ")


def test_the_lock_is_free_again_when_its_holder_dies(tmp_path, holder):
    holder.kill()  # as kill -9 of a driver: the kernel drops the flock
    holder.wait()
    lock = RunLock(tmp_path / "x", "x")
    lock.acquire()
    assert not lock.created
    lock.release()


def test_a_refused_new_run_leaves_no_directory(tmp_path):
    lock = RunLock(tmp_path / "new", "new")
    lock.acquire()
    assert lock.created and (tmp_path / "new" / LOCK_NAME).exists()
    with pytest.raises(SearchSetupError, match="is being driven by pid"):
        RunLock(tmp_path / "new", "new").acquire()  # a second open file description conflicts
    lock.release(discard=True)
    assert not (tmp_path / "new").exists()
