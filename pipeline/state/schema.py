"""The state file's schema and its migrations (the DDL half of `state.py`).

A new file is made the way an old one is upgraded: the schema of version 1, then every
migration step in order, all in the caller's one transaction. So a migrated file and a new one
cannot drift apart, and a later version only appends a step to `MIGRATIONS` (a version 3 adds
its tables there; nothing here is ever edited once released).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# Version 1, as run-pipeline 0.1 wrote it (commit 70fdbfb): one result per attempt, a video.
_SCHEMA_1 = """
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
CREATE INDEX IF NOT EXISTS attempts_job ON attempts (job_id, id)
"""

# Version 2: the results of a task move to a table of their own (any media, several per
# task, in Kie's order); the attempt keeps the credits Kie reported for its task.
_ATTEMPTS_2 = """
CREATE TABLE attempts (
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
    error_code         TEXT,
    error_message      TEXT,
    permanent          INTEGER NOT NULL DEFAULT 0,
    credits            REAL,
    UNIQUE (job_id, fingerprint, attempt)
)
"""
_RESULTS_2 = """
CREATE TABLE results (
    attempt_id INTEGER NOT NULL REFERENCES attempts (id),
    idx        INTEGER NOT NULL CHECK (idx >= 1),
    url        TEXT,
    file       TEXT,
    sha256     TEXT,
    bytes      INTEGER,
    media_type TEXT,
    PRIMARY KEY (attempt_id, idx)
)
"""
_KEPT_2 = (
    "id, job_id, fingerprint, attempt, model, phase, task_id, possible_duplicate, creates, "
    "intent_at, submitted_at, completed_at, remote_state, polls, error_code, error_message, "
    "permanent"
)


def _to_2(conn: sqlite3.Connection) -> None:
    """Every attempt is kept as it was; a version-1 URL and file become result 1 of their
    attempt (a file there is a downloaded video, `videos/<job>.mp4`: it stays where it is)."""
    conn.execute("ALTER TABLE attempts RENAME TO attempts_1")
    conn.execute("DROP INDEX IF EXISTS attempts_job")
    conn.execute(_ATTEMPTS_2)
    conn.execute(f"INSERT INTO attempts ({_KEPT_2}) SELECT {_KEPT_2} FROM attempts_1")
    conn.execute(_RESULTS_2)
    conn.execute(
        "INSERT INTO results (attempt_id, idx, url, file, sha256, bytes, media_type) "
        "SELECT id, 1, video_url, file, sha256, bytes, "
        "CASE WHEN file IS NOT NULL THEN 'video/mp4' END FROM attempts_1 "
        "WHERE video_url IS NOT NULL OR file IS NOT NULL"
    )
    conn.execute("DROP TABLE attempts_1")
    conn.execute("CREATE INDEX attempts_job ON attempts (job_id, id)")
    conn.execute("CREATE INDEX results_file ON results (file)")


def _to_3(conn: sqlite3.Connection) -> None:
    """The files this output folder uploaded (issue 14), by content: a file is reused while
    Kie still keeps it. A lost row costs one more upload, never a wrong picture (the name
    is the content's hash)."""
    conn.execute(
        "CREATE TABLE uploads ("
        "sha256 TEXT NOT NULL, extension TEXT NOT NULL, url TEXT NOT NULL, "
        "uploaded_at REAL NOT NULL, PRIMARY KEY (sha256, extension))"
    )


def _to_4(conn: sqlite3.Connection) -> None:
    """Each submission keeps the job version it sent, as the gallery shows it (model and
    inputs as text, JSON): a result kept as an earlier take can then say what made it. Rows
    from before have none; their takes show without it."""
    conn.execute("ALTER TABLE attempts ADD COLUMN inputs TEXT")


def _to_5(conn: sqlite3.Connection) -> None:
    """A task can succeed with a result that is not a file (a detection's or lyrics' JSON,
    or a shape not known yet): the attempt keeps it as JSON text, so the job is done and
    its paid task is never bought again. Rows from before have none."""
    conn.execute("ALTER TABLE attempts ADD COLUMN result_json TEXT")


# (version reached, step): applied in order to every file below that version.
MIGRATIONS: tuple[tuple[int, Callable[[sqlite3.Connection], None]], ...] = (
    (2, _to_2),
    (3, _to_3),
    (4, _to_4),
    (5, _to_5),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def create(conn: sqlite3.Connection) -> None:
    """A new, empty file of version 1, inside the caller's transaction; `migrate` follows."""
    # executescript() would COMMIT the caller's transaction: one statement at a time.
    for statement in _SCHEMA_1.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")


def migrate(conn: sqlite3.Connection, version: int) -> int:
    """Bring a file of `version` to SCHEMA_VERSION, inside the caller's transaction (so it
    happens whole or not at all); returns the version reached."""
    for target, step in MIGRATIONS:
        if version < target:
            step(conn)
            version = target
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    return version
