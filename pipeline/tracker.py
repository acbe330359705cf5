"""Tracking tasks to the end: a soonest-due heap of polls spent from the query budget.

The Runner inherits this; it is split out because polling is a concern of its own (when to
ask, what each answer means, timeouts, batched progress writes), not because it is reusable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field

from pipeline import client as kie
from pipeline.events import Event, Listener
from pipeline.manifest import Job, Settings
from pipeline.pacing import SlidingWindowLimiter
from pipeline.plan import JobPlan
from pipeline.polling import PollPolicy
from pipeline.state import Attempt, StateStore

PROGRESS_FLUSH = 2.0  # seconds (scaled) between batched writes of poll progress
CALLBACK_FALLBACK = 120.0  # seconds between fallback polls while callbacks are expected
NOT_FOUND_LIMIT = 5  # consecutive 404s before a tracked task counts as failed
MODERATION_WORDS = ("prohibited", "moderation", "content policy", "sensitive", "violat")


def is_moderation(code: str | None, message: str | None) -> bool:
    text = (message or "").lower()
    return code == "422" or any(word in text for word in MODERATION_WORDS)


@dataclass
class Active:
    """A task being tracked in this run."""

    job: Job
    attempt_id: int
    task_id: str
    submitted: float  # monotonic time it was submitted (from the state on a rerun)
    deadline: float
    polls: int = 0
    unflushed_polls: int = 0
    state: str = "waiting"
    not_found: int = 0  # consecutive "Task not found" answers
    next_due: float = 0.0  # the one poll scheduled for this task; older heap entries are stale
    seen_running: float = 0.0  # its age at the last poll that found it unfinished


@dataclass(order=True)
class Due:
    at: float
    seq: int
    attempt_id: int = field(compare=False)


class Tracker:
    """Polling half of the Runner. The attributes and hooks below are provided by Runner."""

    settings: Settings
    store: StateStore
    client: kie.KieClient
    emit: Listener
    scale: float
    queries: SlidingWindowLimiter
    policy: PollPolicy
    active: dict[int, Active]
    due: list[Due]
    seq: itertools.count[int]
    downloads: asyncio.Queue[tuple[Job, int, str]]
    stop_submitting: bool
    callbacks_enabled: bool
    by_task: dict[str, int]  # task id -> attempt id of the tasks being tracked
    hinted: set[str]  # task ids a callback announced, polled at once
    interrupted: bool
    last_flush: float

    def _notify(self) -> None:
        raise NotImplementedError

    async def _wait(self, timeout: float) -> None:
        raise NotImplementedError

    def _done(self) -> bool:
        raise NotImplementedError

    def _refresh(self, attempt_id: int) -> Attempt:
        raise NotImplementedError

    def _transition(
        self, job: Job, old: str, new: str, task_id: str | None = None, detail: str = ""
    ) -> None:
        raise NotImplementedError

    def _stop(self, reason: str, *, hard: bool) -> None:
        raise NotImplementedError

    def _key_refused(self, exc: kie.KieError) -> None:
        """401 from any call: nothing more will work, so the whole run stops."""
        self._stop(f"the API key was refused ({exc.message})", hard=True)

    def _requeue(self, job: Job) -> None:
        raise NotImplementedError

    def plan(self, job: Job) -> JobPlan:
        raise NotImplementedError

    def _track(self, job: Job, attempt: Attempt, now: float) -> None:
        assert attempt.task_id is not None
        # The poll plan is by age: a task tracked again on a rerun keeps the age it has.
        age = max(0.0, time.time() - attempt.submitted_at) if attempt.submitted_at else 0.0
        self.active[attempt.id] = Active(
            job, attempt.id, attempt.task_id, now - age, now + self.settings.max_wait
        )
        self.by_task[attempt.task_id] = attempt.id
        self._schedule(attempt.id, now + self.policy.next_delay(age))

    def _schedule(self, attempt_id: int, at: float) -> None:
        active = self.active.get(attempt_id)
        if active is not None:
            active.next_due = at
        heapq.heappush(self.due, Due(at, next(self.seq), attempt_id))
        self._notify()

    # -- polling ------------------------------------------------------------------------

    def _next_poll(self, active: Active, now: float) -> float:
        """Seconds to the next poll; with callbacks on, polling is only the slow fallback."""
        delay = self.policy.next_delay(now - active.submitted, polled=active.polls > 0)
        if self.callbacks_enabled:
            delay = max(delay, CALLBACK_FALLBACK * self.scale)
        return delay

    def _replan_first_polls(self, now: float) -> None:
        """The poll plan changed: tasks not polled yet take the new first-poll age."""
        for a in self.active.values():
            if not a.polls and a.task_id not in self.hinted:
                due = a.submitted + self._next_poll(a, a.submitted)
                self._schedule(a.attempt_id, max(now, due))

    def poll_now(self, task_id: str) -> None:
        """A callback said this task ended: poll it at once (once, however often told)."""
        attempt_id = self.by_task.get(task_id)
        if attempt_id is None or attempt_id not in self.active or task_id in self.hinted:
            return
        self.hinted.add(task_id)
        self._schedule(attempt_id, time.monotonic())

    async def _poll_loop(self) -> None:
        pending: set[asyncio.Task[None]] = set()
        while not self._done():
            self._flush_progress()
            now = time.monotonic()
            if self.policy.maybe_refit(now, (a.seen_running for a in self.active.values())):
                self._replan_first_polls(now)
            if not self.due or self.due[0].at > now:
                timeout = (self.due[0].at - now) if self.due else 1.0
                await self._wait(min(max(timeout, 0.0), 1.0))
                continue
            item = heapq.heappop(self.due)
            active = self.active.get(item.attempt_id)
            if active is None or item.at != active.next_due:
                continue
            if now >= active.deadline:
                self._timed_out(active)
                continue
            await self.queries.acquire()
            if self.interrupted or item.attempt_id not in self.active:
                self.queries.release()
                continue
            task = asyncio.create_task(self._poll(active))
            pending.add(task)
            task.add_done_callback(pending.discard)
        for task in list(pending):
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _timed_out(self, active: Active) -> None:
        del self.active[active.attempt_id]
        self.store.record_outcome(
            active.attempt_id,
            "timed_out",
            remote_state=active.state,
            error_code="timeout",
            error_message=f"unfinished after {self.settings.max_wait:g} s; "
            "a rerun resumes tracking it",
        )
        self._refresh(active.attempt_id)
        self._transition(active.job, "running", "timed_out", active.task_id)

    async def _poll(self, active: Active) -> None:
        active.polls += 1
        active.unflushed_polls += 1
        now = time.monotonic()
        try:
            try:
                info = await self.client.record_info(active.task_id)
            finally:
                self.queries.release()
        except kie.RateLimited:
            self.queries.rejected()
            self._schedule(active.attempt_id, now + self.settings.poll_interval)
            return
        except kie.AuthError as exc:
            self._key_refused(exc)
            return
        except kie.NotFound as exc:
            # A task can be unknown for a moment right after creation; one that stays unknown
            # (expired from Kie's records, or made by a simulator that is gone) has failed.
            active.not_found += 1
            if active.not_found >= NOT_FOUND_LIMIT:
                self._lost(active, exc)
            else:
                self._schedule(active.attempt_id, now + self._next_poll(active, now))
            return
        except kie.KieError as exc:
            self.emit(
                Event(
                    "warning", active.job.id, task_id=active.task_id, detail=f"query: {exc.message}"
                )
            )
            self._schedule(active.attempt_id, now + self._next_poll(active, now))
            return
        active.not_found = 0
        self.queries.succeeded()
        if not info.finished:
            active.seen_running = now - active.submitted
            if info.state != active.state:
                self._transition(active.job, active.state, info.state, active.task_id)
                active.state = info.state
            self._schedule(active.attempt_id, now + self._next_poll(active, now))
            return
        if active.attempt_id not in self.active:
            return
        del self.active[active.attempt_id]
        self.policy.observe(time.monotonic() - active.submitted, since=active.seen_running)
        if info.state == "success":
            self._succeeded(active, info)
        else:
            self._failed(active, info)

    def _lost(self, active: Active, exc: kie.KieError) -> None:
        self.active.pop(active.attempt_id, None)
        self._failed(
            active,
            kie.TaskInfo(
                active.task_id, "fail", (), "404", f"Kie no longer knows this task ({exc.message})"
            ),
        )

    def _succeeded(self, active: Active, info: kie.TaskInfo) -> None:
        url = info.result_urls[0] if info.result_urls else None
        self.store.record_outcome(
            active.attempt_id, "succeeded", video_url=url, remote_state="success"
        )
        self._refresh(active.attempt_id)
        self._transition(active.job, active.state, "succeeded", active.task_id)
        if self.settings.download and url:
            self.downloads.put_nowait((active.job, active.attempt_id, url))
        elif self.settings.download:
            self.store.record_download_error(active.attempt_id, "success without a video URL")
            self._refresh(active.attempt_id)

    def _failed(self, active: Active, info: kie.TaskInfo) -> None:
        permanent = is_moderation(info.fail_code, info.fail_msg)
        self.store.record_outcome(
            active.attempt_id,
            "failed",
            error_code=info.fail_code,
            error_message=info.fail_msg or "generation failed",
            permanent=permanent,
            remote_state="fail",
        )
        self._refresh(active.attempt_id)
        plan = self.plan(active.job)
        retry = plan.status == "retry" and not self.stop_submitting
        self._transition(
            active.job,
            active.state,
            "failed",
            active.task_id,
            detail=(info.fail_msg or "") + ("; retrying" if retry else ""),
        )
        if retry:
            self._requeue(active.job)

    def _flush_progress(self, *, force: bool = False) -> None:
        """Write remote states and poll counts in one transaction every few seconds."""
        now = time.monotonic()
        if not force and now - self.last_flush < PROGRESS_FLUSH * self.scale:
            return
        self.last_flush = now
        updates = [
            (a.attempt_id, a.state, a.unflushed_polls)
            for a in self.active.values()
            if a.unflushed_polls
        ]
        self.store.record_progress(updates)
        for a in self.active.values():
            a.unflushed_polls = 0
