"""Client-side pacing: never send more than the provider allows, and slow down on 429.

Kie counts "20 creates per 10 seconds" as a sliding window over the moments its servers *see*
the calls. We cannot know those moments, only that each lies between our send and our receipt
of the answer. So a call holds its slot from the moment it is sent until one window after its
answer arrived (`release`): if at most N calls are in flight or were answered within the last
window when a call is sent, then no window of the server's can hold more than N arrivals,
whatever the network jitter. (Proof: take the last-sent call k of any server window; every
other call j in that window was sent before k and arrived after a_k - W >= s_k - W, so at s_k it
was either in flight or answered after s_k - W: it was counted.) The price is one round trip
per window, about 1% of a 10 s window. Stamping the send time instead, as most clients do,
trips the limit whenever a call N places later happens to travel faster.

Callers queue FIFO on one lock, so polls and URL refreshes share the query budget fairly.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from pipeline.manifest import Rate

# A little slack on the window, for clocks that do not tick at exactly the same rate.
WINDOW_MARGIN = 0.005
# A slot never released (a caller that forgot) counts as answered after this many seconds,
# well past any HTTP timeout, so a leak costs a little throughput but never stalls the run.
STALE_AFTER = 120.0


class SlidingWindowLimiter:
    def __init__(
        self,
        rate: Rate,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        margin: float = WINDOW_MARGIN,
    ) -> None:
        self.limit = rate.count
        self.window = rate.seconds * (1 + margin)
        self.allowed = rate.count  # lowered after a 429, restored as calls succeed
        self.clock = clock
        self.rng = rng or random.Random()
        self.answered: deque[float] = deque()  # when answers arrived, within the last window
        self.in_flight: deque[float] = deque()  # send times of calls not answered yet
        self.blocked_until = 0.0
        self.strikes = 0
        self.rejections = 0
        self.calls = 0
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()

    def used(self, now: float) -> int:
        """Slots taken at `now`: calls in flight plus calls answered within the window."""
        self._expire(now)
        return len(self.in_flight) + len(self.answered)

    def _expire(self, now: float) -> None:
        while self.in_flight and self.in_flight[0] <= now - STALE_AFTER:
            self.answered.append(self.in_flight.popleft() + STALE_AFTER)
        while self.answered and self.answered[0] <= now - self.window:
            self.answered.popleft()

    def _delay(self, now: float) -> float | None:
        """Seconds until a call may go; None when only a release can free a slot."""
        excess = self.used(now) - self.allowed
        wait = self.blocked_until - now
        if excess >= 0:
            if excess >= len(self.answered):
                return None
            # answered[] is in time order: once `excess + 1` of them leave the window, we go.
            wait = max(wait, self.answered[excess] + self.window - now)
        return wait

    async def acquire(self) -> None:
        """Wait for a slot, then take it. Call `release()` once the answer (or the failure)
        has arrived; `slot()` does both."""
        async with self._lock:
            while True:
                wait = self._delay(self.clock())
                if wait is not None and wait <= 0:
                    break
                if wait is None:
                    self._released.clear()
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._released.wait(), STALE_AFTER)
                else:
                    await asyncio.sleep(wait)
            self.in_flight.append(self.clock())
            self.calls += 1

    def release(self) -> None:
        """The call taken by the oldest unreleased `acquire()` has its answer (or failed):
        from now its slot counts for one window."""
        now = self.clock()
        if self.in_flight:  # which one does not matter: only the count of slots does
            self.in_flight.popleft()
        self.answered.append(now)
        self._released.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """`async with limiter.slot(): await call()`: acquire, and release whatever happens."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def rejected(self) -> None:
        """The provider answered 429 (someone else uses the account too, or its limit is not
        the documented one): back off with jitter and send less for a while."""
        self.rejections += 1
        self.strikes += 1
        self.allowed = max(1, int(self.allowed * 0.8))
        base = self.window / max(self.limit, 1) * (2 ** min(self.strikes, 6))
        backoff = min(base, self.window * 4) * self.rng.uniform(0.5, 1.0)
        self.blocked_until = max(self.blocked_until, self.clock() + backoff)

    def succeeded(self) -> None:
        self.strikes = 0
        if self.allowed < self.limit:
            self.allowed += 1


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to `base`, doubling to `cap`."""
    return float(rng.uniform(0.5, 1.0) * min(cap, base * 2 ** max(attempt - 1, 0)))
