"""Client-side pacing: never send more than the provider allows, and slow down on 429.

A sliding-window log matches how Kie counts ("20 creates per 10 seconds"): a call may go when
fewer than N calls went out in the last window. Callers queue FIFO on one lock, so polls and
URL refreshes share the query budget fairly.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable

from pipeline.manifest import Rate

# Calls are stamped when sent but counted by Kie when they arrive; a small margin on the
# window absorbs the jitter between the two so that we do not trip the limit by a hair.
WINDOW_MARGIN = 0.03


class SlidingWindowLimiter:
    def __init__(self, rate: Rate, *, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.limit = rate.count
        self.window = rate.seconds * (1 + WINDOW_MARGIN)
        self.allowed = rate.count  # lowered after a 429, restored as calls succeed
        self.clock = clock
        self.rng = rng or random.Random()
        self.sent: deque[float] = deque()
        self.blocked_until = 0.0
        self.strikes = 0
        self.rejections = 0
        self.calls = 0
        self._lock = asyncio.Lock()

    def _delay(self, now: float) -> float:
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        wait = self.blocked_until - now
        if len(self.sent) >= self.allowed:
            wait = max(wait, self.sent[len(self.sent) - self.allowed] + self.window - now)
        return wait

    async def acquire(self) -> None:
        """Wait for a slot in the window, then take it."""
        async with self._lock:
            while (wait := self._delay(self.clock())) > 0:
                await asyncio.sleep(wait)
            self.sent.append(self.clock())
            self.calls += 1

    def rejected(self) -> None:
        """The provider answered 429: back off with jitter and send less for a while."""
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
