"""Errors the search raises (their own module, so that the driver and the Tune wiring both
import them without importing each other). Each message is one line naming the fix."""

from __future__ import annotations

import signal


class SearchSetupError(ValueError):
    """A configuration or environment problem found before any work starts (exit code 2)."""


class SearchStopped(Exception):
    """The search stopped before its budget with everything finished kept: a record write
    that failed (exit code 1) or a stop signal (exit code 128 + the signal's number)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or a second SIGINT/SIGTERM) outside the graceful stop: leave at once, through
    every `finally` (the record is closed, the run's lock released)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
