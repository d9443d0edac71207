"""SIGINT and SIGTERM: a clean stop that keeps every finished trial, then exit 130 / 143.

While Tune runs, the first SIGINT or SIGTERM only sets `StopRequests.signum`; the driver's
stopper then ends the Tune run at its next step (running trials are stopped and run again
on resume, as after a time budget), the record is closed and the driver exits with
128 + the signal's number. A second signal leaves at once (`Interrupted`), still through
every `finally`. Outside Tune, `raise_on_sigterm` turns SIGTERM into `Interrupted`.

Tune's own SIGINT handler is switched off (TUNE_DISABLE_SIGINT_HANDLER) so one mechanism
handles both signals. Ray's `ray.init` installs a SIGTERM handler in the driver that kills
the local cluster and calls sys.exit inside Tune's event loop (the C++ core worker then
aborts: exit 134 with a stack dump); `install` is called again after `ray.init` to replace it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from search.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def raise_on_sigterm() -> None:
    """SIGTERM raises `Interrupted` in the main thread (as SIGINT raises KeyboardInterrupt)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)


class StopRequests:
    """Context manager: SIGINT/SIGTERM request a stop (`signum`) instead of raising."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
            self.install()
        return self

    def install(self) -> None:
        """(Re)install the handlers, e.g. after `ray.init` replaced SIGTERM's."""
        if self._previous:
            for s in STOP_SIGNALS:
                signal.signal(s, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise Interrupted(signum)  # a second signal: no more waiting
        self.signum = signum
        name = signal.Signals(signum).name
        print(f"\n{name}: stopping; finished trials are kept (send it again to leave at once)", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports it."""
        return 128 + int(self.signum or 0)
