"""Salvage a damaged trial record: copy every row SQLite can still read into a new record.

    python -m results recover RUN --out recovered.sqlite

Rows are read in insertion order until the first unreadable page or garbled row; every
record before it is kept exactly (each is re-validated by TrialRecord). The copy is a
fresh TrialStore, so a search can resume from it (move it to RUN_DIR/trials.sqlite).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from results.errors import ResultsError
from results.record import FIELDS, TrialRecord
from results.store import TrialStore


def recover_record(db: str | os.PathLike[str], out: str | os.PathLike[str]) -> list[TrialRecord]:
    """Copy the readable trial and meta rows of `db` into a new store at `out`; returns the records.

    Raises:
        ResultsError: `out` exists already, or `db` cannot be opened at all.
    """
    src_path, out_path = Path(db), Path(out)
    if out_path.exists():
        raise ResultsError(f"{out_path} exists; give --out a new file name")
    try:
        src = sqlite3.connect(f"{src_path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as e:
        raise ResultsError(f"{src_path}: cannot open ({e})") from None
    with TrialStore(out_path) as store:
        try:
            for row in src.execute(f"SELECT {', '.join(FIELDS)} FROM trials ORDER BY seq"):
                store.append(TrialRecord.from_row(row))
            for key, value in src.execute("SELECT key, value FROM meta"):
                store.set_meta(key, json.loads(value))
        except (sqlite3.DatabaseError, TypeError, ValueError):
            pass  # the damaged part (unreadable page, garbled row): everything before it is kept
        finally:
            src.close()
        return store.records()
