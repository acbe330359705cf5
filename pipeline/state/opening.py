"""Opening a state file: is it ours, of a version we read, for this endpoint and this
manifest; migrated if older. Everything before `StateStore` may read or write a row.

The checks refuse rather than guess (each with exit 3 and the likely fix): another program's
SQLite file is never written to, a newer schema is never downgraded, a folder of another
endpoint or manifest is never mixed with this one. Migration is in place and whole (one
transaction), or, for a read-only open, on a private copy in memory.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import StateError
from pipeline.state import schema
from pipeline.state.schema import SCHEMA_VERSION


@dataclass
class Opened:
    """A connection ready for `StateStore`. `copy`: the private copy a read-only open reads
    (see `_open_readonly`); `migrated_copy`: the file is of an older schema and this reads
    a copy migrated in memory (the file itself is migrated by the next command that writes
    to the folder)."""

    conn: sqlite3.Connection
    copy: tempfile.TemporaryDirectory[str] | None = None
    migrated_copy: bool = False


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def connect(
    path: Path,
    endpoint: str | None,
    *,
    readonly: bool,
    manifest: str | None,
    rebind: bool,
) -> Opened:
    """Open (creating unless readonly), check schema version and endpoint, migrate a file
    of an older schema (in place, or a copy in memory when readonly) and, when `manifest`
    (a resolved path) is given, check that the folder belongs to it."""
    if readonly and not path.exists():
        raise StateError(f"no state file at {path}")
    try:
        if readonly:
            conn, copy = _open_readonly(path)
            opened = Opened(conn, copy)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            opened = Opened(sqlite3.connect(path, isolation_level=None, timeout=10))
            opened.conn.execute("PRAGMA synchronous=FULL")
        try:
            _check(opened, path, endpoint, create=not readonly)
            if manifest is not None:
                _bind(opened.conn, path, manifest, write=not readonly, rebind=rebind)
        except BaseException:
            opened.conn.close()
            if opened.copy is not None:
                opened.copy.cleanup()
            raise
        if not readonly:
            # Only once the file is known to be ours and of a version we read: switching
            # the journal mode writes to it.
            opened.conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise StateError(f"state file {path} cannot be used: {exc}") from None
    return opened


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


OUR_TABLES = frozenset({"meta", "attempts"})


def ours(tables: set[str]) -> bool:
    """Whether a SQLite file holding `tables` is a run-pipeline state file: the one test of
    "is this our state", for opening it and for the output folder's checks alike."""
    return tables >= OUR_TABLES


def state_problem(path: Path) -> str | None:
    """Why the state file at `path` is not a run-pipeline state (missing, empty, another
    SQLite file, not SQLite at all); None when it is one."""
    if not path.exists():
        return "is missing"
    if path.stat().st_size == 0:
        return "is empty"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"cannot be read ({exc})"
    if not ours(tables):
        return "is not a run-pipeline state file"
    return None


def _check(opened: Opened, path: Path, endpoint: str | None, *, create: bool) -> None:
    conn = opened.conn
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    if not ours(tables):
        if tables or not create:  # another program's SQLite file: never write our tables
            raise StateError(f"{path} is not a run-pipeline state file")
        with transaction(conn):
            schema.create(conn)
            schema.migrate(conn, 1)
            conn.execute("INSERT INTO meta VALUES ('created_at', ?)", (str(time.time()),))
            if endpoint:
                conn.execute("INSERT INTO meta VALUES ('endpoint', ?)", (endpoint,))
    try:
        version = int(meta(conn, "schema_version") or 0)
    except ValueError:
        raise StateError(
            f"state file {path} has schema_version {meta(conn, 'schema_version')!r}, "
            "not a number: it was edited or damaged (restore it, or rebuild it with "
            "`run-pipeline rebuild-state`)"
        ) from None
    if version > SCHEMA_VERSION:
        raise StateError(
            f"state file {path} was written by a newer run-pipeline "
            f"(schema {version}, this one reads up to {SCHEMA_VERSION}); "
            "upgrade run-pipeline or use another --out folder"
        )
    stored = meta(conn, "endpoint")
    if endpoint and stored and stored != endpoint:
        raise StateError(
            f"state file {path} belongs to endpoint {stored}, not "
            f"{endpoint}; its tasks cannot be tracked there (use another --out)"
        )
    if version < SCHEMA_VERSION:
        if create:
            _migrate(conn)
        else:
            _migrate_copy(opened)
    if endpoint and not stored and create:
        with transaction(conn):
            conn.execute("INSERT INTO meta VALUES ('endpoint', ?)", (endpoint,))


def _bind(
    conn: sqlite3.Connection, path: Path, manifest: str, *, write: bool, rebind: bool
) -> None:
    """An output folder belongs to one manifest: two manifests of the same file name must
    not share, and spend, each other's jobs. The folder records the manifest's path
    relative to the folder itself (`binding`), so a content repository moved or copied
    whole, manifests and outputs together, keeps its state. A folder that recorded an
    absolute path (before 2026-12) is migrated in place when that path is this manifest's;
    a folder made before any of this adopts the first manifest that uses it."""
    stored = meta(conn, "manifest")
    mine = binding(path.parent, manifest)
    if stored == mine:
        return
    if stored is not None and not rebind and stored != manifest:
        bound = Path(stored) if Path(stored).is_absolute() else path.parent / stored
        raise StateError(
            f"output folder {path.parent} belongs to the manifest {os.path.normpath(bound)}, "
            f"not {manifest}; give this manifest its own folder with --out DIR, or, if that "
            "manifest was moved or renamed to this one, pass --rebind"
        )
    if write:
        with transaction(conn):
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('manifest', ?)", (mine,))


def binding(folder: Path, manifest: str) -> str:
    """How a folder names its manifest: the manifest's path relative to the folder (both
    resolved), which stays true when the two move together."""
    return os.path.relpath(manifest, folder.resolve())


def _migrate(conn: sqlite3.Connection) -> None:
    """In place, in one transaction: a crash leaves the file as it was, never half new. The
    version is read again inside the transaction, in case another process got there first
    (`status` takes no lock)."""
    with transaction(conn):
        schema.migrate(conn, int(meta(conn, "schema_version") or 0))


def _migrate_copy(opened: Opened) -> None:
    """Read-only: copy the file into memory and migrate the copy; the file is untouched."""
    copy = sqlite3.connect(":memory:", isolation_level=None)
    try:
        opened.conn.backup(copy)
    except BaseException:
        copy.close()
        raise
    opened.conn.close()
    opened.conn = copy
    _migrate(copy)
    opened.migrated_copy = True
