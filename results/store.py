"""`TrialStore`: the crash-safe, append-only record of every trial of a search.

One SQLite file (conventionally `<run dir>/trials.sqlite`) in WAL mode with
synchronous=FULL: `append` commits one transaction and fsyncs the WAL before it returns,
so a record that `append` returned for survives a killed driver or a power cut. A torn
last transaction (a crash mid-commit) is discarded by SQLite's WAL recovery; earlier
records are untouched. Records are never pickled: every column is plain SQL/JSON.

Schema (version 1, `PRAGMA user_version`; `PRAGMA application_id` marks the file as ours):
    trials(seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order
           trial_id TEXT UNIQUE, step, policy_version, genotype_json, genotype_hash,
           reward REAL NULL, metrics TEXT (JSON object), params NULL, macs NULL,
           duration_s, node, status, error NULL, cache_hit 0/1, strategy, created_at)
    meta(key TEXT PRIMARY KEY, value TEXT (JSON))
Triggers refuse UPDATE and DELETE on `trials`. The meta table is a plain key/value map.

Duplicate trial_id: `append` is idempotent. Appending a record whose trial_id is stored
with identical contents (created_at aside) does nothing and returns False, so the driver
may retry an append after a crash; different contents raise DuplicateTrialError.

On open the file is checked (`PRAGMA integrity_check`, whole pages, application id,
schema version); anything wrong raises RecordError with one line naming the file and
what to do. A store is used from one process that writes; any number may read
(`readonly=True`) while it runs.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from results.errors import DuplicateTrialError, RecordError
from results.ranking import rank_architectures
from results.record import FIELDS, STATUSES, TrialRecord, TrialStatus
from space import GenotypeError, loads

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4E465054  # "NFPT": NAS-FPN trials
_SECRET_KEY = re.compile(r"api[_-]?key|token|passw|secret|credential", re.IGNORECASE)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_RECOVER_HINT = (
    "keep a copy, then salvage what is readable with `python -m results recover {path} --out recovered.sqlite`"
    " (and move it in place of the damaged file to resume) or start a new run directory"
)

_SCHEMA = f"""
CREATE TABLE trials (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id TEXT NOT NULL UNIQUE,
    step INTEGER NOT NULL,
    policy_version INTEGER NOT NULL,
    genotype_json TEXT NOT NULL,
    genotype_hash TEXT NOT NULL,
    reward REAL,
    metrics TEXT NOT NULL,
    params INTEGER,
    macs INTEGER,
    duration_s REAL NOT NULL,
    node TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    error TEXT,
    cache_hit INTEGER NOT NULL CHECK (cache_hit IN (0, 1)),
    strategy TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX trials_by_hash ON trials (genotype_hash, status, seq);
CREATE TRIGGER trials_no_update BEFORE UPDATE ON trials
    BEGIN SELECT RAISE(ABORT, 'trials are append-only'); END;
CREATE TRIGGER trials_no_delete BEFORE DELETE ON trials
    BEGIN SELECT RAISE(ABORT, 'trials are append-only'); END;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""
_COLUMNS = ", ".join(FIELDS)
_SELECT = f"SELECT {_COLUMNS} FROM trials"


def _check_no_secrets(value: Any, where: str) -> None:
    # The run config goes into meta; refuse anything that looks like a credential.
    if isinstance(value, dict):
        for k, v in value.items():
            if _SECRET_KEY.search(str(k)):
                raise ValueError(f"{where}.{k}: looks like a credential; trial records must hold no secrets")
            _check_no_secrets(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_no_secrets(v, f"{where}[{i}]")


class TrialStore:
    """Append-only SQLite record of a search's trials. Use as a context manager.

    Args:
        path: the .sqlite file; created with its parent directories unless readonly.
        readonly: open an existing file for reading only (safe beside a running writer).

    Raises:
        RecordError: missing file (readonly), not a trial record, damaged, or another
            schema version; the message names the file and the fix.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        if readonly and not self.path.is_file():
            raise RecordError(f"{self.path}: no trial record here; check the run path")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"{self.path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
        try:
            self._connect_and_open(uri)
        except RecordError:
            if not (readonly and self._finished_in_readonly_dir()):
                raise
            # Reading a WAL-mode file needs its -shm file, which a read-only directory cannot
            # hold; a finished run (no -wal left to merge) is read as an immutable file.
            self._connect_and_open(uri + "&immutable=1")

    def _connect_and_open(self, uri: str) -> None:
        try:
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0, check_same_thread=False)
        except sqlite3.Error as e:
            raise RecordError(
                f"{self.path}: cannot open trial record ({e}); check the path and its permissions"
            ) from None
        try:
            self._open()
        except sqlite3.OperationalError as e:  # locked, unreadable, read-only directory, ...
            self._conn.close()
            raise RecordError(
                f"{self.path}: cannot use trial record ({e}); check its permissions and who holds it"
            ) from None
        except sqlite3.DatabaseError as e:  # corrupt or not a database
            self._conn.close()
            raise RecordError(
                f"{self.path}: damaged trial record ({e}); {_RECOVER_HINT.format(path=self.path)}"
            ) from None
        except RecordError:
            self._conn.close()
            raise

    def _finished_in_readonly_dir(self) -> bool:
        """True when no writer can be at work (the directory cannot be written) and nothing
        waits in a -wal file: the main file then holds the whole record."""
        wal = Path(f"{self.path}-wal")
        return not os.access(self.path.parent, os.W_OK) and (not wal.exists() or wal.stat().st_size == 0)

    # -- opening -------------------------------------------------------------------
    def _open(self) -> None:
        c = self._conn
        self._check_header()
        c.execute("PRAGMA busy_timeout = 30000")
        if not self.readonly:
            mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise RecordError(
                    f"{self.path}: SQLite refused WAL mode (got {mode!r}); put the run directory on a local filesystem"
                )
            c.execute("PRAGMA synchronous = FULL")
        c.execute("BEGIN")  # one read snapshot for all checks
        try:
            app_id = c.execute("PRAGMA application_id").fetchone()[0]
            fresh = app_id == 0 and c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            if not fresh:
                self._check_integrity(app_id)
        except BaseException:
            # a COMMIT here would fail too ("no transaction is active" after some errors)
            # and hide the real error
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        if fresh and self.readonly:
            raise RecordError(f"{self.path}: empty file, no trial written yet; wait for the search's first trial")
        if fresh:
            c.executescript(f"BEGIN IMMEDIATE; {_SCHEMA}; COMMIT;")  # all of the schema or none

    def _check_header(self) -> None:
        # Read the 100-byte SQLite header ourselves: SQLite reports a text file only on the
        # first query, and a partial page (SQLite writes whole pages) is a torn or garbage tail.
        with open(self.path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
        if not header:
            return  # a new, empty file
        if len(header) < 100 or header[:16] != _SQLITE_MAGIC:
            raise RecordError(
                f"{self.path}: not a trial record (no SQLite header: another kind of file, or damaged);"
                " check the run path"
            )
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        if size % page_size:
            raise RecordError(
                f"{self.path}: damaged trial record (size {size} is not a whole number of {page_size}-byte pages:"
                f" a torn or garbage tail); {_RECOVER_HINT.format(path=self.path)}"
            )

    def _check_integrity(self, app_id: int) -> None:
        c = self._conn
        if app_id != APPLICATION_ID:
            raise RecordError(
                f"{self.path}: not a nasfpn trial record (an SQLite file of something else); check the run path"
            )
        problems = [row[0] for row in c.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            first = problems[0].replace("\n", " ")
            raise RecordError(
                f"{self.path}: damaged trial record (integrity check: {first}); {_RECOVER_HINT.format(path=self.path)}"
            )
        version = c.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise RecordError(
                f"{self.path}: trial record schema version {version}, this code reads {SCHEMA_VERSION};"
                " use the nasfpn version that wrote it"
            )

    # -- writing -------------------------------------------------------------------
    def append(self, record: TrialRecord) -> bool:
        """Store `record` in one committed, fsynced transaction.

        Returns:
            True if written; False if the same trial (all fields but created_at equal)
            was already stored, which makes a retried append after a crash harmless.
        Raises:
            DuplicateTrialError: trial_id is stored with different contents.
            ValueError: genotype_json does not parse or does not match genotype_hash.
            RecordError: the store is read-only.
        """
        self._check_writable()
        self._check_genotype(record)
        placeholders = ", ".join("?" * len(FIELDS))
        with self._lock:
            try:
                # autocommit: the INSERT is its own transaction, fsynced (synchronous=FULL) on return
                self._conn.execute(f"INSERT INTO trials ({_COLUMNS}) VALUES ({placeholders})", record.to_row())
                return True
            except sqlite3.IntegrityError:
                stored = self.get(record.trial_id)
                if stored is None:
                    raise
        if stored.same_trial(record):
            return False
        raise DuplicateTrialError(
            f"{self.path}: trial_id {record.trial_id!r} is already stored with different contents"
            " (records are append-only); give the new trial a new trial_id"
        )

    def _check_writable(self) -> None:
        if self.readonly:
            raise RecordError(f"{self.path}: opened read-only; open TrialStore(path) to write")

    @staticmethod
    def _check_genotype(record: TrialRecord) -> None:
        try:
            genotype_hash = loads(record.genotype_json).hash()
        except GenotypeError as e:
            raise ValueError(f"trial {record.trial_id!r}: genotype_json is not a valid genotype ({e})") from None
        if genotype_hash != record.genotype_hash:
            raise ValueError(
                f"trial {record.trial_id!r}: genotype_hash {record.genotype_hash!r} is not the canonical hash"
                f" {genotype_hash!r} of genotype_json; build records with TrialRecord.from_genotype"
            )

    def set_meta(self, key: str, value: Any) -> None:
        """Set a run-level value (config, strategy name) as JSON; replaces an earlier value.

        Raises:
            ValueError: value is not JSON-able (NaN included) or holds a credential-like key.
        """
        self._check_writable()
        _check_no_secrets({key: value}, "meta")
        text = json.dumps(value, sort_keys=True, allow_nan=False)
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))

    # -- reading -------------------------------------------------------------------
    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn what damage inside a page looks like when it is read (it passes the integrity
        check: SQLite checks structure, not contents) into one RecordError line: bytes that
        are not UTF-8 ('Could not decode to UTF-8'), JSON that does not parse, a row that
        breaks the record rules."""
        try:
            with self._lock:
                yield
        except sqlite3.OperationalError as e:
            # "Could not decode to UTF-8 column 'x' with text '<the damaged bytes>'": the column only
            cause = _first_line(str(e).split(" with text ")[0])
            if "decode" not in cause.lower():
                raise RecordError(f"{self.path}: cannot read {what} ({cause}); check who holds the file") from None
            raise RecordError(
                f"{self.path}: damaged trial record ({what}: {cause}); {_RECOVER_HINT.format(path=self.path)}"
            ) from None
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as e:
            cause = _first_line(str(e)) or type(e).__name__
            raise RecordError(
                f"{self.path}: damaged trial record ({what} breaks the record rules: {cause});"
                f" {_RECOVER_HINT.format(path=self.path)}"
            ) from None

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[TrialRecord]:
        with self._reading("a stored trial"):
            return [TrialRecord.from_row(row) for row in self._conn.execute(sql, args).fetchall()]

    def records(self, status: str | None = None) -> list[TrialRecord]:
        """All records in insertion order, or only those with `status`."""
        if status is None:
            return self._rows(f"{_SELECT} ORDER BY seq")
        _check_status(status)
        return self._rows(f"{_SELECT} WHERE status = ? ORDER BY seq", (status,))

    def get(self, trial_id: str) -> TrialRecord | None:
        """The record of `trial_id`, or None."""
        found = self._rows(f"{_SELECT} WHERE trial_id = ?", (trial_id,))
        return found[0] if found else None

    def lookup_reward(self, genotype_hash: str) -> TrialRecord | None:
        """The first 'ok' record of this architecture (the reward cache), or None."""
        found = self._rows(
            f"{_SELECT} WHERE genotype_hash = ? AND status = ? ORDER BY seq LIMIT 1",
            (genotype_hash, TrialStatus.OK.value),
        )
        return found[0] if found else None

    def count(self, status: str | None = None) -> int:
        """Number of records, or of those with `status`."""
        if status is not None:
            _check_status(status)
        sql = "SELECT count(*) FROM trials" + ("" if status is None else " WHERE status = ?")
        with self._reading("the trial count"):
            return self._conn.execute(sql, () if status is None else (status,)).fetchone()[0]

    def top(self, k: int) -> list[TrialRecord]:
        """The k best architectures' best records, best first (`ranking.rank_architectures`)."""
        if k < 0:
            raise ValueError(f"k={k}: expected >= 0")
        return [a.best for a in rank_architectures(self.records(), k)]

    def unique_hashes(self) -> list[str]:
        """Every sampled architecture's hash (any status), in order of first appearance."""
        with self._reading("the architecture hashes"):
            rows = self._conn.execute("SELECT genotype_hash FROM trials GROUP BY genotype_hash ORDER BY min(seq)")
            return [row[0] for row in rows]

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The value stored by set_meta, or `default`."""
        with self._reading(f"the run's {key!r} setting"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return default if row is None else json.loads(row[0])

    def meta(self) -> dict[str, Any]:
        """Every meta key and value."""
        with self._reading("the run's settings"):
            rows = self._conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
            return {key: json.loads(value) for key, value in rows}

    # -- lifetime ------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (a writer checkpoints the WAL into the main file)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TrialStore({str(self.path)!r}{', readonly=True' if self.readonly else ''})"


def _first_line(text: str, limit: int = 200) -> str:
    """The first line of an error, printable and short: damaged bytes can hold anything."""
    line = text.splitlines()[0] if text else ""
    return "".join(ch if ch.isprintable() else "?" for ch in line)[:limit]


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status={status!r}: expected one of {list(STATUSES)}")
