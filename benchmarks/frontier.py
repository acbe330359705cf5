"""The frontier of a batch made of several timing classes: each class planned on its own true
distribution (the runner's plan family and gap limits), the p95 taken over all tasks.

The runner plans each timing class separately and gives every class the same polls per task,
so the frontier it is measured against does the same: each class's plan is the best for its
own p95 at that spend, and the batch's p95 is the delay all but 5% of the batch's tasks are
seen within (the classes weigh as their share of the batch). A split of the spend between the
classes that favoured the slow ones could do better still; this frontier does not search
for one, so it is what a planner of this shape, told the distributions, would reach.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.engine.polling.maths import Planner, Schedule

LATE = 0.05


def pooled_p95(plans: Sequence[tuple[Planner, Schedule]], late: float = LATE) -> float:
    """The delay all but `late` of the batch's tasks are seen within, the classes being equal
    shares of the batch, each polled by its own schedule."""

    def late_share(delay: float) -> float:
        return sum(p.late(s.first, s.gap, delay) for p, s in plans) / len(plans)

    low, high = 0.0, max(s.first + max(s.gap, p.max_gap) for p, s in plans)
    for _ in range(18):
        mid = (low + high) / 2
        if late_share(mid) <= late:
            high = mid
        else:
            low = mid
    return high


def per_class(planners: Sequence[Planner], polls: float) -> tuple[float, list[Schedule]]:
    """The batch's p95 and each class's plan, every class spending `polls` per task."""
    plans = [(p, p.best_detection(polls, LATE)) for p in planners]
    if len(plans) == 1:
        return plans[0][1].detection, [plans[0][1]]
    return pooled_p95(plans), [s for _, s in plans]
