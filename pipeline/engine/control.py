"""Run control: the wake-ups, stops and interrupts that every part of a run shares.

Parts wait on `wait()` and are woken by `notify()` whenever something they may care about
changed (a job queued, a task finished, a stop). A stop comes in two strengths: a soft stop
ends submitting and lets what is in flight finish (402, a budget); a hard stop also drops the
tracking and downloading (401: nothing more will work). An interrupt (Ctrl-C, SIGTERM) ends
the run at the next check, keeping everything recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from pipeline.engine.outage import Outage
from pipeline.engine.timing import OUTAGE_GIVE_UP
from pipeline.events import Event, Listener


class RunControl:
    def __init__(self, emit: Listener, outage_give_up: float = OUTAGE_GIVE_UP) -> None:
        self.emit = emit
        self.stop_submitting = False
        self.stop_reason: str | None = None
        self.interrupted = False
        self.aborted = False  # a loop failed: every loop ends at its next check
        self.fatal: BaseException | None = None  # an error a background task could not handle
        self._changed = asyncio.Event()
        self.interrupt_seen = asyncio.Event()  # set once, by the first interrupt
        self._on_hard_stop: list[Callable[[], None]] = []
        # Kie unreachable: reported once, and a long outage stops the run (see outage.py).
        self.outage = Outage(emit, lambda reason: self.stop(reason, hard=True), outage_give_up)

    @property
    def over(self) -> bool:
        """True once the run must end whatever is left to do."""
        return self.interrupted or self.aborted or self.fatal is not None

    def notify(self) -> None:
        """Wake every part waiting in `wait` (each waits on the event current when it began,
        so no wake-up is lost between a check and a wait)."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that arrives as its timeout fires, and a part that lost its cancellation would
        # keep the run alive forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    def on_hard_stop(self, drop: Callable[[], None]) -> None:
        """Register what a part drops when the run stops hard."""
        self._on_hard_stop.append(drop)

    def stop(self, reason: str, *, hard: bool) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.emit(Event("stop", detail=reason))
        self.stop_submitting = True
        if hard:
            for drop in self._on_hard_stop:
                drop()
        self.notify()

    def interrupt(self) -> None:
        """Ctrl-C / SIGTERM: stop submitting, stop waiting, keep everything recorded."""
        self.interrupted = True
        self.stop_submitting = True
        self.interrupt_seen.set()
        self.notify()

    def fail(self, exc: BaseException) -> None:
        """A background task (a create, a poll) hit an error it cannot handle: the run ends
        and raises it. Anything but a cancellation counts, BaseExceptions included: a task
        must never die silently and leave the run waiting for what it would have done."""
        if self.fatal is None:
            self.fatal = exc
        self.notify()
