"""A per-trial time limit that also stops a trial stuck inside an epoch.

Tune runs a function trainable in a thread of its actor; when the limit passes, a timer
raises TrialTimeoutError asynchronously in that thread (CPython's
PyThreadState_SetAsyncExc), which takes effect at the next Python bytecode: between torch
ops, so within milliseconds of any training step. The trial is then recorded as 'timeout'
and the actor stays usable for the next trial.
"""

from __future__ import annotations

import ctypes
import threading
from types import TracebackType


class TrialTimeoutError(RuntimeError):
    """The trial ran past its per-trial time limit."""


class Deadline:
    """Context manager: raise TrialTimeoutError in this thread after `seconds` (None: never)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._armed = False

    def _fire(self, thread_id: int) -> None:
        with self._lock:
            if self._armed:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(TrialTimeoutError)
                )

    def __enter__(self) -> Deadline:
        if self.seconds is not None:
            self._armed = True
            self._timer = threading.Timer(self.seconds, self._fire, args=(threading.get_ident(),))
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:  # disarm before leaving, so the exception cannot land outside the block
            self._armed = False
        if self._timer is not None:
            self._timer.cancel()
