"""When to ask about a task next: learn each timing class's timing, spend the query budget
where it buys the most. Nothing here assumes a time scale: an image model that answers in 8
seconds and a video model that takes 12 minutes are both learned from their own answers.

Interface (for the tracker; `model` is any key: a timing class in practice, see
`pipeline.engine.polling.classes`, `model[n_frames=15]` or a bare model name):

    planner = PollPlanner(min_interval, max_interval, horizon=max_wait,
                          history=[(model, seconds), ...])   # earlier runs, may be empty
    planner.first_delay(model, age)   # seconds until the first poll of a task now `age` old
    planner.next_delay(model, age)    # ... until the next poll, after one found it running
    planner.polled(model, first=...)  # a task was polled (what the plan has cost so far)
    planner.observe(model, duration, since)   # seen done at `duration`, running at `since`
    planner.refit(now, running)       # re-learn what has news; the models whose plan moved
                                      # (their unpolled tasks should take first_delay again)

- **Classes.** A key `model[field=value,...]` is a timing class of `model`: every answer it
  gets also goes to the model's pool (the bare model name, where earlier runs' tasks that kept
  no inputs go too). A class with no finished task of its own borrows: while its pool has a
  fit, the class is fitted from that fit (the EM's start, and half of the prior) and its own
  running tasks, which are censored at their ages, so a class slower than its pool moves its
  first poll later as its tasks are seen running; with no pool fit either, it is probed.

`PollPolicy` is the single-model face the tracker used before (`next_delay(age, polled=)`,
`observe(duration, since=)`, `maybe_refit(now, ages)`); it keeps every task under one key.

- **Probing.** A model with no finished task yet (none this run, none in `history`) has no
  plan. Its first `PROBES` tasks are polled at doubling ages from `min_interval`, each ladder
  offset by a fraction of a doubling, so together they sample every age about PROBES times per
  doubling: a 10-second model is found within seconds, a 10-minute one after some eight polls
  per probe. Other tasks wait (at most `HOLD_SHARE` of the horizon, a safety net should every
  probe be lost); the first finish gives the model a plan, and `refit` reports it.
- **Learning.** Each task tells us an interval: a finished task, that its latency lies between
  the last poll that saw it running and the poll that saw it done; a running task, that it is
  longer than its age at the last poll. The distribution is the maximum-likelihood fit to those
  intervals (Turnbull's EM) on a grid of ages spaced evenly in log-time (`BINS_PER_DOUBLING`),
  so seconds and minutes are resolved alike; the prior is scale-free (P(latency > x) = low / x:
  a task running at age c is as likely as not done by 2c) and weighs as `PRIOR_WEIGHT` tasks.
  That prior holds nearly all its mass at the shortest ages, and a task found done at its
  first poll says only "somewhere before that poll", so no answer moves such mass out: at the
  weight of a whole task it held some 8% of a long-video model's fitted latency below 100 s,
  where no task had finished and hundreds had been seen running, and that fictitious early
  share drew first polls early and gaps wide. A tenth of a task keeps it the weak start it is.
  Counting running tasks keeps the estimate honest early, when only the fast tasks have
  finished. Each fit starts from the last one, so the EM's rounds add up over a batch: the
  stretch before the first poll, which only the exploring tasks' answers tell apart,
  converges instead of keeping mass at ages nobody finished at.
- **Planning.** Detection delay is the time from a task finishing to the poll that sees it;
  the figure that matters is its 95th percentile. The plan spends `POLLS_PER_TASK` polls per
  task on average (or, with None, meets `DETECTION_SHARE` of the median with as few as that
  takes): a first poll at age `first`, one every `gap` through the bulk, and past the fitted
  `TAIL_QUANTILE` gaps that grow with age (`TAIL_GROWTH`), so a stuck task costs a few polls,
  not hundreds. `budget` caps the polls per task the query rate can sustain. When the polls
  spent so far over the whole run (per task polled: a floor on the final figure) already pass
  `POLLS_PER_TASK`, which happens when the fit promised fewer than the tasks took (a class
  whose tasks come in two lengths, probes of many small classes), every class's next plan
  spends less (`OVERSPEND_GAIN`), so the batch keeps its budget.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.engine.polling.classes import pool_of
from pipeline.engine.polling.maths import (
    BINS_PER_DOUBLING,
    TAIL_GROWTH,
    TAIL_QUANTILE,
    Planner,
    Schedule,
    fit,
    log_edges,
    lognormal_cdf,
)

POLLS_PER_TASK: float | None = 2.8  # polls per task for the plan (probes use a little more)
DETECTION_SHARE = 0.15  # with POLLS_PER_TASK None: detect within this share of the median ...
LATE_SHARE = 0.05  # ... for all but this share of tasks (0.05: the p95 delay is the target)
PRIOR_WEIGHT = 0.1  # the prior counts as this share of one task (see the docstring)
PROBES = 8  # tasks of an unknown model polled at doubling ages
HOLD_SHARE = 0.9  # an unknown model's other tasks: first poll by this share of the horizon
REACH_FACTOR = 2.0  # plan as if every task ended by this many times the oldest age seen
REFIT_GROWTH = 1.3  # refit once a model's finished tasks grew by this factor ...
REFIT_AGE_SHARE = 0.5  # ... or this share of its median latency has passed
REPLAN_CHANGE = 0.01  # re-plan only if the fitted CDF moved by more than this anywhere
EXPLORE_EVERY = 16  # one task in this many gets an early first poll ...
EXPLORE_FROM = 0.3  # ... at an age between this share of the first poll's and the first poll
HISTORY_SLACK = 0.25  # an earlier run's duration ends when the finish was *seen*: up to this
HISTORY_KEEP = 500  # share later; the most recent this many per model are used
OVERSPEND_FROM = 20  # once this many tasks of the run were polled, polls spent beyond the
OVERSPEND_GAIN = 4.0  # budget come off the next plan's spend, this many times over ...
MIN_SPEND = 1.5  # ... down to this many polls per task
DEFAULT_MODEL = ""
_GOLDEN = (math.sqrt(5) - 1) / 2  # spreads the early polls evenly (a low-discrepancy sequence)


@dataclass
class _Model:
    """What is known of one timing class's (or model pool's) timing."""

    finished: Counter[tuple[int, int]] = field(default_factory=Counter)
    schedule: Schedule | None = None
    step_from: float = math.inf  # Planner.tail_from of the schedule
    cdf: list[float] = field(default_factory=list)
    p: list[float] | None = None  # the last fit's bin probabilities: the next fit starts there
    fitted_n: int = 0
    fitted_at: float = -math.inf
    tracked: int = 0  # first polls planned (for the exploring ones)
    probes: int = 0  # probe ladders started
    reach: float = 0.0  # the oldest age a task of the model was seen at
    borrowed: bool = False  # the schedule was fitted with no finished task of its own

    @property
    def observed(self) -> int:
        return sum(self.finished.values())


class PollPlanner:
    """The poll plan of a run, one learned timing per class (see the module docstring)."""

    def __init__(
        self,
        min_interval: float,
        max_interval: float,
        *,
        horizon: float,
        history: Iterable[tuple[str, float]] = (),
        polls_per_task: float | None = -1.0,  # -1: POLLS_PER_TASK
        detection_share: float = -1.0,  # -1: DETECTION_SHARE
        late_share: float = -1.0,  # -1: LATE_SHARE
        budget: float | None = None,  # most polls per task the query rate sustains
    ) -> None:
        self.min_interval = min_interval
        self.max_interval = max(min_interval, max_interval)
        self.horizon = max(horizon, 4 * min_interval)
        spend = POLLS_PER_TASK if polls_per_task == -1.0 else polls_per_task
        if spend is not None and budget is not None:
            spend = min(spend, budget)
        self.polls_per_task = spend
        self.detection_share = DETECTION_SHARE if detection_share < 0 else detection_share
        self.late_share = LATE_SHARE if late_share < 0 else late_share
        self.edges = log_edges(min_interval / 2, self.horizon)
        self.bins = len(self.edges) - 1
        # P(latency > x) = low / x: whatever the scale, a task seen running at age c is as
        # likely as not done by 2c (the scale-free guess), and censored mass stays near.
        low = self.edges[1]
        weights = [0.0] + [
            low / self.edges[k] - low / self.edges[k + 1] for k in range(1, self.bins)
        ]
        self.prior = [w / sum(weights) for w in weights] + [0.0]
        self.models: dict[str, _Model] = {}
        self.refits = 0
        self.polls_made = 0  # polls made in the run so far (probes and explorers included)
        self.tasks_polled = 0  # tasks polled at least once
        recent: dict[str, list[float]] = {}
        for model, seconds in history:
            recent.setdefault(model, []).append(seconds)
        for model, durations in recent.items():
            for seconds in durations[-HISTORY_KEEP:]:
                self.observe(model, seconds, since=seconds * (1 - HISTORY_SLACK))
        for model in sorted(self.models, key=lambda key: key != pool_of(key)):  # pools first
            self._refit(self.models[model], (), None)

    def _model(self, model: str) -> _Model:
        return self.models.setdefault(model, _Model())

    def _borrow(self, key: str) -> _Model | None:
        """The pool a class with no finished task of its own plans from, if it has a fit."""
        pool = self.models.get(pool_of(key))
        m = self.models.get(key)
        if pool is None or pool is m or pool.p is None or (m is not None and m.observed):
            return None
        return pool

    def schedule(self, model: str) -> Schedule | None:
        """The model's plan; None while it is being probed."""
        known = self.models.get(model)
        return known.schedule if known else None

    def _edge(self, age: float) -> int:
        """The grid edge nearest to `age` (in log-time): an interval (a, b] of ages is the bins
        from _edge(a) to _edge(b) - 1, so that intervals that meet share no bin."""
        if age < self.edges[1] / 2:
            return 0
        k = round(math.log(age / self.edges[1]) * BINS_PER_DOUBLING / math.log(2)) + 1
        return min(self.bins, max(1, k))

    # -- when to poll ----------------------------------------------------------------------

    def first_delay(self, model: str, age: float = 0.0, task: int | None = None) -> float:
        """Seconds until the first poll of a task of `model` submitted `age` seconds ago.
        `task`: a number of the task's own (its attempt id), so that whether it explores stays
        the same when a re-plan asks again; without it, every call counts as a new task."""
        m = self._model(model)
        plan = m.schedule
        if plan is None and (pool := self._borrow(model)) is not None:
            plan = self._refit(m, (), pool)  # a new class of a known model: start from it
        if plan is None:
            if m.probes < PROBES:
                # Probe ladder i: ages min_interval * 2 ** (i / PROBES + j), j = 0, 1, ...
                rung = self.min_interval * 2 ** (m.probes / PROBES)
                m.probes += 1
                while rung < age:
                    rung *= 2
                return max(rung - age, 0.0)
            return max(self.min_interval, HOLD_SHARE * self.horizon - age)
        if age + self.min_interval > plan.first:
            return self.min_interval
        if task is None:
            m.tracked += 1
            task = m.tracked
        if task % EXPLORE_EVERY == 0:
            # Now and then a task is first polled early, at an age spread over the stretch
            # before the first poll: the one way to learn how the early finishers are spread,
            # which is what decides where the first poll goes.
            spot = EXPLORE_FROM + (1 - EXPLORE_FROM) * ((task // EXPLORE_EVERY * _GOLDEN) % 1.0)
            return max(self.min_interval, spot * plan.first - age)
        return plan.first - age

    def next_delay(self, model: str, age: float) -> float:
        """Seconds until the next poll of a task `age` seconds old that a poll just found
        running. A task keeps its own rhythm after its first poll, so a re-plan or a poll
        delayed by a busy budget never bunches two polls together."""
        m = self._model(model)
        plan = m.schedule
        if plan is None:  # probing: double the age
            return min(max(self.min_interval, age), self.max_interval)
        if self.held(model, age):  # wait for the first poll, at most doubling its age
            return min(plan.first - age, max(self.min_interval, age))
        if age < m.step_from:
            return max(self.min_interval, plan.gap)
        grown = min(max(plan.gap, TAIL_GROWTH * age), max(plan.gap, self.max_interval))
        return max(self.min_interval, grown)

    def held(self, model: str, age: float) -> bool:
        """Whether a task of `model` a poll found running at `age` waits for the class's first
        poll: its class is still planned from its pool, and its tasks outlive it (the refits,
        censored at the running ages, move the first poll later), so the pool's gaps would be
        spent where none of the class finish. Such a task takes the first poll of each new
        plan, as a task not yet polled does."""
        m = self.models.get(model)
        plan = m.schedule if m else None
        return bool(m and m.borrowed and plan and age + self.min_interval < plan.first)

    # -- learning --------------------------------------------------------------------------

    def polled(self, model: str, *, first: bool) -> None:
        """A task of `model` was polled (`first`: for the first time). What the run's polls
        cost so far keeps the plans to the budget when the fits' promise does not hold."""
        self.polls_made += 1
        self.tasks_polled += first

    def observe(self, model: str, duration: float, since: float = 0.0) -> None:
        """A task of `model` was seen finished `duration` seconds after submission, having
        last been seen running `since` seconds after it. A class's answer goes to its model's
        pool too."""
        lo = self._edge(min(since, duration))
        for key in {model, pool_of(model)}:
            m = self._model(key)
            m.reach = max(m.reach, duration)
            m.finished[(lo, max(lo, self._edge(duration) - 1))] += 1

    def refit(self, now: float, running: Iterable[tuple[str, float]] = ()) -> set[str]:
        """Re-learn every model with news since its last fit (cheap to call often); the
        models whose plan changed. `running`: (model, age) of each task still running, its
        age when a poll last saw it running (not its age now: it may have finished since)."""
        ages: dict[str, list[float]] = {}
        for model, age in running:
            ages.setdefault(model, []).append(age)
            if pool_of(model) != model:  # the pool's fit counts its classes' tasks
                ages.setdefault(pool_of(model), []).append(age)
        changed = set()
        refitted: set[str] = set()
        for model in sorted(self.models, key=lambda key: key != pool_of(key)):  # pools first
            m = self.models[model]
            pool = self._borrow(model)
            if not m.observed and pool is None:
                continue  # probing: nothing to fit yet
            if m.fitted_at == -math.inf and m.schedule is not None and pool is None:
                m.fitted_at = now  # planned from history: the first call starts the clock
                continue
            grown = m.observed > m.fitted_n and m.observed >= m.fitted_n * REFIT_GROWTH
            stale = m.schedule is not None and now - m.fitted_at >= REFIT_AGE_SHARE * (
                m.schedule.median
            )
            moved = pool is not None and pool_of(model) in refitted
            older = pool is not None and max(ages.get(model, ()), default=0.0) > (
                REFIT_GROWTH * m.reach
            )
            if m.schedule is None or grown or stale or moved or older:
                m.fitted_at = now
                before = m.schedule
                refitted.add(model)
                if self._refit(m, ages.get(model, ()), pool) is not before:
                    changed.add(model)
        return changed

    def _refit(self, m: _Model, running: Iterable[float], pool: _Model | None) -> Schedule:
        """Fit `m` and plan from the fit. `pool`: the model's pool a class with no finished
        task of its own borrows from (the EM's start, and half the prior), else None."""
        groups = Counter(m.finished)
        for age in running:
            if age > 0:  # never polled yet: says nothing
                groups[(self._edge(age), self.bins)] += 1
                m.reach = max(m.reach, age)
        prior, start, reach = self.prior, m.p, m.reach
        m.borrowed = pool is not None and pool.p is not None
        if pool is not None and pool.p is not None:
            prior = [(a + b) / 2 for a, b in zip(self.prior, pool.p, strict=True)]
            start, reach = pool.p, max(reach, pool.reach)
        p = fit(self.bins, groups.items(), prior, PRIOR_WEIGHT, start=start)
        m.p = p
        m.fitted_n = m.observed
        cdf = [0.0]
        for x in p[: self.bins]:
            cdf.append(cdf[-1] + x)
        # Nobody has been seen past `reach`: what the fit puts far beyond it is the prior's
        # guess, and planning its polls now would push every first poll late. Plan as if all
        # were done by REACH_FACTOR * reach; the plan follows as the batch ages.
        cdf = [c if e < REACH_FACTOR * reach else 1.0 for c, e in zip(cdf, self.edges, strict=True)]
        moved = max((abs(a - b) for a, b in zip(cdf, m.cdf, strict=False)), default=1.0)
        if m.schedule is not None and moved < REPLAN_CHANGE:
            return m.schedule  # the distribution barely moved: keep the plan
        m.cdf = cdf
        self.refits += 1
        planner = Planner(self.edges, cdf, min_gap=self.min_interval, max_gap=self.max_interval)
        if self.polls_per_task is not None:
            spend = self.polls_per_task - 1 / EXPLORE_EVERY  # what the early polls cost
            if self.tasks_polled >= OVERSPEND_FROM:
                # Polls per task so far is a floor on the final figure (the running tasks will
                # be polled again): past the budget, the rest must spend less. The run's
                # figure is the target, so many small classes cannot add up past it; a class
                # judged on its own would starve the slow classes, which cost the most polls
                # (their probes) and decide the batch's p95.
                over = self.polls_made / self.tasks_polled - self.polls_per_task
                spend = max(MIN_SPEND, spend - OVERSPEND_GAIN * max(0.0, over))
            m.schedule = planner.best_detection(spend, self.late_share)
        else:
            target = self.detection_share * planner.median
            m.schedule = planner.fewest_polls(target, self.late_share)
        m.step_from = planner.tail_from
        return m.schedule


class PollPolicy:
    """The single-model face of `PollPlanner` the tracker has used so far; every method takes
    an optional `model` (default: one shared key). `scale` only sets the default horizon."""

    def __init__(
        self,
        min_interval: float,
        max_interval: float,
        *,
        scale: float = 1.0,
        horizon: float = 0.0,  # longest a task is tracked (max_wait); 0: 900 * scale
        polls_per_task: float | None = -1.0,
        detection_share: float = -1.0,
        late_share: float = -1.0,
        history: Iterable[tuple[str, float]] = (),
    ) -> None:
        self.planner = PollPlanner(
            min_interval,
            max_interval,
            horizon=horizon or 900.0 * scale,
            history=history,
            polls_per_task=polls_per_task,
            detection_share=detection_share,
            late_share=late_share,
        )

    @property
    def schedule(self) -> Schedule | None:
        return self.planner.schedule(DEFAULT_MODEL)

    @property
    def refits(self) -> int:
        return self.planner.refits

    def next_delay(self, age: float, *, polled: bool = False, model: str = DEFAULT_MODEL) -> float:
        """Seconds until the next poll of a task submitted `age` seconds ago; `polled`: it was
        polled already, just now."""
        if polled:
            return self.planner.next_delay(model, age)
        return self.planner.first_delay(model, age)

    def observe(self, latency: float, since: float = 0.0, model: str = DEFAULT_MODEL) -> None:
        self.planner.observe(model, latency, since)

    def maybe_refit(self, now: float, running: Iterable[float | tuple[str, float]]) -> bool:
        """Refit what has news; True when a plan changed (unpolled tasks take the new one).
        `running`: ages (default model) or (model, age) pairs."""
        pairs = (r if isinstance(r, tuple) else (DEFAULT_MODEL, r) for r in running)
        return bool(self.planner.refit(now, pairs))


__all__ = [
    "TAIL_QUANTILE",
    "Planner",
    "PollPlanner",
    "PollPolicy",
    "Schedule",
    "fit",
    "log_edges",
    "lognormal_cdf",
]
