"""The poll plan: learning the latency distribution and placing polls (no clocks involved)."""

from __future__ import annotations

import math
import random

import pytest

from pipeline import polling
from pipeline.polling import Planner, PollPolicy, fit, lognormal_cdf

WIDTH = 3.0


def lognormal_grid(median: float, sigma: float, bins: int = 300) -> list[float]:
    return [lognormal_cdf(k * WIDTH, median, sigma) for k in range(bins + 1)]


def planner(median: float = 120.0, sigma: float = 0.45, max_gap: float = 30.0) -> Planner:
    return Planner(lognormal_grid(median, sigma), WIDTH, min_gap=2.0, max_gap=max_gap)


def test_planner_quantiles_follow_the_cdf() -> None:
    p = planner()
    assert p.median == pytest.approx(120.0, rel=0.02)
    assert p.at(p.quantile(0.05)) == pytest.approx(0.05, abs=0.002)


def test_expected_polls_count_only_the_polls_a_task_lives_to_see() -> None:
    p = planner()
    # First poll after everything is done: exactly one poll.
    assert p.expected_polls(p.horizon, 30.0) == pytest.approx(1.0)
    # Earlier first polls, or shorter gaps, cost more.
    assert p.expected_polls(60.0, 30.0) > p.expected_polls(90.0, 30.0)
    assert p.expected_polls(90.0, 15.0) > p.expected_polls(90.0, 30.0)


def test_fewest_polls_meets_its_detection_target() -> None:
    p = planner()
    plan = p.fewest_polls(18.0, 0.05)
    assert plan.gap <= 18.0
    assert plan.late_share == pytest.approx(0.05, abs=0.005)
    assert p.delay_quantile(plan.first, plan.gap, 0.95) <= 18.0 + 0.5


def test_a_tighter_target_costs_more_polls_and_the_frontier_is_monotone() -> None:
    p = planner()
    polls = [p.fewest_polls(share * 120.0, 0.05).expected_polls for share in (0.15, 0.2, 0.3)]
    assert polls == sorted(polls, reverse=True)
    delays = [p.best_detection(q, 0.05).detection for q in (2.5, 3.0, 4.0, 5.0)]
    assert delays == sorted(delays, reverse=True)


def test_best_detection_spends_the_budget_it_is_given() -> None:
    p = planner()
    plan = p.best_detection(3.0, 0.05)
    assert plan.expected_polls == pytest.approx(3.0, abs=0.02)
    # The maths the README quotes: 3 polls per task cannot reach 15% of the median at p95,
    # and 15% needs well over 4 polls per task.
    assert plan.detection > 0.2 * 120.0
    assert p.fewest_polls(0.15 * 120.0, 0.05).expected_polls > 4.5


def test_a_narrow_distribution_is_detected_promptly_with_few_polls() -> None:
    p = planner(median=120.0, sigma=0.05)
    plan = p.best_detection(3.0, 0.05)
    assert plan.detection < 0.1 * 120.0


def test_fit_recovers_a_distribution_from_interval_censored_answers() -> None:
    rng = random.Random(2)
    truth_median, truth_sigma = 200.0, 0.4
    polls = [60.0 + 20.0 * k for k in range(40)]  # every task polled at 60, 80, 100, ...
    groups: dict[tuple[int, int], int] = {}
    for _ in range(2000):
        latency = rng.lognormvariate(math.log(truth_median), truth_sigma)
        seen = next((t for t in polls if t >= latency), None)
        if seen is None:
            continue
        before = max([0.0] + [t for t in polls if t < seen])
        key = (round(before / WIDTH), round(seen / WIDTH) - 1)
        groups[key] = groups.get(key, 0) + 1
    flat = [1.0 / 301] * 301  # an uninformative prior
    p = fit(300, groups.items(), flat, prior_weight=1.0)
    cdf = [0.0]
    for x in p[:300]:
        cdf.append(cdf[-1] + x)
    estimate = Planner(cdf, WIDTH, min_gap=2.0, max_gap=30.0)
    assert estimate.median == pytest.approx(truth_median, rel=0.06)
    assert estimate.quantile(0.9) == pytest.approx(
        truth_median * math.exp(1.2816 * truth_sigma), rel=0.08
    )


def test_running_tasks_keep_the_early_estimate_from_being_too_fast() -> None:
    """Early in a batch only fast tasks have finished; the running ones must count."""
    policy = PollPolicy(2.0, 30.0, horizon=900.0)
    for _ in range(10):
        policy.observe(40.0, since=30.0)  # ten fast ones
    blind = PollPolicy(2.0, 30.0, horizon=900.0)
    blind.finished = policy.finished.copy()
    informed = policy.refit(running=[100.0] * 90)  # ninety still running at 100 s
    naive = blind.refit()
    assert informed.median > 100.0 > naive.median


def test_next_delay_waits_for_the_first_poll_then_keeps_the_gap() -> None:
    policy = PollPolicy(2.0, 30.0, horizon=900.0)
    plan = policy.schedule
    assert plan is not None and 40.0 < plan.first < 200.0
    delays = {policy.next_delay(0.0) for _ in range(polling.EXPLORE_EVERY - 1)}
    assert plan.first in delays  # most tasks: the planned first poll
    assert policy.next_delay(plan.first, polled=True) == pytest.approx(plan.gap)
    # A task polled early (an exploring one, or a plan since moved) keeps its rhythm.
    assert policy.next_delay(plan.first - 20.0, polled=True) == pytest.approx(plan.gap)


def test_some_first_polls_explore_the_stretch_before_the_planned_one() -> None:
    policy = PollPolicy(2.0, 30.0, horizon=900.0)
    assert policy.schedule is not None
    first = policy.schedule.first
    delays = [policy.next_delay(0.0) for _ in range(polling.EXPLORE_EVERY * 8)]
    early = [d for d in delays if d < first - 1e-9]
    assert len(early) == 8
    assert all(polling.EXPLORE_FROM * first - 1e-9 <= d for d in early)


def test_maybe_refit_waits_for_news() -> None:
    policy = PollPolicy(2.0, 30.0, horizon=900.0)
    assert policy.maybe_refit(0.0, []) is False  # starts the clock
    assert policy.maybe_refit(1.0, []) is False  # nothing new, not long enough
    for age in (100.0, 110.0, 120.0, 130.0, 140.0):
        policy.observe(age, since=age - 30.0)
    policy.maybe_refit(2.0, [150.0] * 20)
    assert policy.refits >= 2  # the prior's plan, and a re-plan on news


def test_detection_first_mode_uses_the_share_of_the_median() -> None:
    policy = PollPolicy(2.0, 30.0, horizon=900.0, polls_per_task=None, detection_share=0.2)
    plan = policy.schedule
    assert plan is not None
    assert plan.detection == pytest.approx(0.2 * plan.median)
    assert plan.gap <= plan.detection
