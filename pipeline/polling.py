"""When to ask about a task next: spend the query budget where it buys the most.

Without history we follow Kie's guidance (every 2-3 s for the first 30 s, 5-10 s up to
2 minutes, then 15-30 s). Once tasks have finished we know the latency distribution: the first
poll goes just before the earliest likely completion, and later polls come at a fixed fraction
of the median latency, so that detection delay stays a small share of generation time
without polling tasks that cannot be done yet.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

MIN_SAMPLES = 5
DETECTION_SHARE = 0.12  # poll spacing as a share of the median latency


@dataclass
class PollPolicy:
    min_interval: float
    max_interval: float
    scale: float = 1.0  # seconds of the provider per second here (time-scaled simulations)
    latencies: list[float] = field(default_factory=list)  # sorted completion ages

    def observe(self, latency: float) -> None:
        """Learn from a task that was seen finished `latency` seconds after submission."""
        bisect.insort(self.latencies, latency)

    def _quantile(self, q: float) -> float:
        values = self.latencies
        return values[min(len(values) - 1, int(q * len(values)))]

    def _clamp(self, seconds: float) -> float:
        return max(self.min_interval, min(self.max_interval, seconds))

    def next_delay(self, age: float) -> float:
        """Seconds until the next poll of a task submitted `age` seconds ago."""
        if len(self.latencies) >= MIN_SAMPLES:
            earliest = self._quantile(0.05) * 0.95
            if age < earliest:
                return max(self.min_interval, earliest - age)
            return self._clamp(DETECTION_SHARE * self._quantile(0.5))
        unit = self.scale
        if age < 30 * unit:
            return self._clamp(2.5 * unit)
        if age < 120 * unit:
            return self._clamp(7.5 * unit)
        return self._clamp(20 * unit)
