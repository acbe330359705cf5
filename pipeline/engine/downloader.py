"""Downloading results: a few workers that take finished tasks off a queue.

Each result is streamed to a `.part` file, verified and renamed into place by
`pipeline.download`; this part decides where it goes, refreshes expired links (from the
query budget) and records the outcome through the journal.
"""

from __future__ import annotations

import asyncio
import os
import random
import stat
from collections.abc import Callable
from pathlib import Path

from pipeline import client as kie
from pipeline.download import DownloadError, download
from pipeline.engine.control import RunControl
from pipeline.engine.journal import Journal
from pipeline.engine.timing import Timing
from pipeline.manifest import Job
from pipeline.pacing import SlidingWindowLimiter, backoff
from pipeline.state import Attempt

WORKERS = 4


def intact(path: Path, size: int | None) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and (size is None or info.st_size == size)


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
    ) -> None:
        self.journal = journal
        self.client = client
        self.control = control
        self.queries = queries
        self.timing = timing
        self.folder = folder
        self.rng = rng
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
        """Whether the file the state records for `attempt` is on disk, whole: a regular
        file (not a link) of the size recorded. One truncated or emptied since is damaged,
        and is downloaded again."""
        return bool(attempt.file) and intact(self.folder / str(attempt.file), attempt.bytes)

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
            finally:
                self.busy -= 1
                self.control.notify()

    async def _pause(self, failures: int) -> None:
        await asyncio.sleep(
            backoff(
                failures, base=self.timing.backoff_base, cap=self.timing.backoff_cap, rng=self.rng
            )
        )

    async def _fresh_url(self, attempt: Attempt, old: str) -> str:
        """A new link for an expired result URL, paid from the query budget."""
        try:
            async with self.queries.slot():
                url = await self.client.download_url(old)
        except kie.KieError:
            if not attempt.task_id:
                return old
            async with self.queries.slot():
                info = await self.client.record_info(attempt.task_id)
            url = info.result_urls[0] if info.result_urls else old
        self.journal.url_refreshed(attempt, url)
        return url

    async def _download(self, job: Job, attempt: Attempt) -> None:
        rel = f"videos/{job.id}.mp4"
        self.journal.claim_file(rel, attempt)
        url = attempt.video_url or ""
        try:
            if not url:
                url = await self._fresh_url(attempt, url)
            result, url = await download(
                self.client,
                url,
                self.folder / rel,
                refresh=lambda old: self._fresh_url(attempt, old),
                pause=self._pause,
                source=attempt.task_id,
            )
        except (DownloadError, kie.KieError) as exc:
            self.journal.download_failed(job, attempt, str(exc))
            return
        except OSError as exc:  # the disk, not the download: full, read-only, failing
            message = f"cannot write {rel}: {exc.strerror or exc}"
            self.journal.download_failed(job, attempt, message)
            self.control.stop(f"{message}; fix the output folder and rerun to resume", hard=True)
            return
        self.journal.downloaded(job, attempt, rel, result.sha256, result.size)
