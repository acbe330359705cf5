"""Local input files (`{file: PATH}`) made into URLs a model can fetch: uploaded once, safely.

Uploads are content-addressed: every file goes to `run-pipeline/<sha256>.<true extension>`,
so repeating an upload (after a lost answer, a kill, an expiry) only overwrites the file
with itself, and the host serves it with the Content-Type its real format has. The state
remembers each upload; one is reused while it is younger than `upload_max_age` (a margin
inside Kie's 24 h retention) and the file host still serves it (a one-byte GET, no key, off
the API's budgets), since files can vanish early. Otherwise it is uploaded again.

One upload per file however many jobs use it: callers of `url_for` for the same content
await the same in-flight resolution. A few uploads run at a time; transient failures are
retried with backoff, like creates.

The bytes sent are the bytes hashed: the file is read once, its sha256 compared with the
one the job's fingerprint was computed from, and only then uploaded. A file edited during a
run is never sent under the old content's name, and its jobs are not submitted with a
picture their fingerprint does not describe (`UploadFailed`; the next run, which reads the
new content, submits them).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Callable

from pipeline.engine.control import RunControl
from pipeline.engine.journal import Journal
from pipeline.engine.timing import Timing
from pipeline.events import Event
from pipeline.kie import client as kie
from pipeline.kie.policy import Action, retried, verdict
from pipeline.kie.uploads import UploadClient
from pipeline.manifest import FileRef
from pipeline.safefiles import TooLarge, read_bounded

UPLOAD_PATH = "run-pipeline"
PARALLEL_UPLOADS = 4  # uploads (and liveness checks) at once

_Key = tuple[str, str]  # (sha256, extension)


class UploadFailed(Exception):
    """A file could not be made available: its jobs are not submitted in this run."""


def upload_name(ref: FileRef) -> str:
    """The content-addressed name of a file on the host: `<sha256>.<extension>`."""
    return f"{ref.sha256}.{ref.extension}"


class Uploader:
    def __init__(
        self,
        journal: Journal,
        client: UploadClient,
        control: RunControl,
        timing: Timing,
        rng: random.Random,
        *,
        parallel: int = PARALLEL_UPLOADS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.client = client
        self.control = control
        self.timing = timing
        self.rng = rng
        self.clock = clock  # wall clock: upload times are stored and outlive the process
        self._slots = asyncio.Semaphore(parallel)
        self._known: dict[_Key, tuple[str, float]] = {}  # checked this run: (url, uploaded at)
        self._pending: dict[_Key, asyncio.Task[str]] = {}
        self.uploads = 0  # files sent this run
        self.reused = 0  # stored uploads found alive and reused

    def _fresh(self, uploaded_at: float) -> bool:
        return self.clock() - uploaded_at < self.timing.upload_max_age

    async def url_for(self, ref: FileRef) -> str:
        """The URL of `ref`'s content on the file host, uploading it if need be.
        Raises UploadFailed."""
        key = (ref.sha256, ref.extension)
        known = self._known.get(key)
        if known is not None and self._fresh(known[1]):
            return known[0]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._resolve(ref))
            self._pending[key] = task

            def forget(done: asyncio.Task[str]) -> None:
                if self._pending.get(key) is done:
                    del self._pending[key]
                # Its outcome is read here: when every job waiting on it has given up (a
                # hard stop), asyncio would print its UploadFailed as a stray traceback.
                if not done.cancelled():
                    done.exception()

            task.add_done_callback(forget)
        # Shielded: one job giving up waiting (a stop) must not cancel the upload the other
        # jobs of the same file wait for. `close` ends what is left at the end of the run.
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Cancel uploads still underway (the run is over; nothing was recorded for them,
        so the next run simply uploads again)."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _resolve(self, ref: FileRef) -> str:
        key = (ref.sha256, ref.extension)
        stored = self.journal.stored_upload(ref)
        if stored is not None and self._fresh(stored.uploaded_at):
            async with self._slots:
                alive = await self.client.alive(stored.url)
            if alive:
                self.reused += 1
                self._known[key] = (stored.url, stored.uploaded_at)
                return stored.url
            self.journal.emit(
                Event(
                    "info",
                    detail=f"{ref.name}: the file host no longer serves its upload; "
                    "uploading it again",
                )
            )
        url, at = await self._upload(ref)
        self._known[key] = (url, at)
        return url

    async def _upload(self, ref: FileRef) -> tuple[str, float]:
        async def attempt() -> tuple[str, float]:
            async with self._slots:
                data = await self._read(ref)
                at = self.clock()  # before sending: the host's retention starts no earlier
                info = await self.client.upload_bytes(data, UPLOAD_PATH, upload_name(ref))
            self.uploads += 1
            self.journal.uploaded(ref, info.url, at)
            return info.url, at

        def warn(exc: kie.KieError, failures: int) -> None:
            self.journal.emit(
                Event("warning", detail=f"upload of {ref.name}: {exc.message}; retrying")
            )

        try:
            return await retried(
                attempt,
                "upload",
                base=self.timing.backoff_base,
                cap=self.timing.backoff_cap,
                rng=self.rng,
                on_retry=warn,
                over=lambda: self.control.over,
            )
        except kie.KieError as exc:
            what = verdict(exc, "upload")
            if what.action is Action.STOP:
                self.control.stop(what.stop or exc.message, hard=what.hard)
                raise UploadFailed(f"upload of {ref.name} refused: {exc.message}") from None
            if what.action is Action.FAIL_JOB:
                raise UploadFailed(f"the upload host refused {ref.name}: {exc.message}") from None
            raise UploadFailed(
                f"upload of {ref.name} failed ({exc.message}); the next run tries again"
            ) from None

    async def _read(self, ref: FileRef) -> bytes:
        """The file's bytes, if they are still the content the job was fingerprinted with.
        The file may have been swapped since: it is opened without following a link or
        blocking on a FIFO, must be a regular file, and is read up to its validated size
        only (a link to /dev/zero ends there), stopping when the run does."""
        try:
            data = await asyncio.to_thread(
                read_bounded, ref.path, ref.size, stopped=lambda: self.control.over
            )
        except TooLarge:
            data = b""  # grew since it was checked: changed, as below
        except InterruptedError:
            raise UploadFailed(f"{ref.name}: not read, the run is stopping") from None
        except OSError as exc:
            raise UploadFailed(
                f"{ref.name} cannot be read any more: {exc.strerror or exc}; not submitted"
            ) from None
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise UploadFailed(
                f"{ref.name} changed on disk after the manifest was read; not submitted with "
                "a picture its fingerprint does not describe (the next run submits the new "
                "version)"
            )
        return data
