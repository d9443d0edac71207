"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The one mechanism every package uses to write a file in place (space is the bottom
layer, so results, proxy_task and search import it without a new dependency). The
content goes to a uniquely named temporary file in the target's directory (so two
writers of the same path never share a temporary name), is flushed to disk with fsync,
then moved over the target with `os.replace` (atomic on POSIX and Windows).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# Read once at import: setting the umask to read it is process-wide, and doing it on every
# write could give a file created meanwhile by another thread the wrong permissions.
_UMASK = _read_umask()


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary path beside `path`; write it inside the block.

    On a normal exit the temporary file is fsynced and replaces `path`; on an exception
    it is removed and `path` is left as it was. The parent directory is created. The file
    gets the permissions a plain `open(path, "w")` would give (0666 less the umask at
    import), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically (see `atomic_path`); return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
