"""Salvage a damaged trial record: copy every row SQLite can still read into a new record.

    python -m results recover RUN --out recovered.sqlite

The run's settings (the meta table: strategy, config) are copied first, key by key, so the
recovered record still guards a resume against other settings. Trials are then read one
by one by their insertion number (`seq`, the table's rowid), so a damaged page or a garbled
row costs only the rows on it: every readable row before and after it is kept exactly
(each re-validated by TrialRecord), in order. The copy is a fresh TrialStore, so a search
can resume from it (move it to RUN_DIR/trials.sqlite).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from results.errors import ResultsError
from results.record import FIELDS, TrialRecord
from results.store import TrialStore

_ROW_ERRORS = (sqlite3.DatabaseError, TypeError, ValueError, KeyError)


@dataclass
class Salvage:
    """What `recover_record` kept and what it could not read."""

    records: list[TrialRecord]
    meta_keys: list[str]
    lost_rows: list[int] = field(default_factory=list)  # seq numbers of unreadable trial rows
    lost_meta: list[str] = field(default_factory=list)  # meta keys whose value was unreadable

    def summary(self, out: str | os.PathLike[str]) -> str:
        """One line for the command line."""
        text = f"{len(self.records)} records and the run's settings ({', '.join(self.meta_keys) or 'none'}) salvaged"
        text += f" into {out}"
        if self.lost_rows:
            shown = ", ".join(map(str, self.lost_rows[:10])) + (" ..." if len(self.lost_rows) > 10 else "")
            text += f"; {len(self.lost_rows)} unreadable trial rows skipped (seq {shown})"
        if self.lost_meta:
            text += f"; unreadable settings skipped: {', '.join(self.lost_meta)}"
        return text


def recover_record(db: str | os.PathLike[str], out: str | os.PathLike[str]) -> Salvage:
    """Copy the readable meta and trial rows of `db` into a new store at `out`.

    Raises:
        ResultsError: `out` exists already, or `db` cannot be opened at all.
    """
    src_path, out_path = Path(db), Path(out)
    if out_path.exists():
        raise ResultsError(f"{out_path} exists; give --out a new file name")
    try:
        src = sqlite3.connect(f"{src_path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        src.text_factory = bytes  # decode ourselves: a non-UTF-8 value then costs its row only
        src.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as e:
        raise ResultsError(f"{src_path}: cannot open ({e}); nothing to salvage there") from None
    try:
        with TrialStore(out_path) as store:
            salvage = Salvage(records=[], meta_keys=[])
            _copy_meta(src, store, salvage)
            for seq in _seqs(src):
                try:
                    row = src.execute(f"SELECT {', '.join(FIELDS)} FROM trials WHERE seq = ?", (seq,)).fetchone()
                    if row is None:
                        continue  # never written (an aborted insert leaves a gap)
                    record = TrialRecord.from_row(tuple(_text(v) for v in row))
                    store.append(record)
                except _ROW_ERRORS:
                    salvage.lost_rows.append(seq)
                    continue
                salvage.records.append(record)
            return salvage
    finally:
        src.close()


def _text(value: object) -> object:
    """Column values as TrialRecord expects them; bytes that are not UTF-8 raise ValueError."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _copy_meta(src: sqlite3.Connection, store: TrialStore, salvage: Salvage) -> None:
    try:
        rowids = [rowid for (rowid,) in src.execute("SELECT rowid FROM meta ORDER BY rowid")]
    except _ROW_ERRORS:
        salvage.lost_meta.append("(the whole settings table)")
        return
    for rowid in rowids:
        key = f"row {rowid}"
        try:
            raw_key, raw_value = src.execute("SELECT key, value FROM meta WHERE rowid = ?", (rowid,)).fetchone()
            key = str(_text(raw_key))
            store.set_meta(key, json.loads(_text(raw_value)))
        except (*_ROW_ERRORS, UnicodeDecodeError):
            salvage.lost_meta.append(key)
            continue
        salvage.meta_keys.append(key)


def _seqs(src: sqlite3.Connection) -> range:
    """Every insertion number that may hold a row: 1 .. the largest one SQLite still knows
    (the table's own maximum, or AUTOINCREMENT's counter if the table's last page is gone)."""
    top = 0
    for sql in ("SELECT max(seq) FROM trials", "SELECT seq FROM sqlite_sequence WHERE name = 'trials'"):
        try:
            row = src.execute(sql).fetchone()
            top = max(top, int(row[0] or 0) if row else 0)
        except _ROW_ERRORS:
            continue
    return range(1, top + 1)
