"""The life cycle of a job, one method per transition.

Each method does the three things a transition is: the durable write to the state file (see
state.py for the durability rules), the update of the run's in-memory view of the history
(from the row the store returns, so the view never drifts from what was committed), and the
event for run.log and the progress bars. Nothing else in the engine writes to the store.

    pending ─intend─> submitting ─submitted─> submitted ─(Kie's states)─> succeeded ─> downloaded
                          │  └─resend (another create try, same intent row)        └─> failed
                          │                       (downloaded: every result on disk, one by one)
                          ├─withdraw──────> pending   (nothing was created)
                          ├─leave_ambiguous> pending  (a create may have reached Kie)
                          └─create_failed─> failed
    submitted/running ─failed─> failed      running ─timed_out─> timed_out
    pending ─not_submitted─> failed   (an input file could not be uploaded; no create sent)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pipeline.events import Event, Listener
from pipeline.manifest import FileRef, Job
from pipeline.manifest.refs import shown
from pipeline.state.store import Attempt, StateStore, StoredResult, StoredUpload
from pipeline.status import JobState, KieState


class Journal:
    def __init__(self, store: StateStore, emit: Listener) -> None:
        self.store = store
        self.emit = emit
        self.history: dict[str, list[Attempt]] = store.attempts_by_job()
        self.revision = 0  # counts transitions, so outputs are rewritten only on change
        # The jobs whose history changed since the outputs last took them (take_changed):
        # the periodic ledger re-decides those only, not the whole batch.
        self.changed: set[str] = set()

    # -- the in-memory view --------------------------------------------------------------

    def attempts(self, job_id: str) -> list[Attempt]:
        return self.history.get(job_id, [])

    def take_changed(self) -> set[str]:
        """The ids of the jobs whose history changed since the last call (one taker: the
        run's live outputs)."""
        changed, self.changed = self.changed, set()
        return changed

    def _apply(self, attempt: Attempt) -> Attempt:
        self.changed.add(attempt.job_id)
        rows = self.history.setdefault(attempt.job_id, [])
        for i, row in enumerate(rows):
            if row.id == attempt.id:
                rows[i] = attempt
                break
        else:
            rows.append(attempt)
        return attempt

    def _event(
        self, job: Job, old: JobState, new: JobState, task_id: str | None = None, detail: str = ""
    ) -> None:
        self.revision += 1
        self.emit(Event("transition", job.id, old, new, task_id, detail))

    # -- submitting ----------------------------------------------------------------------

    def intend(self, job: Job, number: int) -> Attempt:
        """The intent to submit attempt `number`, committed before the create call."""
        inputs = json.dumps(shown(job.model, job.input), ensure_ascii=False)
        attempt = self._apply(
            self.store.record_intent(job.id, job.fingerprint, number, job.model, inputs)
        )
        self._event(job, "pending", "submitting", detail=f"attempt {number}")
        return attempt

    def resend(self, job: Job, attempt: Attempt, *, ambiguous: bool) -> Attempt:
        """Another create call for the same intent; after an ambiguous one the attempt is
        flagged as a possible duplicate."""
        attempt = self._apply(self.store.record_create_try(attempt.id, ambiguous=ambiguous))
        self._event(job, "pending", "submitting", detail=f"attempt {attempt.attempt}, resent")
        return attempt

    def submitted(self, job: Job, attempt: Attempt, task_id: str) -> Attempt:
        attempt = self._apply(self.store.record_task(attempt.id, task_id))
        # The version in run.log lets `rebuild-state` tell which version made the task.
        self._event(job, "submitting", "submitted", task_id, f"version={job.fingerprint[:16]}")
        return attempt

    def withdraw(self, job: Job, attempt: Attempt, detail: str) -> None:
        """Nothing was created (a refusal, or an interrupt before any create got through):
        forget the intent; the job is pending again."""
        self.store.discard_intent(attempt.id)
        self.history[job.id] = [a for a in self.attempts(job.id) if a.id != attempt.id]
        self.changed.add(job.id)
        self._event(job, "submitting", "pending", detail=detail)

    def leave_ambiguous(self, job: Job, attempt: Attempt, detail: str) -> None:
        """A create may have reached Kie: the intent row stays, so a rerun knows."""
        self._event(job, "submitting", "pending", detail=f"{detail}; left ambiguous")

    def create_failed(
        self, job: Job, attempt: Attempt, message: str, *, code: str, permanent: bool
    ) -> None:
        self._apply(
            self.store.record_outcome(
                attempt.id,
                "failed",
                error_code=code,
                error_message=message,
                permanent=permanent,
            )
        )
        self._event(job, "submitting", "failed", detail=message)

    def input_failed(self, job: Job, number: int, message: str, *, permanent: bool) -> Attempt:
        """Attempt `number` failed before its create was sent: its input could not be made
        (an upstream result or an upload missing)."""
        attempt = self._apply(
            self.store.record_unsent(
                job.id, job.fingerprint, number, job.model, "input", message, permanent=permanent
            )
        )
        self._event(job, "pending", "failed", detail=f"input: {message}")
        return attempt

    def not_submitted(self, job: Job, number: int, message: str) -> Attempt:
        """Attempt `number` failed before any create was sent: an input file could not be
        uploaded, or changed on disk. The next run submits it again."""
        attempt = self._apply(
            self.store.record_unsent(
                job.id, job.fingerprint, number, job.model, "upload", message, permanent=False
            )
        )
        self._event(job, "pending", "failed", detail=message)
        return attempt

    # -- uploads (not a job's transition: a file's, shared by every job that uses it) ----

    def stored_upload(self, ref: FileRef) -> StoredUpload | None:
        return self.store.upload(ref.sha256, ref.extension)

    def uploaded(self, ref: FileRef, url: str, at: float) -> None:
        self.store.record_upload(ref.sha256, ref.extension, url, at)
        self.emit(Event("info", detail=f"uploaded {ref.name} ({ref.size} bytes)"))

    # -- tracking ------------------------------------------------------------------------

    def remote_state(self, job: Job, task_id: str, old: KieState, new: KieState) -> None:
        """Kie's state of a task moved (waiting -> generating); written in batches by
        `progress`, since polling re-learns it."""
        self._event(job, old, new, task_id)

    def progress(self, updates: Iterable[tuple[int, str, int]]) -> None:
        self.store.record_progress(updates)

    def succeeded(
        self,
        job: Job,
        attempt: Attempt,
        old: KieState,
        urls: Sequence[str],
        credits: float | None = None,
        result_json: str | None = None,
    ) -> Attempt:
        """The task succeeded with these result URLs (Kie's order) and reported credits; a
        result that is not a file comes as `result_json` (kept, nothing to download)."""
        attempt, changed = self.store.record_success(attempt.id, urls, credits, result_json)
        attempt = self._apply(attempt)
        count = len(attempt.results)
        detail = f"{count} result(s)" if count else "a result without files, kept as JSON"
        self._event(job, old, "succeeded", attempt.task_id, detail)
        if changed:
            self.warning(
                job,
                f"Kie's list of results changed ({len(urls)} now, {count} before); "
                "keeping the first complete list",
                attempt.task_id,
            )
        return attempt

    def warning(self, job: Job, detail: str, task_id: str | None = None) -> None:
        """Something run.log should say about a job that changes nothing in the state."""
        self.emit(Event("warning", job.id, task_id=task_id, detail=detail))

    def failed(
        self,
        job: Job,
        attempt: Attempt,
        old: KieState,
        *,
        code: str | None,
        message: str,
        permanent: bool,
        detail: str = "",
    ) -> Attempt:
        attempt = self._apply(
            self.store.record_outcome(
                attempt.id,
                "failed",
                error_code=code,
                error_message=message,
                permanent=permanent,
                remote_state="fail",
            )
        )
        self._event(job, old, "failed", attempt.task_id, detail=detail or message)
        return attempt

    def timed_out(self, job: Job, attempt: Attempt, remote: str, message: str) -> Attempt:
        attempt = self._apply(
            self.store.record_outcome(
                attempt.id,
                "timed_out",
                remote_state=remote,
                error_code="timeout",
                error_message=message,
            )
        )
        self._event(job, "running", "timed_out", attempt.task_id)
        return attempt

    # -- downloading ---------------------------------------------------------------------

    def url_refreshed(self, attempt: Attempt, index: int, url: str) -> Attempt:
        """A fresh link for the expired URL of result `index` (no status change, no event)."""
        return self._apply(self.store.set_result_url(attempt.id, index, url))

    def holders(self, stem: str, attempt: Attempt) -> list[Attempt]:
        """The other attempts holding a file `<stem>.<ext>` that `attempt` is about to write."""
        return [self._apply(a) for a in self.store.holders(stem, attempt.id)]

    def file_moved(self, attempt: Attempt, index: int, file: str | None) -> Attempt:
        """Result `index` was moved to `file` (an earlier take set aside, or brought back);
        None: it was gone, and the attempt lets go of its old name."""
        return self._apply(self.store.move_result_file(attempt.id, index, file))

    def result_downloaded(
        self, job: Job, attempt: Attempt, index: int, stored: StoredResult
    ) -> Attempt:
        """Result `index` is on disk and verified; with the last one the job is downloaded."""
        attempt = self._apply(self.store.record_result_file(attempt.id, index, stored))
        if attempt.downloaded:
            size = sum(r.bytes or 0 for r in attempt.results)
            detail = f"{len(attempt.results)} result(s), {size} bytes"
            self._event(job, "succeeded", "downloaded", attempt.task_id, detail)
        else:
            self.revision += 1  # the ledger shows each file as it lands
        return attempt

    def download_failed(
        self, job: Job, attempt: Attempt, message: str, *, permanent: bool = False
    ) -> Attempt:
        attempt = self._apply(
            self.store.record_download_error(attempt.id, message, permanent=permanent)
        )
        self._event(job, "succeeded", "failed", attempt.task_id, f"download: {message}")
        return attempt
