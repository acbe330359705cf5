"""When to ask about a task next: spend the query budget where it buys the most.

A poll is worth sending when the task is likely to have just finished. So the policy learns
the distribution of generation latency as the batch goes, and plans when to poll by age
(seconds since submission): a first poll once a task has a fair chance of being done, then one
every `gap` seconds.

- **Learning.** Each task tells us an interval: a finished task, that its latency lies between
  the last poll that saw it running and the poll that saw it done; a running task, that it is
  longer than its age at the last poll. The distribution is the maximum-likelihood fit to those
  intervals (Turnbull's EM on a grid), shrunk toward a weak prior from Kie's guidance ("1-5
  minutes, a tail to about 15") that only matters where nothing has been seen yet. Counting
  the running tasks is what keeps the estimate honest early on, when only the fast tasks have
  finished.
- **Planning.** Detection delay is the time from a task finishing to the poll that sees it;
  the figure that matters is its 95th percentile. By default the plan spends `POLLS_PER_TASK`
  polls per task on average and places them to make that percentile as short as they allow;
  with `POLLS_PER_TASK = None` it instead meets `DETECTION_SHARE` of the median latency with
  as few polls as that takes. (A dynamic programme over free poll ages finds the same shape,
  "wait, then poll evenly"; the two-number plan is as good, and cheap and stable to re-fit.)

The trade-off is steep for Kie's spread (about 1 to 4 minutes): at 3 polls per task the p95
delay is about 26% of the median; 15% needs about 4.8 polls per task, which at 2 creates/s is
9.6 queries/s, the whole query budget. `Planner` computes either side for any distribution.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

POLLS_PER_TASK: float | None = 3.0  # polls to spend per task (None: use DETECTION_SHARE)
DETECTION_SHARE = 0.15  # else: detect within this share of the median latency ...
LATE_SHARE = 0.05  # ... for all but this share of tasks (0.05: the p95 delay is the target)
# The prior: Kie's "plan for 1-5 minutes" read as the 5-95% range of a lognormal.
PRIOR_MEDIAN = math.sqrt(60.0 * 300.0)  # provider seconds (134 s)
PRIOR_SIGMA = math.log(300.0 / 60.0) / (2 * 1.6449)  # 0.49
PRIOR_WEIGHT = 3.0  # the prior counts as this many tasks
GRID = 300  # bins over the horizon (max_wait)
EM_ROUNDS = 25
REFIT_GROWTH = 1.3  # refit once the finished tasks grew by this factor ...
REFIT_AGE_SHARE = 0.5  # ... or this share of the median latency has passed
REPLAN_CHANGE = 0.01  # re-plan only if the fitted CDF moved by more than this anywhere
EXPLORE_EVERY = 16  # one task in this many gets an early first poll ...
EXPLORE_FROM = 0.3  # ... at an age between this share of the first poll's and the first poll
_GOLDEN = (math.sqrt(5) - 1) / 2  # spreads the early polls evenly (a low-discrepancy sequence)


@dataclass(frozen=True)
class Schedule:
    """A plan (first poll at age `first`, then every `gap`) and what it expects under the
    fitted distribution: polls per task, and the delay `detection` that all but `late_share`
    of tasks are seen within."""

    first: float
    gap: float
    expected_polls: float
    late_share: float
    detection: float
    median: float


def lognormal_cdf(x: float, median: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    if sigma <= 0:
        return 1.0 if x >= median else 0.0
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2))))


def fit(
    bins: int,
    finished: Iterable[tuple[tuple[int, int], int]],
    prior: Sequence[float],
    prior_weight: float,
    rounds: int = EM_ROUNDS,
) -> list[float]:
    """Turnbull's EM on a grid: bin probabilities (bins + 1 of them, the last one being
    "beyond the grid") that best explain `finished`, a list of ((first bin, last bin), count)
    meaning "the latency of `count` tasks lies in those bins", shrunk toward `prior`."""
    groups = list(finished)
    n = sum(count for _, count in groups)
    p = list(prior)
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
    """Poll schedules for one latency distribution: a first poll at age `first`, then one
    every `gap` seconds. `cdf[k]` is P(latency <= k * width), k = 0..K (linear in between).

    That family is what the optimum looks like (a dynamic programme over free poll ages finds
    the same shape: nothing while a task is almost surely running, then even spacing through
    the bulk) and it is cheap and stable to fit: for a given gap, the expected polls fall and
    the early finishers' delays grow as the first poll moves later, so each target is one
    monotone search.
    """

    def __init__(
        self, cdf: Sequence[float], width: float, *, min_gap: float, max_gap: float
    ) -> None:
        self.cdf, self.width = list(cdf), width
        self.last = len(cdf) - 1
        self.horizon = self.last * width
        self.min_gap, self.max_gap = min_gap, max(min_gap, max_gap)
        self.median = self.quantile(0.5)

    def at(self, age: float) -> float:
        """P(latency <= age)."""
        x = age / self.width
        if x <= 0:
            return 0.0
        k = int(x)
        if k >= self.last:
            return self.cdf[self.last]
        return self.cdf[k] + (self.cdf[k + 1] - self.cdf[k]) * (x - k)

    def quantile(self, q: float) -> float:
        k = bisect.bisect_left(self.cdf, q)
        if k == 0:
            return 0.0
        if k > self.last:
            return self.horizon
        low, high = self.cdf[k - 1], self.cdf[k]
        return self.width * (k - 1 + ((q - low) / (high - low) if high > low else 1.0))

    def ages(self, first: float, gap: float) -> list[float]:
        ages: list[float] = []
        t = first
        while t <= self.horizon and (not ages or self.at(ages[-1]) < 1 - 1e-6):
            ages.append(t)
            t += gap
        return ages

    def expected_polls(self, first: float, gap: float) -> float:
        """Polls a task gets on average: poll k happens if the task outlived poll k - 1."""
        return 1.0 + sum(1.0 - self.at(t) for t in self.ages(first, gap)[:-1])

    def late(self, first: float, gap: float, delay: float) -> float:
        """Share of tasks seen more than `delay` after they finished."""
        share = self.at(first - delay)
        if delay < gap:
            for t in self.ages(first, gap)[1:]:
                share += max(0.0, self.at(t - delay) - self.at(t - gap))
        return share

    def delay_quantile(self, first: float, gap: float, q: float) -> float:
        low, high = 0.0, first + gap
        for _ in range(14):
            mid = (low + high) / 2
            if self.late(first, gap, mid) <= 1 - q:
                high = mid
            else:
                low = mid
        return high

    def _gaps(self) -> list[float]:
        steps = 12
        return [self.min_gap + (self.max_gap - self.min_gap) * i / steps for i in range(steps + 1)]

    def _first_for_polls(self, gap: float, polls: float) -> float | None:
        """The earliest first poll that keeps expected polls within `polls`."""
        low, high = 0.0, self.horizon
        if self.expected_polls(high, gap) > polls:
            return None
        for _ in range(16):
            mid = (low + high) / 2
            if self.expected_polls(mid, gap) <= polls:
                high = mid
            else:
                low = mid
        return high

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
        enough that only `late_share` of tasks finish `detection` before it."""
        gap = max(self.min_gap, min(self.max_gap, detection))
        first = max(self.min_gap, self.quantile(late_share) + detection)
        return self._schedule(first, gap, detection)

    def _schedule(self, first: float, gap: float, detection: float) -> Schedule:
        return Schedule(
            first,
            gap,
            self.expected_polls(first, gap),
            self.late(first, gap, detection),
            detection,
            self.median,
        )


def schedule_for(
    cdf: Sequence[float],
    width: float,
    *,
    detection: float,
    late_share: float,
    min_gap: float,
    max_gap: float,
) -> Schedule:
    """The fewest-polls schedule for delay target `detection` (see Planner.fewest_polls)."""
    planner = Planner(cdf, width, min_gap=min_gap, max_gap=max_gap)
    return planner.fewest_polls(detection, late_share)


@dataclass
class PollPolicy:
    """The poll plan of a run: learns latency from every answer, re-plans now and then.

    Two ways to set the trade-off: `polls_per_task` (default `POLLS_PER_TASK`): spend that many
    polls per task on average and make detection as prompt as they allow; or, when it is
    None, `detection_share`: detect within that share of the median latency (for all but
    `late_share` of tasks) with as few polls as that takes. Defaults are read from the module
    constants when the policy is made.
    """

    min_interval: float
    max_interval: float
    scale: float = 1.0  # seconds here per provider second (time-compressed simulations)
    horizon: float = 0.0  # longest a task is tracked (max_wait); 0: 900 provider seconds
    polls_per_task: float | None = -1.0  # -1: POLLS_PER_TASK
    detection_share: float = -1.0  # -1: DETECTION_SHARE
    late_share: float = -1.0  # -1: LATE_SHARE
    finished: Counter[tuple[int, int]] = field(default_factory=Counter)
    schedule: Schedule | None = None
    refits: int = 0
    _tracked: int = 0
    _cdf: list[float] = field(default_factory=list)
    _fitted_n: int = 0
    _fitted_at: float = -math.inf

    def __post_init__(self) -> None:
        if self.polls_per_task == -1.0:
            self.polls_per_task = POLLS_PER_TASK
        if self.detection_share < 0:
            self.detection_share = DETECTION_SHARE
        if self.late_share < 0:
            self.late_share = LATE_SHARE
        self.horizon = self.horizon or 900.0 * self.scale
        self.width = self.horizon / GRID
        median = PRIOR_MEDIAN * self.scale
        edges = [lognormal_cdf(k * self.width, median, PRIOR_SIGMA) for k in range(GRID + 1)]
        self.prior = [edges[k + 1] - edges[k] for k in range(GRID)] + [1.0 - edges[GRID]]
        self._plan(self.prior)

    @property
    def observed(self) -> int:
        return sum(self.finished.values())

    def _edge(self, age: float) -> int:
        """The grid edge nearest to `age`: an interval (a, b] of ages is the bins from
        _edge(a) to _edge(b) - 1, so that intervals that meet share no bin."""
        return min(GRID, max(0, round(age / self.width)))

    def observe(self, latency: float, since: float = 0.0) -> None:
        """A task was seen finished `latency` seconds after submission, having last been seen
        running `since` seconds after it."""
        lo = self._edge(min(since, latency))
        self.finished[(lo, max(lo, self._edge(latency) - 1))] += 1

    def refit(self, running: Iterable[float] = ()) -> Schedule:
        """Re-learn the distribution and re-plan. `running`: for each task still running, its
        age when a poll last saw it running (not its age now: it may have finished since)."""
        groups = Counter(self.finished)
        for age in running:
            if age > 0:  # never polled yet: says nothing
                groups[(self._edge(age), GRID)] += 1
        p = fit(GRID, groups.items(), self.prior, PRIOR_WEIGHT)
        self._fitted_n = self.observed
        return self._plan(p)

    def maybe_refit(self, now: float, running: Iterable[float]) -> bool:
        """Refit when enough has been learned since the last fit (cheap to call often).
        True when the plan changed."""
        assert self.schedule is not None
        if self._fitted_at == -math.inf:  # the first call starts the clock
            self._fitted_at = now
            return False
        n = self.observed
        grown = n > self._fitted_n and n >= self._fitted_n * REFIT_GROWTH
        if grown or now - self._fitted_at >= REFIT_AGE_SHARE * self.schedule.median:
            self._fitted_at = now
            before = self.schedule
            return self.refit(running) is not before
        return False

    def _plan(self, p: Sequence[float]) -> Schedule:
        cdf = [0.0]
        for x in p[:GRID]:
            cdf.append(cdf[-1] + x)
        if (
            self.schedule is not None
            and self._cdf
            and max(abs(a - b) for a, b in zip(cdf, self._cdf, strict=True)) < REPLAN_CHANGE
        ):
            return self.schedule  # the distribution barely moved: keep the plan
        self._cdf = cdf
        self.refits += 1
        planner = Planner(cdf, self.width, min_gap=self.min_interval, max_gap=self.max_interval)
        if self.polls_per_task is not None:
            spend = self.polls_per_task - 1 / EXPLORE_EVERY  # what the early polls cost
            self.schedule = planner.best_detection(spend, self.late_share)
        else:
            self.schedule = planner.fewest_polls(
                self.detection_share * planner.median, self.late_share
            )
        return self.schedule

    def next_delay(self, age: float, *, polled: bool = False) -> float:
        """Seconds until the next poll of a task submitted `age` seconds ago; `polled`: it was
        polled already, just now. After its first poll a task keeps its own rhythm, so a
        re-plan or a poll delayed by a busy budget never bunches two polls together."""
        assert self.schedule is not None
        first = self.schedule.first
        if not polled and age + self.min_interval <= first:
            self._tracked += 1
            if self._tracked % EXPLORE_EVERY == 0:
                # Now and then a task is first polled early, at an age spread over the
                # stretch before the first poll: the one way to learn how the early
                # finishers are spread, which is what decides where the first poll goes.
                spot = EXPLORE_FROM + (1 - EXPLORE_FROM) * ((self._tracked * _GOLDEN) % 1.0)
                return max(self.min_interval, spot * first - age)
            return first - age
        return max(self.min_interval, self.schedule.gap)
