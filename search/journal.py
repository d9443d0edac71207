"""Finished trials the record could not take: `RUN_DIR/trials.pending.jsonl`, replayed on resume.

A record write can fail in the middle of a search (the file made read-only, the disk full,
an NFS server gone). The trial's training is finished by then and may have cost hours, so
its record is kept here, one JSON line per trial (the record's columns by name), fsynced,
and the search stops. The next driver of the run appends these lines to the record
(`TrialStore.append` is idempotent, so a line already stored is harmless) before anything
else, then deletes the file; the controller state still holds those samples as
outstanding and is told their rewards from the record, as after a driver kill.

If the journal cannot be written either (the same full disk), the records stay in memory
(`unsaved`) and the driver prints them when it stops, as the last copy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from results import TrialRecord, TrialStore
from results.record import FIELDS

JOURNAL_NAME = "trials.pending.jsonl"


def record_line(record: TrialRecord) -> str:
    """One JSON line holding every column of `record`."""
    return json.dumps(dict(zip(FIELDS, record.to_row())), sort_keys=True, allow_nan=False)


def parse_line(line: str) -> TrialRecord:
    """Inverse of `record_line`. Raises ValueError (or KeyError) on a line that is not one."""
    values = json.loads(line)
    return TrialRecord.from_row(tuple(values[name] for name in FIELDS))


class PendingJournal:
    """Append-only file of records waiting for the record; `add` never raises."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / JOURNAL_NAME
        self.unsaved: list[TrialRecord] = []  # neither the record nor the journal took them
        self.saved = 0

    def add(self, record: TrialRecord) -> bool:
        """Append `record` (fsynced); False (and kept in `unsaved`) if the file cannot be written."""
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(record_line(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            self.unsaved.append(record)
            return False
        self.saved += 1
        return True

    def pending(self) -> list[TrialRecord]:
        """The records in the file, in order. A last line torn by a kill mid-write is skipped
        (its trial was never acknowledged: the controller runs it again)."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        out = []
        for k, line in enumerate(lines):
            try:
                out.append(parse_line(line))
            except (ValueError, KeyError, TypeError):
                if k == len(lines) - 1:
                    break
                raise ValueError(f"{self.path}: line {k + 1} is not a trial record") from None
        return out

    def replay(self, store: TrialStore) -> int:
        """Append every pending record to `store`, then delete the file; returns how many.

        Raises whatever `store.append` raises (the file is kept then) and ValueError for a
        damaged line."""
        records = self.pending()
        for record in records:
            store.append(record)
        self.path.unlink(missing_ok=True)
        return len(records)
