"""space.atomic: a written file is complete or absent, and two writers never share a temp name."""

import os
import subprocess
import sys
import threading

import pytest

from space.atomic import atomic_path, write_text_atomic


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_failed_first_write_leaves_no_file(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert os.listdir(tmp_path / "sub") == []


def test_killed_writer_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    script = (
        "import os, signal, sys\n"
        "from space.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('x' * 100000)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(target)], check=False)
    assert proc.returncode == -9
    assert target.read_text() == "old"


def test_two_writers_use_distinct_temp_names(tmp_path):
    target = tmp_path / "report.md"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b and a.parent == b.parent == tmp_path
        a.write_text("from a")
        b.write_text("from b")
    assert target.read_text() == "from a"  # the outer block finishes last
    assert os.listdir(tmp_path) == ["report.md"]


def test_concurrent_writers_and_a_reader_see_only_whole_files(tmp_path):
    target = tmp_path / "data.txt"
    contents = [str(i) * 20000 for i in range(4)]
    write_text_atomic(target, contents[0])
    seen, errors = set(), []

    def write(text):
        try:
            for _ in range(25):
                write_text_atomic(target, text)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    writers = [threading.Thread(target=write, args=(c,)) for c in contents]
    for w in writers:
        w.start()
    while any(w.is_alive() for w in writers):
        seen.add(target.read_text())
    for w in writers:
        w.join()
    assert not errors
    assert seen <= set(contents)
    assert target.read_text() in contents
    assert os.listdir(tmp_path) == ["data.txt"]


def test_permissions_are_those_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    atomic = write_text_atomic(tmp_path / "atomic", "x")
    assert (atomic.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)
