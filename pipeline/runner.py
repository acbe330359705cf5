"""Orchestration of one run: submit what is due, track every task, download, stop cleanly.

Everything the runner learns goes to the state file first (see state.py for the durability
rules); the runner reports through an event callback and never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from pipeline import client as kie
from pipeline.download import DownloadError, download
from pipeline.events import Event, Listener, RunTotals
from pipeline.manifest import Job, Manifest, Settings
from pipeline.models import load_prices
from pipeline.pacing import SlidingWindowLimiter, backoff
from pipeline.plan import JobPlan, classify
from pipeline.polling import PollPolicy
from pipeline.state import Attempt, StateStore
from pipeline.tracker import Active, Due, Tracker

DOWNLOAD_WORKERS = 4
CREATE_TRIES = 8  # transient failures (500, transport) per submission before giving up


@dataclass
class RunSummary:
    plans: list[JobPlan]
    stop_reason: str | None = None  # set when the account or service stopped the run
    interrupted: bool = False
    credits_committed: int = 0
    queries: int = 0
    creates: int = 0


@dataclass
class RunOptions:
    settings: Settings
    time_scale: float = 1.0  # multiplies every duration (simulated runs)
    retry_failed: bool = False
    partial: bool = False  # start even when the balance does not cover the plan
    callback_url: str | None = None
    seed: int | None = None


class Runner(Tracker):
    def __init__(
        self,
        manifest: Manifest,
        store: StateStore,
        client: kie.KieClient,
        folder: Path,
        options: RunOptions,
        emit: Listener,
    ) -> None:
        s = options.settings
        self.manifest, self.store, self.client, self.folder = manifest, store, client, folder
        self.settings, self.options, self.emit = s, options, emit
        self.scale = options.time_scale
        self.rng = random.Random(options.seed)
        self.creates = SlidingWindowLimiter(s.create_rate, rng=self.rng)
        self.queries = SlidingWindowLimiter(s.query_rate, rng=self.rng)
        self.policy = PollPolicy(
            s.poll_interval,
            max(s.poll_interval, s.poll_max_interval),
            scale=self.scale,
            horizon=s.max_wait,
        )
        self.history: dict[str, list[Attempt]] = {}
        self.queue: deque[Job] = deque()
        self.active: dict[int, Active] = {}
        self.revision = 0  # counts transitions, so outputs are rewritten only on change
        self.by_task: dict[str, int] = {}
        self.hinted: set[str] = set()
        self.callbacks_enabled = options.callback_url is not None
        self.due: list[Due] = []
        self.seq = itertools.count()
        self.downloads: asyncio.Queue[tuple[Job, int, str]] = asyncio.Queue()
        self.downloading = 0
        self.creating = False
        self.stop_submitting = False
        self.stop_reason: str | None = None
        self.interrupted = False
        self.fatal: Exception | None = None  # an error a poll task could not handle
        self.aborted = False  # a loop failed: every loop stops at its next check
        self.credits_committed = 0  # this run
        self.credits_before = 0  # earlier runs, for the current jobs (the batch budget)
        self.prices = load_prices()
        self.changed = asyncio.Event()
        self.last_flush = time.monotonic()

    # -- set-up -------------------------------------------------------------------------

    def prepare(self) -> RunTotals:
        """Decide, from the state, what this run submits, tracks and downloads."""
        self.history = self.store.attempts_by_job()
        now = time.monotonic()
        submit = track = fetch = 0
        for job in self.manifest.jobs:
            plan = self.plan(job)
            self.credits_before += self._price(job) * plan.attempts
            latest = plan.latest
            status = plan.status
            if (
                status in {"in flight", "timed out"}
                and latest
                and latest.task_id
                and not (status == "timed out" and self.options.retry_failed)
            ):
                self._track(job, latest, now)
                track += 1
            elif (
                status == "done"
                and latest
                and self.settings.download
                and not self._has_file(latest)
            ):
                self.downloads.put_nowait((job, latest.id, latest.video_url or ""))
                fetch += 1
            elif (
                status in {"new", "changed", "retry"}
                or (status == "ambiguous" and self.settings.on_ambiguous == "resubmit")
                or (status in {"failed", "timed out"} and self.options.retry_failed)
            ):
                self.queue.append(job)
                submit += 1
        return RunTotals(len(self.manifest.jobs), submit, track, fetch)

    def plan(self, job: Job) -> JobPlan:
        return classify(job, self.history.get(job.id, ()), self.settings)

    def plans(self) -> list[JobPlan]:
        return [self.plan(job) for job in self.manifest.jobs]

    def _has_file(self, attempt: Attempt) -> bool:
        return bool(attempt.file) and (self.folder / str(attempt.file)).is_file()

    def _refresh(self, attempt_id: int) -> Attempt:
        """Re-read one attempt after a write, keeping the in-memory history current."""
        attempt = self.store.get(attempt_id)
        rows = self.history.setdefault(attempt.job_id, [])
        for i, row in enumerate(rows):
            if row.id == attempt_id:
                rows[i] = attempt
                break
        else:
            rows.append(attempt)
        return attempt

    def _transition(
        self, job: Job, old: str, new: str, task_id: str | None = None, detail: str = ""
    ) -> None:
        self.emit(Event("transition", job.id, old, new, task_id, detail))
        self.revision += 1
        self._notify()

    def _finished(self) -> bool:
        submitting_left = bool(self.queue) and not self.stop_submitting
        return not (
            submitting_left
            or self.creating
            or self.active
            or self.downloading
            or not self.downloads.empty()
        )

    def _notify(self) -> None:
        """Wake every loop waiting in _wait (each waits on the event current when it began,
        so no wake-up is lost between a check and a wait)."""
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    async def _wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)

    async def _sleep_backoff(self, attempt: int) -> None:
        await asyncio.sleep(
            backoff(attempt, base=1.0 * self.scale, cap=60.0 * self.scale, rng=self.rng)
        )

    # -- the run ------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Ctrl-C / SIGTERM: stop submitting, stop waiting, keep everything recorded."""
        self.interrupted = True
        self.stop_submitting = True
        self._notify()

    def _stop(self, reason: str, *, hard: bool) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.emit(Event("stop", detail=reason))
        self.stop_submitting = True
        if hard:
            self.active.clear()
            self.due.clear()
            while not self.downloads.empty():
                self.downloads.get_nowait()
        self._notify()

    def _price(self, job: Job) -> int:
        return self.prices.credits_for(job.model, job.input) or 0

    async def check_balance(self) -> None:
        """Before the first create: refuse to start a batch the balance cannot pay for."""
        needed = sum(self._price(job) for job in self.queue)
        if self.settings.max_credits is not None:
            needed = min(needed, max(self.settings.max_credits - self.credits_before, 0))
        if not needed:
            return
        try:
            async with self.queries.slot():
                balance = await self.client.credit()
        except kie.AuthError as exc:
            self._key_refused(exc)
            return
        except kie.KieError as exc:
            self.emit(Event("warning", detail=f"could not read the balance: {exc.message}"))
            return
        self.emit(
            Event("info", detail=f"balance {balance:g} credits; this run needs up to {needed}")
        )
        if balance < needed and not self.options.partial:
            self._stop(
                f"the balance ({balance:g} credits) is short of the {needed} this run "
                "needs; top up, or pass --partial to submit what it covers",
                hard=False,
            )

    async def run(self) -> RunSummary:
        await self.check_balance()
        loops = [self._submit_loop(), self._poll_loop()]
        loops += [self._download_loop() for _ in range(DOWNLOAD_WORKERS)]
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # One loop failed, or the run was cancelled: end the others before going on.
            # They are told to stop as well as cancelled, because asyncio.wait_for (in
            # _wait) can swallow a cancellation (Python < 3.12), and a loop that lost its
            # cancellation would otherwise keep the process alive forever.
            self.aborted = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            self._flush_progress(force=True)
        if self.fatal is not None:
            raise self.fatal
        return RunSummary(
            self.plans(),
            self.stop_reason,
            self.interrupted,
            self.credits_committed,
            self.queries.calls,
            self.creates.calls,
        )

    def _done(self) -> bool:
        return self.interrupted or self.aborted or self.fatal is not None or self._finished()

    async def _poll(self, active: Active) -> None:
        """Each poll runs as a task of its own: an error it does not handle (the state file
        failing, a bug) must end the run, not vanish with the task and leave the run
        waiting forever for an answer that was never recorded."""
        try:
            await super()._poll(active)
        except Exception as exc:
            if self.fatal is None:
                self.fatal = exc
            self._notify()

    # -- submitting ---------------------------------------------------------------------

    async def _submit_loop(self) -> None:
        while not self._done():
            if self.stop_submitting or not self.queue:
                await self._wait(1.0)
                continue
            if len(self.active) >= self.settings.concurrency:
                await self._wait(1.0)
                continue
            job = self.queue.popleft()
            price = self._price(job)
            budget = self.settings.max_credits
            if budget is not None and self.credits_before + self.credits_committed + price > budget:
                self.queue.appendleft(job)
                self._stop(f"credit budget of {budget} reached; the rest stays pending", hard=False)
                continue
            self.creating = True
            try:
                await self._submit(job, price)
            finally:
                self.creating = False
                self._notify()

    async def _submit(self, job: Job, price: int) -> None:
        plan = self.plan(job)
        latest = plan.latest
        ambiguous = latest is not None and latest.phase == "intent"
        if latest is not None and ambiguous:
            attempt_id = latest.id
            self.store.record_create_try(attempt_id, ambiguous=True)
        else:
            attempt_id = self.store.record_intent(
                job.id, job.fingerprint, len(plan.current) + 1, job.model
            )
        self._refresh(attempt_id)
        self._transition(job, "pending", "submitting", detail=f"attempt {plan.attempts + 1}")
        body = job.body(self.options.callback_url)
        failures = waits = 0
        first = True
        while True:
            if not first:
                self.store.record_create_try(attempt_id, ambiguous=ambiguous)
            first = False
            try:
                async with self.creates.slot():
                    task_id = await self.client.create_task(body)
            except kie.RateLimited:
                self.creates.rejected()
                continue
            except kie.RetryableError as exc:
                ambiguous = ambiguous or exc.ambiguous
                # Maintenance can last long: wait it out with a long backoff, uncounted.
                maintenance = isinstance(exc, kie.Maintenance)
                failures += 0 if maintenance else 1
                if failures >= CREATE_TRIES or self.interrupted:
                    self._give_up_create(job, attempt_id, ambiguous, str(exc))
                    return
                self.emit(Event("warning", job.id, detail=f"create: {exc.message}; retrying"))
                if maintenance:
                    waits += 1
                    await asyncio.sleep(
                        backoff(waits, base=10.0 * self.scale, cap=300.0 * self.scale, rng=self.rng)
                    )
                else:
                    await self._sleep_backoff(failures)
                continue
            except kie.PermanentError as exc:
                self._create_refused(job, attempt_id, ambiguous, exc)
                return
            break
        self.creates.succeeded()
        self.store.record_task(attempt_id, task_id)
        attempt = self._refresh(attempt_id)
        self.credits_committed += price
        self._track(job, attempt, time.monotonic())
        self._transition(job, "submitting", "submitted", task_id)

    def _requeue(self, job: Job) -> None:
        self.queue.append(job)

    def _discard_intent(self, job: Job, attempt_id: int) -> None:
        self.store.discard_intent(attempt_id)
        self.history[job.id] = [a for a in self.history.get(job.id, []) if a.id != attempt_id]

    def _give_up_create(self, job: Job, attempt_id: int, ambiguous: bool, message: str) -> None:
        if ambiguous:  # the task may exist: keep the intent, so a rerun knows it is ambiguous
            self._transition(job, "submitting", "pending", detail=f"{message}; left ambiguous")
            return
        if self.interrupted:  # nothing was created: the job simply stays pending
            self._discard_intent(job, attempt_id)
            self._transition(job, "submitting", "pending", detail="interrupted")
            return
        self.store.record_outcome(attempt_id, "failed", error_code="create", error_message=message)
        self._refresh(attempt_id)
        self._transition(job, "submitting", "failed", detail=message)

    def _create_refused(
        self, job: Job, attempt_id: int, ambiguous: bool, exc: kie.PermanentError
    ) -> None:
        code = str(exc.code) if exc.code is not None else "error"
        if isinstance(exc, kie.Rejected | kie.NotFound):
            self.store.record_outcome(
                attempt_id, "failed", error_code=code, error_message=exc.message, permanent=True
            )
            self._refresh(attempt_id)
            self._transition(job, "submitting", "failed", detail=exc.message)
            return
        # 401, 402, 505: nothing was created by this call; the job goes back to pending.
        if not ambiguous:
            self._discard_intent(job, attempt_id)
        self.queue.appendleft(job)
        self._transition(job, "submitting", "pending", detail=exc.message)
        if isinstance(exc, kie.AuthError):
            self._key_refused(exc)
        elif isinstance(exc, kie.InsufficientCredits):
            self._stop(f"out of credits ({exc.message}); tracking what is in flight", hard=False)
        else:
            self._stop(f"model {job.model} is disabled ({exc.message})", hard=False)

    # -- downloading --------------------------------------------------------------------

    async def _download_loop(self) -> None:
        while not self._done():
            try:
                job, attempt_id, url = self.downloads.get_nowait()
            except asyncio.QueueEmpty:
                await self._wait(1.0)
                continue
            self.downloading += 1
            try:
                await self._download(job, attempt_id, url)
            finally:
                self.downloading -= 1
                self._notify()

    async def _fresh_url(self, attempt_id: int, old: str) -> str:
        """A new link for an expired result URL, paid from the query budget."""
        try:
            async with self.queries.slot():
                url = await self.client.download_url(old)
        except kie.KieError:
            attempt = self.store.get(attempt_id)
            if not attempt.task_id:
                return old
            async with self.queries.slot():
                info = await self.client.record_info(attempt.task_id)
            url = info.result_urls[0] if info.result_urls else old
        self.store.set_video_url(attempt_id, url)
        return url

    async def _download(self, job: Job, attempt_id: int, url: str) -> None:
        rel = f"videos/{job.id}.mp4"
        self.store.release_file(rel, attempt_id)
        try:
            if not url:
                url = await self._fresh_url(attempt_id, url)
            result, url = await download(
                self.client,
                url,
                self.folder / rel,
                refresh=lambda old: self._fresh_url(attempt_id, old),
                pause=self._sleep_backoff,
                source=self.store.get(attempt_id).task_id,
            )
        except (DownloadError, kie.KieError) as exc:
            self.store.record_download_error(attempt_id, str(exc))
            self._refresh(attempt_id)
            self._transition(job, "succeeded", "failed", detail=f"download: {exc}")
            return
        except OSError as exc:  # the disk, not the download: full, read-only, failing
            message = f"cannot write {rel}: {exc.strerror or exc}"
            self.store.record_download_error(attempt_id, message)
            self._refresh(attempt_id)
            self._transition(job, "succeeded", "failed", detail=f"download: {message}")
            self._stop(f"{message}; fix the output folder and rerun to resume", hard=True)
            return
        self.store.record_download(attempt_id, rel, result.sha256, result.size)
        self._refresh(attempt_id)
        self._transition(job, "succeeded", "downloaded", detail=f"{result.size} bytes")
