"""Results of a search: the crash-safe trial record, rankings, plots, reports, export.

`python -m results --help` lists the commands for looking at a run.
"""

from results.errors import DuplicateTrialError, NoResultsError, RecordError, ResultsError
from results.record import STATUSES, TrialRecord, TrialStatus
from results.store import TrialStore

__all__ = [
    "STATUSES",
    "DuplicateTrialError",
    "NoResultsError",
    "RecordError",
    "ResultsError",
    "TrialRecord",
    "TrialStatus",
    "TrialStore",
]
