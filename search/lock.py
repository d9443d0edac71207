"""One driver per run: an exclusive lock on `RUN_DIR/driver.lock` for the driver's lifetime.

Two drivers on one record would train the same architectures twice and record every step
twice. The lock is `fcntl.flock` on a file in the run directory: the kernel drops it when
the holding process exits however it exits (`kill -9` included), so a stale lock never
blocks a resume. Linux NFS (v4, and v3 with lockd) maps flock to POSIX byte-range locks,
so drivers on different nodes of a cluster sharing `storage_path` exclude each other too.
The file holds who took it (host, pid, start time) for the refusal message; it is never
deleted while a run exists, since unlinking a lock file lets a third process lock a new
inode while the second still waits on the old one.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from search.errors import SearchSetupError

LOCK_NAME = "driver.lock"


class RunLock:
    """Held by the one driver of `run_dir`; `acquire` creates the directory if needed."""

    def __init__(self, run_dir: Path, name: str):
        self.run_dir = run_dir
        self.name = name
        self.created = False  # this driver made the run directory (a refused start removes it)
        self._made_parents: list[Path] = []  # storage directories made for it, innermost first
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise SearchSetupError naming the driver that holds it."""
        parent = self.run_dir.parent
        while not parent.exists():
            self._made_parents.append(parent)
            parent = parent.parent
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.run_dir.mkdir()  # atomic: of two new drivers, one creates it
            self.created = True
        except FileExistsError:
            pass
        path = self.run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.pread(fd, 4096, 0))
            os.close(fd)
            raise SearchSetupError(
                f"run {self.name!r} is being driven by {holder}; wait for it to end, stop it, or choose another name=..."
            ) from None
        os.ftruncate(fd, 0)
        info = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self, discard: bool = False) -> None:
        """Drop the lock; with `discard`, also remove the run directory this driver created
        if nothing but the lock file is in it (a refused start leaves nothing behind)."""
        if self._fd is None:
            return
        if discard and self.created:
            leftovers = [p.name for p in self.run_dir.iterdir() if p.name != LOCK_NAME]
            if not leftovers:
                (self.run_dir / LOCK_NAME).unlink(missing_ok=True)
                self.run_dir.rmdir()
                for parent in self._made_parents:
                    try:
                        parent.rmdir()
                    except OSError:  # another run was started in it meanwhile
                        break
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw.decode())
        return f"pid {int(info['pid'])} on {info['host']} (since {info['started']})"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "another driver (starting up)"
