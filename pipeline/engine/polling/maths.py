"""The maths of a poll plan, for one latency distribution: fitting it from interval-censored
answers (Turnbull's EM on a grid) and placing polls to trade polls per task against detection
delay (`Planner`). No clocks, no models, no state: `pipeline.engine.polling.schedule` drives it."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EM_ROUNDS = 25
BINS_PER_DOUBLING = 12  # fit grid: about 6% wide bins at every age
TAIL_QUANTILE = 0.99  # past this fitted quantile ...
TAIL_GROWTH = 0.25  # ... the gap grows to this share of the task's age


@dataclass(frozen=True)
class Schedule:
    """A plan (first poll at age `first`, then every `gap`, growing past `tail_from`) and what
    it expects under the fitted distribution: polls per task, and the delay `detection` that
    all but `late_share` of tasks are seen within."""

    first: float
    gap: float
    expected_polls: float
    late_share: float
    detection: float
    median: float
    tail_from: float = math.inf


def lognormal_cdf(x: float, median: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    if sigma <= 0:
        return 1.0 if x >= median else 0.0
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2))))


def log_edges(low: float, high: float, per_doubling: int = BINS_PER_DOUBLING) -> list[float]:
    """Bin edges 0, low, low * r, ... up to `high`, r = 2 ** (1 / per_doubling)."""
    ratio = 2 ** (1 / per_doubling)
    edges = [0.0, low]
    while edges[-1] * ratio < high:
        edges.append(edges[-1] * ratio)
    edges.append(high)
    return edges


def fit(
    bins: int,
    finished: Iterable[tuple[tuple[int, int], int]],
    prior: Sequence[float],
    prior_weight: float,
    rounds: int = EM_ROUNDS,
    start: Sequence[float] | None = None,
) -> list[float]:
    """Turnbull's EM on a grid: bin probabilities (bins + 1 of them, the last one being
    "beyond the grid") that best explain `finished`, a list of ((first bin, last bin), count)
    meaning "the latency of `count` tasks lies in those bins", shrunk toward `prior`."""
    groups = list(finished)
    n = sum(count for _, count in groups)
    p = list(start if start is not None and len(start) == len(prior) else prior)
    size = bins + 1
    for _ in range(rounds if groups else 0):
        cum = [0.0] * (size + 1)
        for b in range(size):
            cum[b + 1] = cum[b] + p[b]
        diff = [0.0] * (size + 1)
        for (lo, hi), count in groups:
            mass = cum[hi + 1] - cum[lo]
            weight = count / mass if mass > 1e-12 else 0.0
            diff[lo] += weight
            diff[hi + 1] -= weight
        cover = 0.0
        total = n + prior_weight
        for b in range(size):
            cover += diff[b]
            p[b] = (p[b] * cover + prior_weight * prior[b]) / total
        norm = sum(p)
        p = [x / norm for x in p]
    return p


class Planner:
    """Poll schedules for one latency distribution, `cdf[k]` = P(latency <= edges[k])
    (linear in between): a first poll at age `first`, then one every `gap` seconds.

    That family is what the optimum looks like (a dynamic programme over free poll ages finds
    the same shape: nothing while a task is almost surely running, then even spacing through
    the bulk) and it is cheap and stable to fit: for a given gap, the expected polls fall and
    the early finishers' delays grow as the first poll moves later, so each target is one
    monotone search.
    """

    def __init__(
        self, edges: Sequence[float], cdf: Sequence[float], *, min_gap: float, max_gap: float
    ) -> None:
        self.edges, self.cdf = list(edges), list(cdf)
        self.last = len(self.cdf) - 1
        self.horizon = self.edges[self.last]
        self.min_gap, self.max_gap = min_gap, max(min_gap, max_gap)
        self.median = self.quantile(0.5)
        self.tail_from = self.quantile(TAIL_QUANTILE)

    def at(self, age: float) -> float:
        """P(latency <= age)."""
        if age <= 0:
            return 0.0
        if age >= self.horizon:
            return self.cdf[self.last]
        k = bisect.bisect_right(self.edges, age) - 1
        low, high = self.edges[k], self.edges[k + 1]
        return self.cdf[k] + (self.cdf[k + 1] - self.cdf[k]) * (age - low) / (high - low)

    def quantile(self, q: float) -> float:
        k = bisect.bisect_left(self.cdf, q)
        if k == 0:
            return 0.0
        if k > self.last:
            return self.horizon
        low, high = self.cdf[k - 1], self.cdf[k]
        share = (q - low) / (high - low) if high > low else 1.0
        return self.edges[k - 1] + (self.edges[k] - self.edges[k - 1]) * share

    def step(self, age: float, gap: float) -> float:
        """The wait after a poll at `age`: `gap`, growing with age in the tail."""
        if age < self.tail_from:
            return gap
        return min(max(gap, TAIL_GROWTH * age), max(gap, self.max_gap))

    def ages(self, first: float, gap: float) -> list[float]:
        ages: list[float] = []
        t = first
        while t <= self.horizon and (not ages or self.at(ages[-1]) < 1 - 1e-6):
            ages.append(t)
            t += self.step(t, gap)
        return ages

    def expected_polls(self, first: float, gap: float) -> float:
        """Polls a task gets on average: poll k happens if the task outlived poll k - 1."""
        return 1.0 + sum(1.0 - self.at(t) for t in self.ages(first, gap)[:-1])

    def late(self, first: float, gap: float, delay: float) -> float:
        """Share of tasks seen more than `delay` after they finished."""
        share, before = 0.0, 0.0
        for t in self.ages(first, gap):
            if t - delay > before:
                share += self.at(t - delay) - self.at(before)
            before = t
        return share

    def delay_quantile(self, first: float, gap: float, q: float) -> float:
        low, high = 0.0, first + max(gap, self.max_gap)
        for _ in range(14):
            mid = (low + high) / 2
            if self.late(first, gap, mid) <= 1 - q:
                high = mid
            else:
                low = mid
        return high

    def _gaps(self, steps: int = 16) -> list[float]:
        ratio = (self.max_gap / self.min_gap) ** (1 / steps)
        return [self.min_gap * ratio**i for i in range(steps + 1)]

    def _first_for_polls(self, gap: float, polls: float) -> float | None:
        """The earliest first poll that keeps expected polls within `polls`."""
        low, high = 0.0, self.horizon
        if self.expected_polls(high, gap) > polls:
            return None
        for _ in range(18):
            mid = (low + high) / 2
            if self.expected_polls(mid, gap) <= polls:
                high = mid
            else:
                low = mid
        return max(high, self.min_gap)

    def best_detection(self, polls: float, late_share: float) -> Schedule:
        """The schedule with the shortest delay that all but `late_share` of tasks are seen
        within, at no more than `polls` polls per task on average."""
        best: Schedule | None = None
        for gap in self._gaps():
            first = self._first_for_polls(gap, polls)
            if first is None:
                continue
            delay = self.delay_quantile(first, gap, 1 - late_share)
            if best is None or delay < best.detection - 1e-9:
                best = self._schedule(first, gap, delay)
        return best or self._schedule(self.horizon, self.max_gap, self.horizon)

    def fewest_polls(self, detection: float, late_share: float) -> Schedule:
        """The schedule with the fewest polls that sees all but `late_share` of tasks within
        `detection` of their finish: gaps no longer than that, and the first poll just late
        enough that only `late_share` of tasks (counting the tail's) finish `detection`
        before it."""
        gap = max(self.min_gap, min(self.max_gap, detection))
        early = max(late_share - (1 - TAIL_QUANTILE), 0.0)  # the tail may be late too
        first = max(self.min_gap, self.quantile(early) + detection)
        return self._schedule(first, gap, detection)

    def _schedule(self, first: float, gap: float, detection: float) -> Schedule:
        polls, late = self.expected_polls(first, gap), self.late(first, gap, detection)
        return Schedule(first, gap, polls, late, detection, self.median, self.tail_from)
