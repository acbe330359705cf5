"""The state file: every submission's intent, task id, outcome and download. All SQL lives here.

Durability rules (they are what makes resuming safe):
- the intent row is committed before the createTask call, the task id right after it;
- SQLite runs in WAL mode with synchronous=FULL, so a commit survives a crash or a reboot;
- progress that can be re-learned (last remote state, poll count) is written in batches.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.errors import StateError

SCHEMA_VERSION = 1

Phase = Literal["intent", "submitted", "succeeded", "failed", "timed_out"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id                 INTEGER PRIMARY KEY,
    job_id             TEXT    NOT NULL,
    fingerprint        TEXT    NOT NULL,
    attempt            INTEGER NOT NULL,
    model              TEXT    NOT NULL,
    phase              TEXT    NOT NULL,
    task_id            TEXT UNIQUE,
    possible_duplicate INTEGER NOT NULL DEFAULT 0,
    creates            INTEGER NOT NULL DEFAULT 0,
    intent_at          REAL    NOT NULL,
    submitted_at       REAL,
    completed_at       REAL,
    remote_state       TEXT,
    polls              INTEGER NOT NULL DEFAULT 0,
    video_url          TEXT,
    error_code         TEXT,
    error_message      TEXT,
    permanent          INTEGER NOT NULL DEFAULT 0,
    file               TEXT,
    sha256             TEXT,
    bytes              INTEGER,
    UNIQUE (job_id, fingerprint, attempt)
);
CREATE INDEX IF NOT EXISTS attempts_job ON attempts (job_id, id);
"""

_COLUMNS = (
    "id, job_id, fingerprint, attempt, model, phase, task_id, possible_duplicate, creates, "
    "intent_at, submitted_at, completed_at, remote_state, polls, video_url, error_code, "
    "error_message, permanent, file, sha256, bytes"
)


@dataclass(frozen=True)
class Attempt:
    """One submission of one job version (row of `attempts`)."""

    id: int
    job_id: str
    fingerprint: str
    attempt: int
    model: str
    phase: Phase
    task_id: str | None
    possible_duplicate: bool
    creates: int
    intent_at: float
    submitted_at: float | None
    completed_at: float | None
    remote_state: str | None
    polls: int
    video_url: str | None
    error_code: str | None
    error_message: str | None
    permanent: bool
    file: str | None
    sha256: str | None
    bytes: int | None

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> Attempt:
        values = list(row)
        values[7] = bool(values[7])
        values[17] = bool(values[17])
        return cls(*values)  # type: ignore[arg-type]


def _open_readonly(
    path: Path,
) -> tuple[sqlite3.Connection, tempfile.TemporaryDirectory[str] | None]:
    """A read-only connection. A WAL database read in place needs its `-shm` file, which a
    read-only folder (a CI cache, another user's output) cannot provide: then read a private
    copy of the file and its WAL, so `status` and `--dry-run` work there too."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn, None
    except sqlite3.OperationalError:
        pass  # read a copy
    copy = tempfile.TemporaryDirectory(prefix="run-pipeline-state-")
    target = Path(copy.name) / path.name
    try:
        shutil.copyfile(path, target)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, target.with_name(target.name + "-wal"))
        conn = sqlite3.connect(target, isolation_level=None)
    except BaseException:
        copy.cleanup()
        raise
    return conn, copy


class StateStore:
    """A state file opened for one endpoint. Use `StateStore.open(...)` as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.copy: tempfile.TemporaryDirectory[str] | None = None  # see _open_readonly

    @classmethod
    def open(cls, path: Path, endpoint: str | None = None, *, readonly: bool = False) -> StateStore:
        """Open (creating unless readonly) and check schema version and endpoint."""
        if readonly and not path.exists():
            raise StateError(f"no state file at {path}")
        try:
            if readonly:
                conn, path_read = _open_readonly(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, isolation_level=None, timeout=10)
                conn.execute("PRAGMA synchronous=FULL")
            store = cls(conn, path)
            if readonly:
                store.copy = path_read
            try:
                store._check(endpoint, create=not readonly)
            except BaseException:
                conn.close()
                raise
            if not readonly:
                # Only once the file is known to be ours and of a version we read: switching
                # the journal mode writes to it.
                conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file {path} cannot be used: {exc}") from None
        return store

    def _check(self, endpoint: str | None, *, create: bool) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            if tables:  # another program's SQLite file: never write our tables into it
                raise StateError(f"{self.path} is not a run-pipeline state file")
            if not create:
                raise StateError(f"{self.path} is not a run-pipeline state file")
            with self.transaction():
                # executescript() would COMMIT our transaction; run statements one by one.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
                self.conn.execute("INSERT INTO meta VALUES ('created_at', ?)", (str(time.time()),))
                if endpoint:
                    self.conn.execute("INSERT INTO meta VALUES ('endpoint', ?)", (endpoint,))
        try:
            version = int(self.meta("schema_version") or 0)
        except ValueError:
            raise StateError(
                f"state file {self.path} has schema_version {self.meta('schema_version')!r}, "
                "not a number: it was edited or damaged (restore it, or rebuild it with "
                "`run-pipeline rebuild-state`)"
            ) from None
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state file {self.path} was written by a newer run-pipeline "
                f"(schema {version}, this one reads up to {SCHEMA_VERSION}); "
                "upgrade run-pipeline or use another --out folder"
            )
        stored = self.meta("endpoint")
        if endpoint and stored and stored != endpoint:
            raise StateError(
                f"state file {self.path} belongs to endpoint {stored}, not "
                f"{endpoint}; its tasks cannot be tracked there (use another --out)"
            )
        if endpoint and not stored and create:
            with self.transaction():
                self.conn.execute("INSERT INTO meta VALUES ('endpoint', ?)", (endpoint,))

    def close(self) -> None:
        self.conn.close()
        if self.copy is not None:
            self.copy.cleanup()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- reading ---------------------------------------------------------------------------

    def attempts_by_job(self) -> dict[str, list[Attempt]]:
        """Every attempt, grouped by job id, oldest first (one query, whatever the size)."""
        result: dict[str, list[Attempt]] = {}
        for row in self.conn.execute(f"SELECT {_COLUMNS} FROM attempts ORDER BY id"):
            attempt = Attempt.from_row(row)
            result.setdefault(attempt.job_id, []).append(attempt)
        return result

    def get(self, attempt_id: int) -> Attempt:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM attempts WHERE id = ?", (attempt_id,)
        ).fetchone()
        return Attempt.from_row(row)

    # -- writing (each commit is durable; each writer returns the row as it now is) ----------

    def _update(self, attempt_id: int, sql: str, params: tuple[object, ...]) -> Attempt:
        """Run one UPDATE of attempt `attempt_id` and read the row back in the same
        transaction, so the caller's view can never drift from what was committed."""
        with self.transaction():
            self.conn.execute(sql, params)
            row = self.conn.execute(
                f"SELECT {_COLUMNS} FROM attempts WHERE id = ?", (attempt_id,)
            ).fetchone()
        return Attempt.from_row(row)

    def record_intent(self, job_id: str, fingerprint: str, attempt: int, model: str) -> Attempt:
        """Commit the intent to submit, before the create call."""
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO attempts (job_id, fingerprint, attempt, model, phase, creates, "
                "intent_at) VALUES (?, ?, ?, ?, 'intent', 1, ?)",
                (job_id, fingerprint, attempt, model, time.time()),
            )
            row = self.conn.execute(
                f"SELECT {_COLUMNS} FROM attempts WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
        return Attempt.from_row(row)

    def record_create_try(self, attempt_id: int, *, ambiguous: bool) -> Attempt:
        """Count a further create call about to be sent for this attempt (the intent counts
        the first); after an ambiguous one, flag the attempt as a possible duplicate."""
        return self._update(
            attempt_id,
            "UPDATE attempts SET creates = creates + 1, "
            "possible_duplicate = possible_duplicate OR ? WHERE id = ?",
            (int(ambiguous), attempt_id),
        )

    def discard_intent(self, attempt_id: int) -> None:
        """The create was answered with a refusal: nothing was created, forget the intent."""
        with self.transaction():
            self.conn.execute(
                "DELETE FROM attempts WHERE id = ? AND phase = 'intent'", (attempt_id,)
            )

    def record_task(self, attempt_id: int, task_id: str) -> Attempt:
        return self._update(
            attempt_id,
            "UPDATE attempts SET phase = 'submitted', task_id = ?, submitted_at = ? WHERE id = ?",
            (task_id, time.time(), attempt_id),
        )

    def record_outcome(
        self,
        attempt_id: int,
        phase: Phase,
        *,
        video_url: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        permanent: bool = False,
        remote_state: str | None = None,
    ) -> Attempt:
        return self._update(
            attempt_id,
            "UPDATE attempts SET phase = ?, video_url = coalesce(?, video_url), "
            "error_code = ?, error_message = ?, permanent = ?, "
            "remote_state = coalesce(?, remote_state), "
            "completed_at = CASE WHEN ? IN ('succeeded', 'failed') THEN ? "
            "ELSE completed_at END WHERE id = ?",
            (
                phase,
                video_url,
                error_code,
                error_message,
                int(permanent),
                remote_state,
                phase,
                time.time(),
                attempt_id,
            ),
        )

    def record_progress(self, updates: Iterable[tuple[int, str, int]]) -> None:
        """Batch of (attempt id, remote state, polls since last write): one transaction.
        Progress can be re-learned by polling, so nobody needs the rows back."""
        rows = [(state, polls, attempt_id) for attempt_id, state, polls in updates]
        if rows:
            with self.transaction():
                self.conn.executemany(
                    "UPDATE attempts SET remote_state = ?, polls = polls + ? WHERE id = ?", rows
                )

    def record_download(
        self, attempt_id: int, file: str | None, sha256: str | None, size: int | None
    ) -> Attempt:
        return self._update(
            attempt_id,
            "UPDATE attempts SET file = ?, sha256 = ?, bytes = ? WHERE id = ?",
            (file, sha256, size, attempt_id),
        )

    def release_file(self, file: str, keep: int) -> list[Attempt]:
        """`file` is about to be overwritten by attempt `keep`'s download: no other attempt
        (an older version of the job) may go on claiming it, or reverting the edit would
        find "its" file present, with another video in it. Returns the rows that let go."""
        with self.transaction():
            ids = [
                r[0]
                for r in self.conn.execute(
                    "SELECT id FROM attempts WHERE file = ? AND id != ?", (file, keep)
                )
            ]
            self.conn.execute(
                "UPDATE attempts SET file = NULL, sha256 = NULL, bytes = NULL "
                "WHERE file = ? AND id != ?",
                (file, keep),
            )
            rows = [
                self.conn.execute(f"SELECT {_COLUMNS} FROM attempts WHERE id = ?", (i,)).fetchone()
                for i in ids
            ]
        return [Attempt.from_row(r) for r in rows]

    def record_download_error(self, attempt_id: int, message: str) -> Attempt:
        return self._update(
            attempt_id,
            "UPDATE attempts SET error_code = 'download', error_message = ? WHERE id = ?",
            (message, attempt_id),
        )

    def restore(self, rows: Iterable[dict[str, object]]) -> int:
        """Insert attempts rebuilt from the ledger and log (`run-pipeline rebuild-state`),
        each a dict of column values; one transaction; the number inserted."""
        count = 0
        with self.transaction():
            for row in rows:
                names = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                self.conn.execute(
                    f"INSERT INTO attempts ({names}) VALUES ({marks})", tuple(row.values())
                )
                count += 1
        return count

    def set_video_url(self, attempt_id: int, url: str) -> Attempt:
        return self._update(
            attempt_id, "UPDATE attempts SET video_url = ? WHERE id = ?", (url, attempt_id)
        )
