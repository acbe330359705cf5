"""Sliding-window rate limits (Kie rejects excess requests with 429; nothing is queued)."""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """At most `limit` accepted events in any `window` seconds. Not thread-safe: callers lock."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def try_acquire(self, now: float, limit: int, window: float) -> bool:
        # Limit and window are passed per call so /__sim/control changes apply at once.
        while self._times and self._times[0] <= now - window:
            self._times.popleft()
        if len(self._times) >= limit:
            return False
        self._times.append(now)
        return True
