"""The poll plan: learning each model's latency and placing polls (no clocks: ages are given)."""

from __future__ import annotations

import math
import random

import pytest

from pipeline.engine.polling import maths
from pipeline.engine.polling import schedule as polling
from pipeline.engine.polling.classes import pool_of, timing_class
from pipeline.engine.polling.schedule import (
    Planner,
    PollPlanner,
    PollPolicy,
    fit,
    log_edges,
    lognormal_cdf,
)

EDGES = log_edges(0.5, 2000.0, 24)


def planner(median: float = 120.0, sigma: float = 0.45, max_gap: float = 30.0) -> Planner:
    cdf = [lognormal_cdf(e, median, sigma) for e in EDGES]
    return Planner(EDGES, cdf, min_gap=2.0, max_gap=max_gap)


def drive(plan: PollPlanner, model: str, latencies: list[float], every: float) -> int:
    """A batch on a fake clock: a task submitted every `every` seconds with the given
    latencies, each polled when the plan says; the plan refits after every answer. Returns
    the polls spent."""
    import heapq

    due: list[tuple[float, int, int]] = []
    version = [0] * len(latencies)
    seen = [0.0] * len(latencies)
    polled = [False] * len(latencies)
    done: set[int] = set()
    for i in range(len(latencies)):
        heapq.heappush(due, (i * every, i, -1))
    polls = 0
    while due:
        now, i, v = heapq.heappop(due)
        if v == -1:
            version[i] += 1
            heapq.heappush(due, (now + plan.first_delay(model, 0.0), i, version[i]))
            continue
        if i in done or v != version[i]:
            continue
        age = now - i * every
        polls += 1
        plan.polled(model, first=not polled[i])
        polled[i] = True
        if age >= latencies[i]:
            done.add(i)
            plan.observe(model, age, seen[i])
        else:
            seen[i] = age
            version[i] += 1
            heapq.heappush(due, (now + plan.next_delay(model, age), i, version[i]))
        running = [(model, seen[j]) for j in range(len(latencies)) if j not in done]
        if model in plan.refit(now, running):
            for j in range(len(latencies)):
                if not polled[j] and j * every <= now and j not in done:
                    version[j] += 1
                    at = max(now, j * every + plan.first_delay(model, 0.0))
                    heapq.heappush(due, (at, j, version[j]))
    return polls


def test_planner_quantiles_follow_the_cdf() -> None:
    p = planner()
    assert p.median == pytest.approx(120.0, rel=0.02)
    assert p.at(p.quantile(0.05)) == pytest.approx(0.05, abs=0.002)


def test_expected_polls_count_only_the_polls_a_task_lives_to_see() -> None:
    p = planner()
    assert p.expected_polls(p.horizon, 30.0) == pytest.approx(1.0)
    assert p.expected_polls(60.0, 30.0) > p.expected_polls(90.0, 30.0)
    assert p.expected_polls(90.0, 15.0) > p.expected_polls(90.0, 30.0)


def test_past_the_bulk_the_gap_grows_with_age_up_to_the_longest_interval() -> None:
    p = planner(max_gap=60.0)
    assert p.step(p.tail_from - 1.0, 10.0) == 10.0
    assert p.step(p.tail_from + 1.0, 10.0) == pytest.approx(
        min(60.0, maths.TAIL_GROWTH * (p.tail_from + 1.0))
    )


def test_fewest_polls_meets_its_detection_target() -> None:
    p = planner()
    plan = p.fewest_polls(18.0, 0.05)
    assert plan.gap <= 18.0
    assert p.delay_quantile(plan.first, plan.gap, 0.95) <= 18.0 + 0.5


def test_a_tighter_target_costs_more_polls_and_the_frontier_is_monotone() -> None:
    p = planner()
    polls = [p.fewest_polls(share * 120.0, 0.05).expected_polls for share in (0.15, 0.2, 0.3)]
    assert polls == sorted(polls, reverse=True)
    delays = [p.best_detection(q, 0.05).detection for q in (2.5, 3.0, 4.0, 5.0)]
    assert delays == sorted(delays, reverse=True)


def test_best_detection_spends_the_budget_it_is_given() -> None:
    plan = planner().best_detection(3.0, 0.05)
    assert plan.expected_polls == pytest.approx(3.0, abs=0.03)


@pytest.mark.parametrize("median", [8.0, 120.0, 600.0])
def test_the_frontier_is_the_same_share_of_the_median_at_every_scale(median: float) -> None:
    """Nothing in the planner knows seconds from minutes: scale the distribution and the
    gap limits together and the plan scales with them."""
    cdf = [lognormal_cdf(e, median, 0.45) for e in EDGES]
    scale = median / 120.0
    p = Planner(EDGES, cdf, min_gap=2.0 * scale, max_gap=300.0 * scale)
    assert p.best_detection(3.0, 0.05).detection / median == pytest.approx(0.26, abs=0.04)


def test_fit_recovers_a_distribution_from_interval_censored_answers() -> None:
    rng = random.Random(2)
    truth_median, truth_sigma = 200.0, 0.4
    polls = [60.0 + 20.0 * k for k in range(40)]
    plan = PollPlanner(2.0, 30.0, horizon=2000.0)
    groups: dict[tuple[int, int], int] = {}
    for _ in range(2000):
        latency = rng.lognormvariate(math.log(truth_median), truth_sigma)
        seen = next((t for t in polls if t >= latency), None)
        if seen is None:
            continue
        before = max([0.0] + [t for t in polls if t < seen])
        key = (plan._edge(before), plan._edge(seen) - 1)
        groups[key] = groups.get(key, 0) + 1
    p = fit(plan.bins, groups.items(), plan.prior, prior_weight=1.0)
    cdf = [0.0]
    for x in p[: plan.bins]:
        cdf.append(cdf[-1] + x)
    estimate = Planner(plan.edges, cdf, min_gap=2.0, max_gap=30.0)
    assert estimate.median == pytest.approx(truth_median, rel=0.06)
    assert estimate.quantile(0.9) == pytest.approx(
        truth_median * math.exp(1.2816 * truth_sigma), rel=0.08
    )


def test_an_unknown_model_is_probed_at_doubling_ages_from_the_shortest_interval() -> None:
    plan = PollPlanner(2.0, 30.0, horizon=900.0)
    firsts = [plan.first_delay("new-model") for _ in range(polling.PROBES)]
    assert firsts[0] == 2.0 and all(2.0 <= f < 4.0 for f in firsts)
    assert firsts == sorted(firsts) and len(set(firsts)) == polling.PROBES  # staggered
    assert plan.next_delay("new-model", 16.0) == 16.0  # polled again at twice the age
    # The others wait for the probes (a safety net only, should every probe be lost).
    assert plan.first_delay("new-model") == pytest.approx(polling.HOLD_SHARE * 900.0)
    assert plan.schedule("new-model") is None


def test_the_first_finish_gives_the_model_a_plan_and_refit_says_so() -> None:
    plan = PollPlanner(2.0, 30.0, horizon=900.0)
    for _ in range(polling.PROBES):
        plan.first_delay("img")
    assert plan.refit(0.0, [("img", 4.0)]) == set()  # nothing finished: still probing
    plan.observe("img", 8.0, since=4.0)
    assert plan.refit(1.0, [("img", 4.0)] * 5) == {"img"}
    schedule = plan.schedule("img")
    assert schedule is not None and schedule.first < 30.0  # seconds, not minutes


@pytest.mark.parametrize("median", [10.0, 120.0, 480.0])
def test_a_batch_learns_its_scale_and_keeps_to_the_poll_budget(median: float) -> None:
    rng = random.Random(7)
    latencies = [rng.lognormvariate(math.log(median), 0.4) for _ in range(300)]
    plan = PollPlanner(2.0, 300.0, horizon=3600.0)
    polls = drive(plan, "m", latencies, every=0.5)
    schedule = plan.schedule("m")
    assert schedule is not None
    assert schedule.median == pytest.approx(median, rel=0.15)
    assert polls / len(latencies) <= 3.2


def test_models_are_learned_apart() -> None:
    plan = PollPlanner(2.0, 300.0, horizon=3600.0)
    for _ in range(40):
        plan.observe("image", 10.0, since=8.0)
        plan.observe("video", 300.0, since=270.0)
    assert plan.refit(0.0) == {"image", "video"}
    image, video = plan.schedule("image"), plan.schedule("video")
    assert image is not None and video is not None
    assert image.median < 12.0 and video.median > 250.0
    assert plan.first_delay("image") < 12.0 < plan.first_delay("video")


def test_earlier_runs_give_a_plan_from_the_start() -> None:
    history = [("video", 100.0 + k) for k in range(50)]
    plan = PollPlanner(2.0, 30.0, horizon=900.0, history=history)
    schedule = plan.schedule("video")
    assert schedule is not None and 60.0 < schedule.median < 150.0
    assert plan.schedule("other") is None  # a model with no history is probed
    assert plan.refit(0.0) == set()  # the first call only starts the clock


def test_the_query_budget_caps_the_polls_per_task() -> None:
    plan = PollPlanner(2.0, 30.0, horizon=900.0, budget=1.5)
    for k in range(60):
        plan.observe("m", 100.0 + k, since=90.0 + k)
    plan.refit(0.0)
    schedule = plan.schedule("m")
    assert schedule is not None and schedule.expected_polls <= 1.5


def test_the_tail_is_polled_ever_more_rarely() -> None:
    plan = PollPlanner(2.0, 300.0, horizon=3600.0)
    for k in range(60):
        plan.observe("m", 100.0 + k, since=90.0 + k)
    plan.refit(0.0)
    schedule = plan.schedule("m")
    assert schedule is not None
    assert plan.next_delay("m", 120.0) == pytest.approx(max(2.0, schedule.gap))
    late = plan.next_delay("m", 2000.0)
    assert late > schedule.gap and late <= 300.0


def test_running_tasks_keep_the_early_estimate_from_being_too_fast() -> None:
    """Early in a batch only fast tasks have finished; the running ones must count."""
    informed = PollPlanner(2.0, 30.0, horizon=900.0)
    naive = PollPlanner(2.0, 30.0, horizon=900.0)
    for plan in (informed, naive):
        for _ in range(10):
            plan.observe("m", 40.0, since=30.0)
    informed.refit(0.0, [("m", 100.0)] * 90)
    naive.refit(0.0, [("m", 100.0)])
    a, b = informed.schedule("m"), naive.schedule("m")
    assert a is not None and b is not None
    assert a.median > 100.0 > b.median


def test_some_first_polls_explore_the_stretch_before_the_planned_one() -> None:
    plan = PollPlanner(2.0, 30.0, horizon=900.0)
    for k in range(60):
        plan.observe("m", 100.0 + k, since=90.0 + k)
    plan.refit(0.0)
    schedule = plan.schedule("m")
    assert schedule is not None
    delays = [plan.first_delay("m") for _ in range(polling.EXPLORE_EVERY * 8)]
    early = [d for d in delays if d < schedule.first - 1e-9]
    assert len(early) == 8
    assert all(polling.EXPLORE_FROM * schedule.first - 1e-9 <= d for d in early)
    assert plan.first_delay("m", schedule.first + 5.0) == 2.0  # overdue: poll soon


def test_a_task_explores_or_not_by_its_own_number_however_often_asked() -> None:
    plan = PollPlanner(2.0, 30.0, horizon=900.0)
    for k in range(60):
        plan.observe("m", 100.0 + k, since=90.0 + k)
    plan.refit(0.0)
    schedule = plan.schedule("m")
    assert schedule is not None
    explorer, other = polling.EXPLORE_EVERY * 3, polling.EXPLORE_EVERY * 3 + 1
    # A re-plan asks again for every task not polled yet: the answer must not move.
    assert {plan.first_delay("m", 0.0, explorer) for _ in range(40)} == {
        plan.first_delay("m", 0.0, explorer)
    }
    assert plan.first_delay("m", 0.0, explorer) < schedule.first - 1e-9
    assert all(plan.first_delay("m", 0.0, other) == schedule.first for _ in range(40))


def test_each_fit_starts_from_the_last_so_the_em_rounds_add_up() -> None:
    # Tasks first polled at 10 s were all done by then; four explorers polled at 4 s were
    # running. Where below 10 s the finishers lie only the explorers tell, and slowly: a fit
    # from the prior alone leaves mass below 4 s, where no task finished.
    finished = [((0, 40), 60), ((25, 40), 4)]  # bins: ages up to 9.5 s, and 4 to 9.5 s
    edges = log_edges(1.0, 900.0)
    prior = [0.0] + [1.0 / (len(edges) - 2)] * (len(edges) - 2) + [0.0]
    below = sum(1 for e in edges[1:] if e <= 4.0)
    cold = fit(len(edges) - 1, finished, prior, 1.0)
    warm = cold
    for _ in range(10):
        warm = fit(len(edges) - 1, finished, prior, 1.0, start=warm)
    assert sum(warm[:below]) < sum(cold[:below]) / 2


def test_the_prior_leaves_no_early_finishers_where_every_poll_found_tasks_running() -> None:
    # Twenty tasks found done at their first poll, at 380 s; sixty seen running at 200 s.
    # Nothing says any task ends before 100 s: the fit must not keep the prior's mass there.
    plan = PollPlanner(2.0, 300.0, horizon=9000.0)
    for _ in range(20):
        plan.observe("m", 380.0)
    plan.refit(0.0, [("m", 200.0)] * 60)
    fitted = Planner(plan.edges, plan.models["m"].cdf, min_gap=2.0, max_gap=300.0)
    assert fitted.at(100.0) < 0.02


def test_polls_spent_past_the_budget_make_the_next_plans_spend_less() -> None:
    def plan_after(polls: int) -> float:
        plan = PollPlanner(2.0, 30.0, horizon=900.0)
        for k in range(60):
            plan.observe("m", 100.0 + k, since=90.0 + k)
            plan.polled("m", first=True)
        for _ in range(polls):
            plan.polled("m", first=False)
        plan.refit(0.0)
        schedule = plan.schedule("m")
        assert schedule is not None
        return schedule.expected_polls

    thrifty, spendthrift = plan_after(60), plan_after(180)  # 2 and 4 polls per task so far
    assert spendthrift < thrifty - 0.5
    assert spendthrift >= polling.MIN_SPEND - 0.01  # the search stops within a hair of it


def test_poll_policy_keeps_the_trackers_interface_on_one_key() -> None:
    policy = PollPolicy(2.0, 30.0, horizon=900.0)
    assert policy.schedule is None  # probing
    assert policy.next_delay(0.0) == 2.0
    assert policy.next_delay(8.0, polled=True) == 8.0
    assert policy.maybe_refit(0.0, [4.0]) is False
    for age in (10.0, 11.0, 12.0):
        policy.observe(age, since=age - 2.0)
    assert policy.maybe_refit(1.0, [9.0] * 5) is True
    assert policy.schedule is not None and policy.refits >= 1


def test_detection_first_mode_uses_the_share_of_the_median() -> None:
    plan = PollPlanner(2.0, 30.0, horizon=900.0, polls_per_task=None, detection_share=0.2)
    for k in range(60):
        plan.observe("m", 100.0 + k, since=90.0 + k)
    plan.refit(0.0)
    schedule = plan.schedule("m")
    assert schedule is not None
    assert schedule.detection == pytest.approx(0.2 * schedule.median)
    assert schedule.gap <= schedule.detection


# -- timing classes ----------------------------------------------------------------------


def test_a_timing_class_is_the_model_and_the_inputs_that_set_how_long_it_takes() -> None:
    short = timing_class("sora-2-text-to-video", {"prompt": "a boat", "n_frames": "10"})
    long = timing_class("sora-2-text-to-video", {"prompt": "a cat", "n_frames": 15})
    assert short == "sora-2-text-to-video[n_frames=10]" != long
    assert long == timing_class("sora-2-text-to-video", {"n_frames": "15", "seed": 3})
    assert pool_of(short) == pool_of(long) == "sora-2-text-to-video"
    # No timing field: the model's pool itself (so single-model batches keep one class).
    assert timing_class("nano-banana-2", {"prompt": "x", "aspect_ratio": "1:1"}) == (
        "nano-banana-2"
    )
    assert pool_of("nano-banana-2") == "nano-banana-2"
    # The fields keep one order, whatever order the job writes them in.
    assert timing_class("m", {"resolution": "720p", "duration": "5"}) == timing_class(
        "m", {"duration": "5", "resolution": "720p"}
    )


def test_two_classes_of_one_model_get_plans_of_their_own() -> None:
    plan = PollPlanner(2.0, 300.0, horizon=3600.0)
    short, long = "sora[n_frames=10]", "sora[n_frames=15]"
    for _ in range(40):
        plan.observe(short, 120.0, since=110.0)
        plan.observe(long, 480.0, since=450.0)
    assert {short, long} <= plan.refit(0.0)
    a, b = plan.schedule(short), plan.schedule(long)
    assert a is not None and b is not None
    assert a.median < 150.0 and b.median > 400.0
    assert plan.first_delay(short) < 150.0 < plan.first_delay(long)
    # Both classes' answers are in the model's pool as well.
    assert plan.models["sora"].observed == 80


def test_a_new_class_of_a_known_model_starts_from_the_models_pool() -> None:
    plan = PollPlanner(2.0, 300.0, horizon=3600.0)
    for _ in range(40):
        plan.observe("sora[n_frames=10]", 120.0, since=110.0)
    plan.refit(0.0)
    # Not probed at the shortest interval, not held for most of the horizon: planned as its
    # model's tasks are, until its own finish.
    first = plan.first_delay("sora[n_frames=15]")
    assert 30.0 < first < 200.0
    assert plan.models["sora[n_frames=15]"].probes == 0
    assert plan.schedule("sora[n_frames=15]") is not None
    # An unknown model with no pool at all is still probed.
    assert plan.first_delay("kling[duration=5]") == 2.0


def test_a_borrowing_class_whose_tasks_outlive_its_pool_plans_later_and_waits() -> None:
    plan = PollPlanner(2.0, 300.0, horizon=3600.0)
    for _ in range(40):
        plan.observe("sora[n_frames=10]", 120.0, since=110.0)
    plan.refit(0.0)
    new = "sora[n_frames=15]"
    before = plan.first_delay(new)
    changed = plan.refit(1.0, [(new, 250.0)] * 30)  # all seen running well past the pool
    after = plan.schedule(new)
    assert new in changed and after is not None and after.first > before
    # A task polled early waits for the new first poll (at most doubling its age) instead of
    # being polled at the pool's gaps; once the class has a finish of its own, it does not.
    assert plan.held(new, 100.0)
    assert plan.next_delay(new, 100.0) == pytest.approx(min(after.first - 100.0, 100.0))
    plan.observe(new, 480.0, since=450.0)
    plan.refit(2.0, [(new, 250.0)] * 30)
    assert not plan.held(new, 100.0)


def test_earlier_runs_are_learned_by_class_and_unclassed_rows_go_to_the_pool() -> None:
    history = [("sora[n_frames=15]", 480.0 + k) for k in range(30)]
    history += [("sora", 120.0 + k) for k in range(30)]  # rows that kept no inputs
    plan = PollPlanner(2.0, 300.0, horizon=3600.0, history=history)
    long = plan.schedule("sora[n_frames=15]")
    assert long is not None and long.median > 400.0
    assert plan.models["sora"].observed == 60
    # A class with no history of its own starts from the pool (both lengths pooled).
    assert plan.first_delay("sora[n_frames=10]") < plan.first_delay("sora[n_frames=15]")


def test_the_budget_holds_over_the_run_however_many_classes_share_it() -> None:
    def plan_after(polls: int) -> float:
        plan = PollPlanner(2.0, 30.0, horizon=900.0)
        for c in range(10):  # ten small classes, none with OVERSPEND_FROM tasks of its own
            key = f"m[duration={c}]"
            for k in range(6):
                plan.observe(key, 100.0 + k, since=90.0 + k)
                plan.polled(key, first=True)
        for _ in range(polls):
            plan.polled("m[duration=0]", first=False)
        plan.refit(0.0)
        schedule = plan.schedule("m[duration=9]")
        assert schedule is not None
        return schedule.expected_polls

    thrifty, spendthrift = plan_after(60), plan_after(180)  # 2 and 4 polls per task so far
    assert spendthrift < thrifty - 0.5
