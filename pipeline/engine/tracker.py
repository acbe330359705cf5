"""Tracking tasks to the end: a soonest-due heap of polls, paid from the query budget.

The tracker owns the tasks in flight. It asks Kie about each one when the poll policy says
the answer is likely to have changed, hands a finished task on (`on_success`,
`on_failure`), times out what runs past `max_wait`, and writes poll progress in batches.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.engine.control import RunControl
from pipeline.engine.journal import Journal
from pipeline.engine.moderation import is_moderation
from pipeline.engine.polling.classes import timing_class
from pipeline.engine.polling.schedule import PollPlanner
from pipeline.engine.timing import Timing
from pipeline.events import Event
from pipeline.kie import client as kie
from pipeline.kie.pacing import SlidingWindowLimiter
from pipeline.kie.policy import Action, verdict
from pipeline.manifest import Job
from pipeline.state.store import Attempt
from pipeline.status import KieState

CALLBACK_STRETCH = 4.0  # with callbacks on, fallback polls come this many times later


def finished_durations(journal: Journal) -> list[tuple[str, float]]:
    """(timing class, seconds from submission to the finish) of every task that succeeded in
    earlier runs, oldest finish first. Failures are left out: a refusal ends in seconds and
    says nothing about how long the model takes to generate. An attempt that kept no inputs
    (state schema < 4) is classed as its bare model: the model's pool."""
    done = [
        a
        for attempts in journal.history.values()
        for a in attempts
        if a.phase == "succeeded" and a.submitted_at and a.completed_at
    ]
    done.sort(key=lambda a: a.completed_at or 0.0)
    return [
        (
            timing_class(a.model, a.shown_inputs),
            max(0.0, (a.completed_at or 0.0) - (a.submitted_at or 0.0)),
        )
        for a in done
    ]


def poll_budget(timing: Timing, concurrency: int) -> float | None:
    """The most polls per task the query rate sustains. Tasks in flight number at most
    `concurrency`, and at most what the create rate can start in one task's latency L; they
    finish at (in flight) / L a second, so each may have query_rate * L / (in flight) polls:
    at least query_rate / create_rate, more when the concurrency cap binds first (judged at
    the longest a task is tracked, max_wait)."""
    creates = timing.create_rate.count / timing.create_rate.seconds
    queries = timing.query_rate.count / timing.query_rate.seconds
    if creates <= 0 or queries <= 0:
        return None
    spread = queries * timing.max_wait / concurrency if concurrency > 0 else 0.0
    return max(queries / creates, spread)


@dataclass
class Active:
    """A task being tracked in this run."""

    job: Job
    attempt: Attempt
    task_id: str
    submitted: float  # monotonic time it was submitted (from the state on a rerun)
    deadline: float
    polls: int = 0
    unflushed_polls: int = 0
    state: KieState = "waiting"
    unknown_since: float | None = None  # the first of the "not found" answers in a row
    next_due: float = 0.0  # the one poll scheduled for this task; older heap entries are stale
    seen_running: float = 0.0  # its age at the last poll that found it unfinished
    timing: str = ""  # its timing class: the poll planner's key
    held: bool = False  # polled, and waiting for its class's first poll (PollPlanner.held)


@dataclass(order=True)
class Due:
    at: float
    seq: int
    attempt_id: int = field(compare=False)


class Tracker:
    def __init__(
        self,
        journal: Journal,
        client: kie.KieClient,
        control: RunControl,
        queries: SlidingWindowLimiter,
        timing: Timing,
        *,
        on_success: Callable[[Job, Attempt, kie.TaskInfo], None],
        on_failure: Callable[[Job, Attempt], None],
        callbacks: bool = False,
        concurrency: int = 0,
    ) -> None:
        self.journal = journal
        self.client = client
        self.control = control
        self.queries = queries
        self.timing = timing
        self.on_success = on_success
        self.on_failure = on_failure
        self.callbacks = callbacks  # Kie calls back: polling is only the slow fallback
        # One learned timing per timing class (model and the inputs that set how long a task
        # takes, pipeline/timingclass.py), started from what earlier runs into this folder saw
        # (the state has every task's submit and finish time), within the query budget.
        self.policy = PollPlanner(
            timing.poll_interval,
            timing.poll_max_interval,
            horizon=timing.max_wait,
            history=finished_durations(journal),
            budget=poll_budget(timing, concurrency),
        )
        self.active: dict[int, Active] = {}
        self.by_task: dict[str, int] = {}  # task id -> attempt id of the tasks tracked
        self.hinted: set[str] = set()  # task ids a callback announced, polled at once
        self.due: list[Due] = []
        self.seq = itertools.count()
        self.last_flush = time.monotonic()
        control.on_hard_stop(self.drop_all)
        control.outage.on_end(self._extend_deadlines)

    @property
    def idle(self) -> bool:
        return not self.active

    def drop_all(self) -> None:
        self.active.clear()
        self.due.clear()

    def _extend_deadlines(self, outage: float) -> None:
        """Kie was unreachable for `outage` seconds: no task loses that time."""
        for active in self.active.values():
            active.deadline += outage

    def track(self, job: Job, attempt: Attempt, now: float) -> None:
        assert attempt.task_id is not None
        # The poll plan is by age: a task tracked again on a rerun keeps the age it has.
        age = max(0.0, time.time() - attempt.submitted_at) if attempt.submitted_at else 0.0
        key = timing_class(job.model, job.input)
        self.active[attempt.id] = Active(
            job, attempt, attempt.task_id, now - age, now + self.timing.max_wait, timing=key
        )
        self.by_task[attempt.task_id] = attempt.id
        self._schedule(attempt.id, now + self._first_poll(key, age, attempt.id))

    def _schedule(self, attempt_id: int, at: float) -> None:
        active = self.active.get(attempt_id)
        if active is not None:
            active.next_due = at
        heapq.heappush(self.due, Due(at, next(self.seq), attempt_id))
        self.control.notify()

    def _first_poll(self, model: str, age: float, task: int) -> float:
        return self._fallback(self.policy.first_delay(model, age, task))

    def _next_poll(self, active: Active, now: float) -> float:
        """Seconds to the next poll; with callbacks on, polling is only the slow fallback."""
        age = now - active.submitted
        if active.polls:
            active.held = self.policy.held(active.timing, age)
            return self._fallback(self.policy.next_delay(active.timing, age))
        return self._first_poll(active.timing, age, active.attempt.id)

    def _fallback(self, delay: float) -> float:
        """With callbacks on, a poll is only the safety net for a callback that never came:
        a few times the planned delay (so it follows the model's own timing, seconds for an
        image, minutes for a video), and never more than `callback_fallback` past it."""
        if not self.callbacks:
            return delay
        return min(delay * CALLBACK_STRETCH, delay + self.timing.callback_fallback)

    def _replan_first_polls(self, now: float, models: set[str]) -> None:
        """A class's poll plan changed: its tasks not polled yet (or held for its first poll)
        take the new first poll."""
        for a in self.active.values():
            if a.timing in models and (not a.polls or a.held) and a.task_id not in self.hinted:
                last = a.submitted + a.seen_running  # the last poll (for a held task)
                due = last + self._next_poll(a, last)
                self._schedule(a.attempt.id, max(now, due))

    def poll_now(self, task_id: str) -> None:
        """A callback said this task ended: poll it at once (once, however often told)."""
        attempt_id = self.by_task.get(task_id)
        if attempt_id is None or attempt_id not in self.active or task_id in self.hinted:
            return
        self.hinted.add(task_id)
        self._schedule(attempt_id, time.monotonic())

    async def run(self, done: Callable[[], bool]) -> None:
        """Poll until `done()`; each poll is a task of its own, so a slow answer holds up
        no other poll."""
        pending: set[asyncio.Task[None]] = set()
        while not done():
            self.flush_progress()
            now = time.monotonic()
            running = ((a.timing, a.seen_running) for a in self.active.values())
            changed = self.policy.refit(now, running)
            if changed:
                self._replan_first_polls(now, changed)
            if not self.due or self.due[0].at > now:
                timeout = (self.due[0].at - now) if self.due else 1.0
                await self.control.wait(min(max(timeout, 0.0), 1.0))
                continue
            item = heapq.heappop(self.due)
            active = self.active.get(item.attempt_id)
            if active is None or item.at != active.next_due:
                continue
            if now >= active.deadline and not self.control.outage.down:
                self._timed_out(active)
                continue
            await self.queries.acquire()
            if self.control.over or item.attempt_id not in self.active:
                self.queries.release()
                continue
            task = asyncio.create_task(self._guarded_poll(active))
            pending.add(task)
            task.add_done_callback(pending.discard)
        for task in list(pending):
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _guarded_poll(self, active: Active) -> None:
        """An error a poll does not handle (the state file failing, a bug) must end the run,
        not vanish with the task and leave the run waiting for an answer never recorded."""
        try:
            await self._poll(active)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.control.fail(exc)

    def _settle_polls(self, active: Active) -> None:
        """A task leaves the tracker: write the polls not yet written with the batch."""
        if active.unflushed_polls:
            self.journal.progress([(active.attempt.id, active.state, active.unflushed_polls)])
            active.unflushed_polls = 0

    def _timed_out(self, active: Active) -> None:
        del self.active[active.attempt.id]
        self._settle_polls(active)
        message = f"unfinished after {self.timing.max_wait:g} s; a rerun resumes tracking it"
        self.journal.timed_out(active.job, active.attempt, active.state, message)
        self.control.notify()

    async def _poll(self, active: Active) -> None:
        active.polls += 1
        active.unflushed_polls += 1
        self.policy.polled(active.timing, first=active.polls == 1)
        now = time.monotonic()
        try:
            try:
                # max_wait holds whatever the server does: a poll still unanswered at the
                # task's deadline is given up, and the task times out.
                async with asyncio.timeout(max(active.deadline - now, 0.0)):
                    info = await self.client.record(active.job.family, active.task_id)
            finally:
                self.queries.release()
        except TimeoutError:
            if active.attempt.id in self.active:
                self._timed_out(active)
            return
        except kie.KieError as exc:
            self._not_answered(active, exc, now)
            return
        self.control.outage.answered()
        active.unknown_since = None
        self.queries.succeeded()
        if not info.finished:
            active.seen_running = now - active.submitted
            if info.state != active.state:
                self.journal.remote_state(active.job, active.task_id, active.state, info.state)
                active.state = info.state
            self._schedule(active.attempt.id, now + self._next_poll(active, now))
            return
        if self.active.pop(active.attempt.id, None) is None:
            return
        self._settle_polls(active)
        self.policy.observe(active.timing, time.monotonic() - active.submitted, active.seen_running)
        if info.state == "success":
            # A success without files (a detection's JSON, an empty answer) is still a paid
            # success: kept as it is, never bought again.
            attempt = self.journal.succeeded(
                active.job,
                active.attempt,
                active.state,
                info.result_urls,
                info.credits,
                None if info.result_urls else (info.result_json or "{}"),
            )
            self.on_success(active.job, attempt, info)
        else:
            self._failed(active, info.fail_code, info.fail_msg, permanent=info.permanent)
        self.control.notify()

    def _not_answered(self, active: Active, exc: kie.KieError, now: float) -> None:
        """A poll without the task's record: what now is the policy's call."""
        what = verdict(exc, "query")
        if what.action is Action.PACE:
            self.queries.rejected()
            self._schedule(active.attempt.id, now + self.timing.poll_interval)
            return
        if what.action is Action.STOP:  # a refused key, a proxy or a wrong --base-url
            self.control.stop(what.stop or exc.message, hard=what.hard)
            return
        if what.action is Action.NOT_FOUND:
            # A task can be unknown for a while right after its create; one that stays
            # unknown (expired from Kie's records, made by a simulator that is gone) has
            # failed. Judged by time, not by a count of polls (the poll plan sets those):
            # unknown for `unknown_grace` in a row, which for a new task is that long after
            # its create, and for a task known before (a rerun's) keeps one odd answer
            # from losing it (and buying it again).
            if active.unknown_since is None:
                active.unknown_since = max(now, active.submitted)
            give_up = active.unknown_since + self.timing.unknown_grace
            if now >= give_up:
                self._lost(active, exc)
            else:
                due = min(now + self._next_poll(active, now), give_up)
                self._schedule(active.attempt.id, due)
            return
        if what.unreachable:  # one outage, not a warning per poll
            self.control.outage.failed(exc)
        else:
            self.control.outage.answered()
            self.journal.emit(
                Event("warning", active.job.id, task_id=active.task_id, detail=f"query: {exc}")
            )
        self._schedule(active.attempt.id, now + self._next_poll(active, now))

    def _lost(self, active: Active, exc: kie.KieError) -> None:
        self.active.pop(active.attempt.id, None)
        self._settle_polls(active)
        self._failed(active, "404", f"Kie no longer knows this task ({exc.message})")
        self.control.notify()

    def _failed(
        self, active: Active, code: str | None, message: str | None, *, permanent: bool = False
    ) -> None:
        attempt = self.journal.failed(
            active.job,
            active.attempt,
            active.state,
            code=code,
            message=message or "generation failed",
            permanent=permanent or is_moderation(code, message),
        )
        self.on_failure(active.job, attempt)

    def flush_progress(self, *, force: bool = False) -> None:
        """Write remote states and poll counts in one transaction every few seconds."""
        now = time.monotonic()
        if not force and now - self.last_flush < self.timing.progress_flush:
            return
        self.last_flush = now
        updates = [
            (a.attempt.id, a.state, a.unflushed_polls)
            for a in self.active.values()
            if a.unflushed_polls
        ]
        self.journal.progress(updates)
        for a in self.active.values():
            a.unflushed_polls = 0
