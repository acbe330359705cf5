"""Downloading results: a few workers that take finished tasks off a queue.

Each result of a task (any media, several per task) is streamed to a `.part` file, verified
and renamed into place by `pipeline.results.download.download_result`; this part decides where it
goes (`medianames`), refreshes expired links (from the query budget) and records each file
through the journal as it lands, so a stopped run keeps what it finished.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.engine.control import RunControl
from pipeline.engine.journal import Journal
from pipeline.engine.takes import Takes, intact
from pipeline.engine.timing import Timing
from pipeline.kie import client as kie
from pipeline.kie.pacing import SlidingWindowLimiter, backoff
from pipeline.manifest import Job
from pipeline.results.download import (
    DownloadError,
    Limits,
    PartFiles,
    cap_bytes,
    download_result,
)
from pipeline.results.names import MEDIA_DIR, is_take, result_stem
from pipeline.state.store import Attempt, StoredResult

WORKERS = 4


class KnownJobIds:
    """Every job id that may own a file in the folder: the manifest's and every one the
    state has seen. A view of the journal's history, not a copy: it follows the history as
    it grows, and a lookup costs the same whatever its size (a set rebuilt per download
    cost 0.2 s at 1M stored jobs)."""

    def __init__(self, manifest: Iterable[str], journal: Journal) -> None:
        self.manifest = frozenset(manifest)
        self.journal = journal

    def __contains__(self, job_id: object) -> bool:
        return job_id in self.manifest or job_id in self.journal.history


class Downloader:
    def __init__(
        self,
        journal: Journal,
        client: kie.KieClient,
        control: RunControl,
        queries: SlidingWindowLimiter,
        timing: Timing,
        folder: Path,
        rng: random.Random,
        job_ids: frozenset[str] = frozenset(),
        on_done: Callable[[Job, Attempt], None] | None = None,
        *,
        max_download_mb: int | None = None,
        room: Callable[[], bool] | None = None,
    ) -> None:
        self.journal = journal
        # Told when a job's downloads end, whole or not (the jobs taking its results wait).
        self.on_done = on_done
        self.client = client
        self.control = control
        self.queries = queries
        self.timing = timing
        self.folder = folder
        self.rng = rng
        self.known = KnownJobIds(job_ids, journal)  # they name files (see result_stem)
        self.max_download_mb = max_download_mb  # the manifest's or the flag's cap, if any
        self.room = room  # the disk guard's: a download stops when free space runs low
        self.parts = PartFiles(folder / MEDIA_DIR)  # one listing of media/ per run
        self.takes = Takes(journal, folder)
        self.queue: asyncio.Queue[tuple[Job, Attempt]] = asyncio.Queue()
        self.busy = 0
        control.on_hard_stop(self.drop_all)

    @property
    def idle(self) -> bool:
        return not self.busy and self.queue.empty()

    def drop_all(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    def enqueue(self, job: Job, attempt: Attempt) -> None:
        self.queue.put_nowait((job, attempt))
        self.control.notify()

    def has_file(self, attempt: Attempt) -> bool:
        """Whether every result of `attempt` is recorded as downloaded and on disk, whole:
        a regular file (not a link) of the size recorded, at its own name. One truncated or
        emptied since is damaged, and is downloaded again; one kept as an earlier take (the
        job's edit was reverted) is brought back."""
        return attempt.downloaded and all(
            not is_take(str(r.file)) and intact(self.folder / str(r.file), r.bytes)
            for r in attempt.results
        )

    async def run(self, done: Callable[[], bool]) -> None:
        """Download what is queued until `done()` (nothing more can arrive)."""
        await asyncio.gather(*(self._worker(done) for _ in range(WORKERS)))

    async def _worker(self, done: Callable[[], bool]) -> None:
        while not done():
            try:
                job, attempt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                await self.control.wait(1.0)
                continue
            self.busy += 1
            try:
                await self._download(job, attempt)
                if self.on_done is not None:
                    now = next(a for a in self.journal.attempts(job.id) if a.id == attempt.id)
                    self.on_done(job, now)
            finally:
                self.busy -= 1
                self.control.notify()

    async def _pause(self, failures: int) -> None:
        await asyncio.sleep(
            backoff(
                failures, base=self.timing.backoff_base, cap=self.timing.backoff_cap, rng=self.rng
            )
        )

    async def _fresh_url(self, job: Job, attempt: Attempt, index: int, old: str) -> str:
        """A new link for the expired URL of result `index`, paid from the query budget:
        Kie's download-url, else the task's own list again (the first list recorded
        stands: a different one is logged, and only its URL at `index` is taken)."""
        try:
            async with self.queries.slot():
                url = await self.client.fresh_url(job.family, attempt.task_id, old)
        except kie.KieError:
            if not attempt.task_id:
                return old
            async with self.queries.slot():
                info = await self.client.record(job.family, attempt.task_id)
            urls = info.result_urls
            if len(urls) != len(attempt.results):
                self.journal.warning(
                    job,
                    f"Kie's list of results changed ({len(urls)} now, "
                    f"{len(attempt.results)} before); keeping the first complete list",
                    attempt.task_id,
                )
            url = urls[index - 1] if index <= len(urls) else old
        self.journal.url_refreshed(attempt, index, url)
        return url

    def _disk_failed(self, job: Job, attempt: Attempt, stem: str, exc: OSError) -> Attempt:
        """The output folder, not the download, failed (full, read-only, failing): the job
        keeps its task for a rerun, and the run stops."""
        message = f"cannot write {stem}.*: {exc.strerror or exc}"
        attempt = self.journal.download_failed(job, attempt, message)
        self.control.stop(f"{message}; fix the output folder and rerun to resume", hard=True)
        return attempt

    async def _download(self, job: Job, attempt: Attempt) -> None:
        """Every result of the task not yet on disk, in Kie's order; the job is downloaded
        when the last one is. A failure leaves the others for a rerun (no new create)."""
        for result in attempt.results:
            if result.file and intact(self.folder / result.file, result.bytes):
                if not is_take(result.file):
                    continue
                stem = result_stem(job.id, result.index, self.known)
                try:
                    back = self.takes.bring_back(attempt, result, stem)
                except OSError as exc:
                    self._disk_failed(job, attempt, stem, exc)
                    return
                if back is not None:
                    attempt = back
                    continue
            attempt = await self._download_one(job, attempt, result)
            if not any(r.index == result.index and r.file for r in attempt.results):
                return

    async def _download_one(self, job: Job, attempt: Attempt, result: StoredResult) -> Attempt:
        index = result.index
        stem = result_stem(job.id, index, self.known)
        dest = self.folder / stem
        parts = self.parts if dest.parent == self.parts.folder else None
        url = result.url or ""
        try:
            self.takes.make_way(stem, attempt)
            if not url:
                url = await self._fresh_url(job, attempt, index, url)
            got = await download_result(
                self.client,
                url,
                dest,
                refresh=lambda old: self._fresh_url(job, attempt, index, old),
                pause=self._pause,
                source=attempt.task_id,
                expected_media=job.media,
                parts=parts,
                limits=Limits(
                    max_bytes=cap_bytes(job.media, job.download_mb, self.max_download_mb)
                ),
                room=self.room,
            )
        except (DownloadError, kie.KieError) as exc:
            where = f"result {index} of {len(attempt.results)}: " if index > 1 else ""
            refused = isinstance(exc, DownloadError) and exc.permanent
            return self.journal.download_failed(job, attempt, f"{where}{exc}", permanent=refused)
        except OSError as exc:  # the disk, not the download: full, read-only, failing
            return self._disk_failed(job, attempt, stem, exc)
        if got.warning:
            self.journal.warning(job, f"result {index}: {got.warning}", attempt.task_id)
        rel = got.path.relative_to(self.folder).as_posix()
        stored = StoredResult(index, got.url, rel, got.sha256, got.size, got.media_type)
        return self.journal.result_downloaded(job, attempt, index, stored)
