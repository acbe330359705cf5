"""The state file: every submission's intent, task id, outcome, results and downloads. Its
rows are read and written here; opening a file, with its checks, is `opening`; the schema
and its migrations are `schema`.

Durability rules (they are what makes resuming safe):
- the intent row is committed before the createTask call, the task id right after it;
- SQLite runs in WAL mode with synchronous=FULL, so a commit survives a crash or a reboot;
- progress that can be re-learned (last remote state, poll count) is written in batches.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import StateError
from pipeline.state import opening
from pipeline.state.rows import Attempt, Phase, StoredResult, StoredUpload
from pipeline.state.schema import SCHEMA_VERSION


class TaskIdConflict(StateError):
    """A created task's id is already recorded for another attempt: the server reused it."""


__all__ = [
    "SCHEMA_VERSION",
    "Attempt",
    "Phase",
    "StateStore",
    "StoredResult",
    "StoredUpload",
    "TaskIdConflict",
]

_COLUMNS = (
    "id, job_id, fingerprint, attempt, model, phase, task_id, possible_duplicate, creates, "
    "intent_at, submitted_at, completed_at, remote_state, polls, error_code, error_message, "
    "permanent, credits, inputs, result_json"
)
_RESULT_COLUMNS = "attempt_id, idx, url, file, sha256, bytes, media_type"


class StateStore:
    """A state file opened for one endpoint. Use `StateStore.open(...)` as a context manager.

    `migrated_copy`: the file is of an older schema and was opened read-only, so this store
    reads a copy of it, migrated in memory (the file itself is migrated by the next command
    that writes to the folder)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.copy: tempfile.TemporaryDirectory[str] | None = None  # see opening.Opened
        self.migrated_copy = False

    @classmethod
    def open(
        cls,
        path: Path,
        endpoint: str | None = None,
        *,
        readonly: bool = False,
        manifest: str | None = None,
        rebind: bool = False,
    ) -> StateStore:
        """Open (creating unless readonly), check schema version and endpoint, migrate a
        file of an older schema (in place, or a copy in memory when readonly) and, when
        `manifest` (a resolved path) is given, check that the folder belongs to it (see
        `opening`)."""
        opened = opening.connect(
            path, endpoint, readonly=readonly, manifest=manifest, rebind=rebind
        )
        store = cls(opened.conn, path)
        store.copy, store.migrated_copy = opened.copy, opened.migrated_copy
        return store

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
        with opening.transaction(self.conn):
            yield

    def meta(self, key: str) -> str | None:
        return opening.meta(self.conn, key)

    # -- reading ---------------------------------------------------------------------------

    def attempts_by_job(self) -> dict[str, list[Attempt]]:
        """Every attempt with its results, grouped by job id, oldest first (two queries,
        whatever the size)."""
        results: dict[int, list[StoredResult]] = {}
        for row in self.conn.execute(
            f"SELECT {_RESULT_COLUMNS} FROM results ORDER BY attempt_id, idx"
        ):
            results.setdefault(int(row[0]), []).append(StoredResult.from_row(row))
        by_job: dict[str, list[Attempt]] = {}
        for row in self.conn.execute(f"SELECT {_COLUMNS} FROM attempts ORDER BY id"):
            attempt = Attempt.from_row(row, tuple(results.get(int(row[0]), ())))
            by_job.setdefault(attempt.job_id, []).append(attempt)
        return by_job

    def upload(self, sha256: str, extension: str) -> StoredUpload | None:
        """The stored upload of this content, if any (None also for a read-only state file
        from before the uploads table)."""
        try:
            row = self.conn.execute(
                "SELECT sha256, extension, url, uploaded_at FROM uploads "
                "WHERE sha256 = ? AND extension = ?",
                (sha256, extension),
            ).fetchone()
        except sqlite3.OperationalError:  # no such table: nothing was ever uploaded
            return None
        return None if row is None else StoredUpload(*row)

    def get(self, attempt_id: int) -> Attempt:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM attempts WHERE id = ?", (attempt_id,)
        ).fetchone()
        results = tuple(
            StoredResult.from_row(r)
            for r in self.conn.execute(
                f"SELECT {_RESULT_COLUMNS} FROM results WHERE attempt_id = ? ORDER BY idx",
                (attempt_id,),
            )
        )
        return Attempt.from_row(row, results)

    # -- writing (each commit is durable; each writer returns the row as it now is) ----------

    def _update(self, attempt_id: int, sql: str, params: tuple[object, ...]) -> Attempt:
        """Run one UPDATE of attempt `attempt_id` and read the row back in the same
        transaction, so the caller's view can never drift from what was committed."""
        with self.transaction():
            self.conn.execute(sql, params)
            return self.get(attempt_id)

    def record_intent(
        self, job_id: str, fingerprint: str, attempt: int, model: str, inputs: str | None = None
    ) -> Attempt:
        """Commit the intent to submit, before the create call (`inputs`: the job version
        as shown, JSON)."""
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO attempts (job_id, fingerprint, attempt, model, phase, creates, "
                "intent_at, inputs) VALUES (?, ?, ?, ?, 'intent', 1, ?, ?)",
                (job_id, fingerprint, attempt, model, time.time(), inputs),
            )
            assert cur.lastrowid is not None
            return self.get(cur.lastrowid)

    def record_unsent(
        self,
        job_id: str,
        fingerprint: str,
        attempt: int,
        model: str,
        code: str,
        message: str,
        *,
        permanent: bool,
    ) -> Attempt:
        """A submission that failed before any create was sent (its input could not be
        made): one failed row, with no intent before it, so nothing looks ambiguous."""
        with self.transaction():
            now = time.time()
            cur = self.conn.execute(
                "INSERT INTO attempts (job_id, fingerprint, attempt, model, phase, creates, "
                "intent_at, completed_at, error_code, error_message, permanent) "
                "VALUES (?, ?, ?, ?, 'failed', 0, ?, ?, ?, ?, ?)",
                (job_id, fingerprint, attempt, model, now, now, code, message, int(permanent)),
            )
            assert cur.lastrowid is not None
            return self.get(cur.lastrowid)

    def record_upload(self, sha256: str, extension: str, url: str, uploaded_at: float) -> None:
        """Remember an upload, replacing an older one of the same content."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO uploads (sha256, extension, url, uploaded_at) "
                "VALUES (?, ?, ?, ?)",
                (sha256, extension, url, uploaded_at),
            )

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
        try:
            return self._update(
                attempt_id,
                "UPDATE attempts SET phase = 'submitted', task_id = ?, submitted_at = ? "
                "WHERE id = ?",
                (task_id, time.time(), attempt_id),
            )
        except sqlite3.IntegrityError:
            holder = self.conn.execute(
                "SELECT job_id, attempt FROM attempts WHERE task_id = ?", (task_id,)
            ).fetchone()
            if holder is None:
                raise
            mine = self.get(attempt_id)
            raise TaskIdConflict(
                f"Kie answered the create of job {mine.job_id} with task id {task_id}, which "
                f"this state already holds for job {holder[0]} (attempt {holder[1]}): the "
                "server reused a task id. Nothing was overwritten; the create of "
                f"{mine.job_id} is left ambiguous (a rerun resubmits it, flagged as a "
                "possible duplicate)"
            ) from None

    def record_outcome(
        self,
        attempt_id: int,
        phase: Phase,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        permanent: bool = False,
        remote_state: str | None = None,
    ) -> Attempt:
        return self._update(
            attempt_id,
            "UPDATE attempts SET phase = ?, "
            "error_code = ?, error_message = ?, permanent = ?, "
            "remote_state = coalesce(?, remote_state), "
            "completed_at = CASE WHEN ? IN ('succeeded', 'failed') THEN ? "
            "ELSE completed_at END WHERE id = ?",
            (
                phase,
                error_code,
                error_message,
                int(permanent),
                remote_state,
                phase,
                time.time(),
                attempt_id,
            ),
        )

    def record_success(
        self,
        attempt_id: int,
        urls: Sequence[str],
        credits: float | None,
        result_json: str | None = None,
    ) -> tuple[Attempt, bool]:
        """The task succeeded with `urls` (Kie's order) and reported `credits`; a result
        that is not a file is `result_json`. The first list recorded for a task stands: a
        later, different one is not taken (the second value says it differed, for the log)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE attempts SET phase = 'succeeded', error_code = NULL, "
                "error_message = NULL, permanent = 0, remote_state = 'success', "
                "credits = coalesce(?, credits), completed_at = coalesce(completed_at, ?), "
                "result_json = coalesce(result_json, ?) WHERE id = ?",
                (credits, time.time(), result_json, attempt_id),
            )
            before = self.get(attempt_id).results
            if not before:
                self.conn.executemany(
                    "INSERT INTO results (attempt_id, idx, url) VALUES (?, ?, ?)",
                    [(attempt_id, i, url) for i, url in enumerate(urls, 1)],
                )
            return self.get(attempt_id), bool(before) and [r.url for r in before] != list(urls)

    def record_progress(self, updates: Iterable[tuple[int, str, int]]) -> None:
        """Batch of (attempt id, remote state, polls since last write): one transaction.
        Progress can be re-learned by polling, so nobody needs the rows back."""
        rows = [(state, polls, attempt_id) for attempt_id, state, polls in updates]
        if rows:
            with self.transaction():
                self.conn.executemany(
                    "UPDATE attempts SET remote_state = ?, polls = polls + ? WHERE id = ?", rows
                )

    def record_result_file(self, attempt_id: int, index: int, stored: StoredResult) -> Attempt:
        """Result `index` is on disk as `stored` says (file, hash, size, type, the URL that
        worked). Once every result of the task is, an earlier download error is cleared."""
        with self.transaction():
            self.conn.execute(
                "UPDATE results SET url = coalesce(?, url), file = ?, sha256 = ?, bytes = ?, "
                "media_type = ? WHERE attempt_id = ? AND idx = ?",
                (
                    stored.url,
                    stored.file,
                    stored.sha256,
                    stored.bytes,
                    stored.media_type,
                    attempt_id,
                    index,
                ),
            )
            if self.get(attempt_id).downloaded:
                self.conn.execute(
                    "UPDATE attempts SET error_code = NULL, error_message = NULL, "
                    "permanent = 0 WHERE id = ? AND error_code = 'download'",
                    (attempt_id,),
                )
            return self.get(attempt_id)

    def holders(self, stem: str, keep: int) -> list[Attempt]:
        """The attempts other than `keep` that hold a file `<stem>.<ext>` (any extension):
        older versions of the job, whose files must make way before `keep` writes there."""
        # Files starting `<stem>.` are those in [`<stem>.`, `<stem>/`) ('/' follows '.'): a
        # range the index on `file` answers (a substr() condition scanned every result).
        prefix = stem + "."
        rows = self.conn.execute(
            "SELECT DISTINCT attempt_id, file FROM results "
            "WHERE file >= ? AND file < ? AND attempt_id != ?",
            (prefix, stem + "/", keep),
        ).fetchall()
        # `a.png` is a file of stem `a`; `a.b.png` is not (job `a.b`). The prefix is checked
        # again: the range is exact in UTF-8 (SQLite's default), not in UTF-16.
        ok = {a for a, f in rows if f.startswith(prefix) and "." not in f[len(prefix) :]}
        return [self.get(a) for a in sorted(ok)]

    def result_files(self) -> list[tuple[str, str]]:
        """(job id, file) of every result on disk: for the checks made at the start, which
        need no Attempt built (the journal builds them, once)."""
        return self.conn.execute(
            "SELECT a.job_id, r.file FROM results r JOIN attempts a ON a.id = r.attempt_id "
            "WHERE r.file IS NOT NULL"
        ).fetchall()

    def move_result_file(self, attempt_id: int, index: int, file: str | None) -> Attempt:
        """Result `index` of the attempt now lives at `file` (moved, same content); None: it
        is gone, and the attempt lets go of its old name."""
        params: tuple[object, ...] = ()
        if file is not None:
            sql, params = "UPDATE results SET file = ?", (file,)
        else:
            sql = "UPDATE results SET file = NULL, sha256 = NULL, bytes = NULL, media_type = NULL"
        return self._update(
            attempt_id, f"{sql} WHERE attempt_id = ? AND idx = ?", (*params, attempt_id, index)
        )

    def record_download_error(
        self, attempt_id: int, message: str, *, permanent: bool = False
    ) -> Attempt:
        """A result could not be downloaded; `permanent`: it was refused (a wrong type, a
        refused host), so the jobs taking it are blocked until a download passes."""
        return self._update(
            attempt_id,
            "UPDATE attempts SET error_code = 'download', error_message = ?, permanent = ? "
            "WHERE id = ?",
            (message, int(permanent), attempt_id),
        )

    def restore(self, rows: Iterable[dict[str, object]]) -> int:
        """Insert attempts rebuilt from the ledger and log (`run-pipeline rebuild-state`),
        each a dict of `attempts` column values, plus under "results" (optional) a list of
        dicts of `results` columns, in Kie's order; one transaction; the number inserted."""
        count = 0
        with self.transaction():
            for row in rows:
                row = dict(row)
                results = row.pop("results", None) or ()
                names, marks = ", ".join(row), ", ".join("?" for _ in row)
                cur = self.conn.execute(
                    f"INSERT INTO attempts ({names}) VALUES ({marks})", tuple(row.values())
                )
                for index, result in enumerate(results if isinstance(results, list) else (), 1):
                    cols = {"attempt_id": cur.lastrowid, "idx": index, **result}
                    names, marks = ", ".join(cols), ", ".join("?" for _ in cols)
                    self.conn.execute(
                        f"INSERT INTO results ({names}) VALUES ({marks})", tuple(cols.values())
                    )
                count += 1
        return count

    def set_result_url(self, attempt_id: int, index: int, url: str) -> Attempt:
        """A fresh link for result `index` (the old one expired)."""
        return self._update(
            attempt_id,
            "UPDATE results SET url = ? WHERE attempt_id = ? AND idx = ?",
            (url, attempt_id, index),
        )
