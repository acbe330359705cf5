"""Submitting jobs: createTask calls at the pace of the create budget, idempotently.

Every create is preceded by a committed intent row and followed by the committed task id
(see state.py). Creates run concurrently, each holding a slot of the create budget, so the
pacing, not one call's latency, sets the rate. A job whose create failed in a way worth
retrying steps aside until its backoff is over: it keeps its intent row (so nothing about
idempotency changes: the next try is counted on the same row, flagged when the previous one
may have reached Kie) and the other jobs go on meanwhile.

A job that takes local files first has them uploaded (`files`, the uploader's `url_for`),
before its intent row and outside the create budget: a kill during an upload leaves no
trace but the upload itself, which the next run reuses or repeats harmlessly. Its other
references (results and tasks of upstream jobs) are resolved just before the create.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from pipeline.engine.control import RunControl
from pipeline.engine.diskguard import DiskGuard
from pipeline.engine.inputs import InputError
from pipeline.engine.journal import Journal
from pipeline.engine.storm import RateStorm
from pipeline.engine.timing import Timing
from pipeline.engine.uploader import UploadFailed
from pipeline.events import Event
from pipeline.kie import client as kie
from pipeline.kie.pacing import SlidingWindowLimiter, backoff
from pipeline.kie.policy import TRIES, Action, Verdict, ambiguous, too_ambiguous, verdict
from pipeline.manifest import FileRef, Job, Resolver
from pipeline.state.store import Attempt


@dataclass
class Submission:
    """One job on its way to a task id, across the create tries of this run."""

    job: Job
    number: int  # which attempt of the job's current version this is
    attempt: Attempt | None = None  # the intent row, once written
    ambiguous: bool = False  # an earlier try may have reached Kie
    unclear: int = 0  # ambiguous answers met in this run (policy.AMBIGUOUS bounds them)
    failures: int = 0
    waits: int = 0  # maintenance (455) waits, which do not count as failures
    credits: Decimal = Decimal(0)  # reserved from the batch budget
    reserved: bool = False  # its price is counted in this run's credits (see `_free`)
    reached: bool = False  # a try of this run may have made a task: its price stays counted
    unsent: bool = False  # the last try never reached Kie (unreachable): no new try to count
    urls: dict[FileRef, str] | None = None  # the job's files, uploaded (once per submission)

    @property
    def needs_files(self) -> bool:
        return bool(self.job.files) and self.urls is None


@dataclass(order=True)
class _Backoff:
    ready_at: float
    seq: int
    submission: Submission = field(compare=False)


class Submitter:
    def __init__(
        self,
        journal: Journal,
        client: kie.KieClient,
        control: RunControl,
        creates: SlidingWindowLimiter,
        timing: Timing,
        rng: random.Random,
        *,
        callback_url: str | None,
        room: Callable[[], bool],
        admit: Callable[[Submission], bool],
        release: Callable[[Submission], None],
        on_submitted: Callable[[Job, Attempt], None],
        inputs: Callable[[Job, Mapping[FileRef, str]], Awaitable[Resolver | None]] | None = None,
        files: Callable[[FileRef], Awaitable[str]] | None = None,
        disk: DiskGuard | None = None,
    ) -> None:
        self.journal = journal
        self.client = client
        self.control = control
        self.creates = creates
        self.timing = timing
        self.rng = rng
        self.callback_url = callback_url
        self.room = room  # whether another task may be started (concurrency)
        # Reserve the job's price from the budget; False: over budget (a stop), or not yet
        # (creates underway may prove they made nothing and give their reservation back).
        self.admit = admit
        self.release = release  # give back the reservation of a job not created
        self.created = 0  # tasks this run made (a task id answered)
        self.on_submitted = on_submitted
        self.inputs = inputs  # what a job's references stand for, just before its create
        self.files = files  # a file's URL on Kie's file host, uploading it if need be
        self.preparing: set[asyncio.Task[None]] = set()  # jobs whose files are uploading
        self.disk = disk  # room to record each answered task id (issue 18)
        self.ready: deque[Submission] = deque()
        self.waiting: list[_Backoff] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        # The job taken off the queue while it waits for a create slot: still ours, so
        # that the run is never thought idle (and its tracker ended) in that moment.
        self.starting: Submission | None = None
        self._seq = itertools.count()
        # Models Kie said are paused or unknown, with its message: no further creates for
        # them in this run (their other jobs stay pending; a rerun tries one create again).
        self.unavailable: dict[str, str] = {}
        # Creates refused 429 with no end: bounded like an outage (see storm.py).
        self.storm = RateStorm(lambda why: control.stop(why, hard=False), timing.outage_give_up)

    @property
    def idle(self) -> bool:
        """Nothing underway, and nothing left that this run may still submit."""
        if self.in_flight or self.starting is not None:
            return False
        return self.control.stop_submitting or not (self.ready or self.waiting or self.preparing)

    @property
    def creating(self) -> int:
        """Jobs on their way to a task: uploading their files, or being created. (Counting
        the uploads keeps them just ahead of the creates, for jobs about to be submitted.)"""
        return len(self.in_flight) + len(self.preparing)

    def add(self, submission: Submission) -> None:
        self.ready.append(submission)
        self.control.notify()

    def _wake_ready(self, now: float) -> float | None:
        """Move jobs whose backoff is over to the ready queue; seconds to the next one."""
        while self.waiting and self.waiting[0].ready_at <= now:
            self.ready.append(heapq.heappop(self.waiting).submission)
        return self.waiting[0].ready_at - now if self.waiting else None

    async def run(self, done: Callable[[], bool]) -> None:
        try:
            while not done():
                next_wake = self._wake_ready(time.monotonic())
                if self.control.stop_submitting or not self.ready or not self.room():
                    await self.control.wait(min(next_wake or 1.0, 1.0))
                    continue
                if self.disk is not None and not self.disk.has_room():
                    self.control.stop(self.disk.full_message(), hard=False)
                    continue
                submission = self.ready.popleft()
                if submission.job.model in self.unavailable:
                    self._hold_back(submission)
                    continue
                if submission.needs_files and self.files is not None:
                    self._prepare(submission)
                    continue
                if not self.admit(submission):
                    self.ready.appendleft(submission)
                    if not self.control.stop_submitting:  # creates underway may give room
                        await self.control.wait(1.0)
                    continue
                self.starting = submission
                try:
                    await self.creates.acquire()
                except BaseException:
                    self.ready.appendleft(submission)  # settled with the rest below
                    raise
                finally:
                    self.starting = None
                if self.control.stop_submitting or self.control.over:
                    self.creates.release()
                    self._free(submission)
                    self.ready.appendleft(submission)
                    continue
                task = asyncio.create_task(self._guarded(submission))
                self.in_flight.add(task)
                task.add_done_callback(self._finished)
            # Creates already sent finish (a stop or an interrupt must not leave a task id
            # unrecorded: their answers are short, and every call has a deadline).
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        finally:
            # Uploads still underway are dropped: their jobs go back to the queue, settled
            # below with the rest.
            for task in list(self.preparing):
                task.cancel()
            await asyncio.gather(*self.preparing, return_exceptions=True)
            # Cancelled only when the run itself fails or is cancelled.
            for task in list(self.in_flight):
                task.cancel()
            await asyncio.gather(*self.in_flight, return_exceptions=True)
            self._settle()

    def _free(self, s: Submission) -> None:
        """This try made no task: give its price back, unless an earlier try of this run
        may have made one (a create that may have reached Kie counts until proven
        otherwise; a 429, a refused connection or an error answer proves nothing was made).
        A try of an earlier run is that run's money, counted from the state."""
        if not s.reached:
            self.release(s)

    def _prepare(self, s: Submission) -> None:
        task = asyncio.create_task(self._upload_files(s))
        self.preparing.add(task)
        task.add_done_callback(self._prepared)

    def _prepared(self, task: asyncio.Task[None]) -> None:
        self.preparing.discard(task)
        self.control.notify()

    async def _upload_files(self, s: Submission) -> None:
        """Get a URL for each of the job's files, then put the job back first in line."""
        assert self.files is not None
        try:
            urls = await asyncio.gather(*(self.files(ref) for ref in s.job.files))
        except asyncio.CancelledError:
            self.ready.appendleft(s)  # the run is ending: settled with the rest
            raise
        except UploadFailed as exc:
            self._unresolved(s, InputError(str(exc), permanent=False))
            return
        except BaseException as exc:  # the state file failing, a bug: end the run with it
            self.control.fail(exc)
            return
        s.urls = dict(zip(s.job.files, urls, strict=True))
        self.ready.appendleft(s)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.control.notify()

    def _settle(self) -> None:
        """The run ends with jobs that have an intent row but no task (backing off, or
        put back after a 429): a job none of whose tries may have reached Kie goes back to
        pending; one whose may have stays ambiguous."""
        leftovers = [b.submission for b in self.waiting] + list(self.ready)
        self.waiting.clear()
        self.ready.clear()
        for submission in leftovers:
            self._free(submission)
            if submission.attempt is None:
                continue
            if submission.ambiguous:
                self.journal.leave_ambiguous(submission.job, submission.attempt, "run ended")
            else:
                self.journal.withdraw(submission.job, submission.attempt, "run ended")

    async def _guarded(self, submission: Submission) -> None:
        try:
            await self._create(submission)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the state file failing, a bug: end the run with it
            self.control.fail(exc)

    async def _create(self, s: Submission) -> None:
        """One create try; holds a create slot taken by `run`."""
        try:
            # References first, before the intent: a kill while they resolve leaves nothing
            # that may have reached Kie.
            resolve = await self.inputs(s.job, s.urls or {}) if self.inputs is not None else None
            if s.attempt is None:
                s.attempt = self.journal.intend(s.job, s.number)
            elif s.unsent:  # the intent row still stands for this try: nothing to record
                s.unsent = False
            else:
                s.attempt = self.journal.resend(s.job, s.attempt, ambiguous=s.ambiguous)
            task_id = await self.client.create(
                s.job.family, s.job.body(self.callback_url, resolve), sources=dict(s.job.sources)
            )
        except InputError as exc:
            self._unresolved(s, exc)
            return
        except kie.KieError as exc:
            self._not_created(s, exc, verdict(exc, "create", model=s.job.model))
            return
        finally:
            self.creates.release()
        self.creates.succeeded()
        self.storm.accepted()
        self.control.outage.answered()
        self.created += 1
        if self.disk is not None:
            attempt = self.disk.record(self.journal, s.job, s.attempt, task_id)
        else:
            attempt = self.journal.submitted(s.job, s.attempt, task_id)
        self.on_submitted(s.job, attempt)

    def _not_created(self, s: Submission, exc: kie.KieError, what: Verdict) -> None:
        """The create did not answer with a task id: what now is the policy's call."""
        if what.action is Action.PACE:
            self.creates.rejected()
            self._free(s)  # a 429 made no task: admitted (and counted) again on its next try
            self.ready.appendleft(s)  # not the job's fault: first in line again
            self.storm.rejected()
        elif what.action in (Action.RETRY, Action.WAIT_OUT):
            self._retry_later(s, exc, what)
        else:
            self._refused(s, exc, what)

    def _retry_later(self, s: Submission, exc: kie.KieError, what: Verdict) -> None:
        assert s.attempt is not None
        if ambiguous(exc):
            s.ambiguous = s.reached = True  # the task may exist: its price stays counted
            s.unclear += 1
            if too_ambiguous("create", s.unclear):  # each resend may be one more paid task
                self._give_up(
                    s,
                    f"create: {exc.message}; left for the next run after {s.unclear} answers "
                    "that may each have made a task (--on-ambiguous skip leaves it alone)",
                )
                return
        self._free(s)
        down = what.unreachable
        if down:  # Kie cannot be reached: one outage for the run, not a failure of this job
            self.control.outage.failed(exc)
            s.unsent = True
        if what.action is Action.WAIT_OUT:  # it can last long: a long backoff, uncounted
            s.waits += 1
            delay = backoff(
                s.waits,
                base=self.timing.maintenance_base,
                cap=self.timing.maintenance_cap,
                rng=self.rng,
            )
        else:
            s.failures += 1
            if s.failures >= TRIES["create"] or self.control.interrupted:
                self._give_up(s, str(exc))
                return
            delay = backoff(
                s.failures, base=self.timing.backoff_base, cap=self.timing.backoff_cap, rng=self.rng
            )
        if not down:
            self.journal.emit(Event("warning", s.job.id, detail=f"create: {exc.message}; retrying"))
        heapq.heappush(self.waiting, _Backoff(time.monotonic() + delay, next(self._seq), s))

    def _unresolved(self, s: Submission, exc: InputError) -> None:
        """The job's input could not be made: nothing was sent for this try."""
        self._free(s)
        message = f"input: {exc.message}"
        if s.attempt is None:
            self.journal.input_failed(s.job, s.number, exc.message, permanent=exc.permanent)
        elif s.ambiguous:  # an earlier try may have made the task: keep the intent
            self.journal.leave_ambiguous(s.job, s.attempt, message)
        else:
            self.journal.create_failed(
                s.job, s.attempt, message, code="input", permanent=exc.permanent
            )

    def _give_up(self, s: Submission, message: str) -> None:
        assert s.attempt is not None
        self._free(s)
        if s.ambiguous:  # the task may exist: keep the intent, so a rerun knows
            self.journal.leave_ambiguous(s.job, s.attempt, message)
            return
        self.journal.create_failed(s.job, s.attempt, message, code="create", permanent=False)

    def _hold_back(self, s: Submission) -> None:
        """A job of a model Kie refused in this run: not sent, left pending with the reason
        (an intent whose earlier try may have reached Kie stays, so a rerun knows)."""
        reason = f"not submitted: {s.job.model} is unavailable ({self.unavailable[s.job.model]})"
        if s.attempt is not None:
            if s.ambiguous:
                self.journal.leave_ambiguous(s.job, s.attempt, reason)
            else:
                self.journal.withdraw(s.job, s.attempt, reason)
        else:
            self.journal.emit(Event("warning", s.job.id, detail=reason))

    def _refused(self, s: Submission, exc: kie.KieError, what: Verdict) -> None:
        assert s.attempt is not None
        code = str(exc.code) if exc.code is not None else None
        if what.action is Action.MODEL_GONE:  # paused or unknown: this job fails, and the
            # model gets no further creates in this run; the rest of the batch goes on
            self.unavailable.setdefault(s.job.model, exc.message)
            self._free(s)
            self.journal.create_failed(
                s.job, s.attempt, exc.message, code=code or "model", permanent=True
            )
            self.control.notify()
            return
        if what.action is Action.FAIL_JOB:  # this input will never pass
            self._free(s)
            self.journal.create_failed(
                s.job, s.attempt, exc.message, code=code or "error", permanent=True
            )
            return
        # 401, 402, 505, ...: nothing was created by this call; the job goes back to pending
        # (an intent whose earlier try may have reached Kie stays, so a rerun knows).
        self._free(s)
        if s.ambiguous:
            self.journal.leave_ambiguous(s.job, s.attempt, exc.message)
        else:
            self.journal.withdraw(s.job, s.attempt, exc.message)
            s.attempt = None
        self.ready.appendleft(s)
        self.control.stop(what.stop or exc.message, hard=what.hard)
