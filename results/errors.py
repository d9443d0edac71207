"""The errors a user of the results package sees. Each message is one line naming the fix."""

from __future__ import annotations


class ResultsError(Exception):
    """Base of every user-facing failure in `results` (the CLI turns it into exit code 2)."""


class RecordError(ResultsError):
    """A trial record file that is missing, damaged, of another schema, or not ours."""


class DuplicateTrialError(RecordError):
    """An append whose trial_id is already stored with different contents."""


class NoResultsError(ResultsError):
    """A run without the trials a command needs (empty run, rank out of range)."""
