"""Just before a create: the strings a job's references stand for.

- `{output: JOB, index: N}`: the URL of result N of JOB's successful task, once that result
  passed the checks of a download (host, type against JOB's model): with downloads on, it is
  on disk; with downloads off, its first bytes are fetched and checked (`results.probe`). A
  result the runner itself refuses is never sent to Kie in a paid create. A result URL
  lives about a day, and a link from `download-url` 20 minutes, so a stored URL is sent as
  it is only while the upstream task finished less than `URL_FRESH_FOR` ago; an older one
  is refreshed through `download-url` (from the query budget) first.
- `{task: JOB}`: the task id of JOB's successful task.
- `{file: PATH}`: the URL of the uploaded file, from `files` (the uploader); a run without
  one fails such a job with a clear message rather than sending a placeholder to Kie.

Only the upstream job's task for its *current* fingerprint counts, read from the journal at
the moment of the create: a downstream job never starts from a result its upstream's edit
made stale, nor before the result exists. Resolution runs before the intent is written, so
a kill during it leaves nothing ambiguous behind.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from pipeline.engine.journal import Journal
from pipeline.engine.planner import succeeded_task
from pipeline.engine.timing import Timing
from pipeline.kie import client as kie
from pipeline.kie.pacing import SlidingWindowLimiter
from pipeline.kie.policy import retried
from pipeline.manifest import FileRef, Job, OutputRef, Ref, Resolver, TaskRef
from pipeline.results.probe import ResultRefused, probe
from pipeline.state.store import Attempt

# Real seconds after the upstream task finished during which its stored result URL is sent
# as is: half the life of a refreshed link, so even a link the downloader just refreshed
# outlives the create by minutes.

FileUploads = Callable[[FileRef], Awaitable[str]]
T = TypeVar("T")


class InputError(Exception):
    """A job's input could not be made. `permanent`: trying again will not help (an edit or
    --retry-failed may); otherwise the next run tries again."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def result_urls(attempt: Attempt) -> list[str]:
    """The result URLs the state holds for a successful attempt, in Kie's order. (The one
    place the engine reads results for references: switch it when the state keeps more.)"""
    return [r.url for r in attempt.results if r.url]


class Inputs:
    def __init__(
        self,
        journal: Journal,
        client: kie.KieClient,
        queries: SlidingWindowLimiter,
        timing: Timing,
        jobs: Mapping[str, Job],
        rng: random.Random,
        files: FileUploads | None = None,
        *,
        download: bool = True,
    ) -> None:
        self.journal = journal
        self.download = download  # results are checked by downloading them (else probed)
        self.client = client
        self.queries = queries
        self.timing = timing
        self.jobs = jobs
        self.rng = rng
        self.files = files
        self.fresh_for = timing.url_fresh_for
        self.refreshed = 0  # result URLs refreshed before a create (for tests and logs)

    async def resolver(
        self, job: Job, uploaded: Mapping[FileRef, str] | None = None
    ) -> Resolver | None:
        """What each reference of `job` stands for now; None for a job without any.
        `uploaded`: the URLs of its files, when they were uploaded ahead of the create.
        Raises InputError."""
        refs = job.refs
        if not refs:
            return None
        values: dict[Ref, str] = {}
        values.update((ref, url) for ref, url in (uploaded or {}).items())
        for ref in refs:
            if ref not in values:
                values[ref] = await self._value(job, ref)
        return values.__getitem__

    async def _value(self, job: Job, ref: Ref) -> str:
        if isinstance(ref, FileRef):
            return await self._file(ref)
        upstream = self.jobs.get(ref.job)
        if upstream is None:  # validation rules this out; never send a guess
            raise InputError(f"no job {ref.job!r} in this manifest", permanent=True)
        attempt = succeeded_task(upstream, self.journal.attempts(upstream.id))
        if attempt is None:
            raise InputError(
                f"{ref.job} has no successful task for its current version", permanent=False
            )
        assert attempt.task_id is not None
        if isinstance(ref, TaskRef):
            return attempt.task_id
        return await self._checked(ref, upstream, attempt)

    async def _checked(self, ref: OutputRef, upstream: Job, attempt: Attempt) -> str:
        """Result `ref.index` of `upstream`'s task, as the downloader would accept it."""
        if self.download:
            stored = next((r for r in attempt.results if r.index == ref.index), None)
            if stored is None or not stored.file:
                raise InputError(
                    f"{ref.job}'s result {ref.index} is not downloaded and checked",
                    permanent=False,
                )
        url = await self._result_url(ref, upstream, attempt)
        if not self.download:
            try:
                await probe(self.client, url, upstream.media)
            except ResultRefused as exc:
                raise InputError(
                    f"{ref.job}'s result {ref.index} is refused ({exc.message}); nothing sent",
                    permanent=exc.permanent,
                ) from None
        return url

    async def _file(self, ref: FileRef) -> str:
        if self.files is None:
            raise InputError(
                f"{ref.name}: uploads not available in this run, so a {{file: ...}} input "
                "cannot be sent",
                permanent=True,
            )
        try:
            return await self.files(ref)
        except kie.KieError as exc:
            raise InputError(
                f"upload of {ref.name} failed: {exc.message}", permanent=False
            ) from None
        except OSError as exc:
            raise InputError(
                f"cannot read {ref.name}: {exc.strerror or exc}", permanent=False
            ) from None

    async def _result_url(self, ref: OutputRef, upstream: Job, attempt: Attempt) -> str:
        task_id = attempt.task_id
        assert task_id is not None
        urls = result_urls(attempt)
        if ref.index > len(urls):  # not in the state: ask Kie for the task's results
            info = await self._ask(
                f"results of {ref.job}", lambda: self.client.record(upstream.family, task_id)
            )
            urls = list(info.result_urls)
            if ref.index > len(urls):
                raise InputError(
                    f"{ref.job} yielded {len(urls)} result(s); there is no result {ref.index}",
                    permanent=True,
                )
        url = urls[ref.index - 1]
        finished = attempt.completed_at or 0.0
        if time.time() - finished < self.fresh_for:
            return url
        fresh = await self._ask(
            f"a fresh link to {ref.job}'s result",
            lambda: self.client.fresh_url(upstream.family, task_id, url),
        )
        self.refreshed += 1
        return fresh

    async def _ask(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """One query from the query budget, retried over transient failures (the policy's
        tries for a query)."""

        async def attempt() -> T:
            async with self.queries.slot():
                try:
                    answer = await call()
                except kie.RateLimited:
                    self.queries.rejected()
                    raise
            self.queries.succeeded()
            return answer

        try:
            return await retried(
                attempt,
                "query",
                base=self.timing.backoff_base,
                cap=self.timing.backoff_cap,
                rng=self.rng,
            )
        except kie.KieError as exc:
            raise InputError(f"could not get {what}: {exc.message}", permanent=False) from None
