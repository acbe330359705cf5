"""How Kie's recordInfo answers a task besides the plain record of `Task.record`.

Kie's records are not always the tidy `code 200` + `resultUrls` of its examples (issue 23):
- a task whose generation failed can be answered with body code 501 ("generation failed"),
  and one with no result after more than 10 minutes with body code 408, instead of `code 200`
  and `state: fail` (the faults `failed_answer` and `expired_answer`);
- audio models list their results as `response.data[].audio_url`, not `resultUrls`
  (`audio_data`, drawn in `Task.record`);
- a task just created can be "not found" for a while (`unknown_after_create` seconds).

Which of the two answers a task gets is drawn at its create from a stream of its own, so
adding these faults leaves every older seeded replay unchanged.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from pipeline.simulator.config import SimConfig
from pipeline.simulator.replies import Reply
from pipeline.simulator.tasks import GENERATION_FAIL, Plan, Task

FAILED = 501
EXPIRED = 408
EXPIRED_AFTER = 600.0  # real Kie seconds: "no result for over 10 minutes"
WORDS = {FAILED: "generation failed", EXPIRED: "no result for over 10 minutes"}


def draw_answer(config: SimConfig, stream: random.Random, plan: Plan) -> tuple[int | None, Plan]:
    """The body code recordInfo will answer this task with (None: the usual 200), and the
    plan that goes with it: a 501 task fails, a 408 task never ends. One draw per task,
    always, whatever the rates. A task that fails for its input (moderation, a lost file)
    keeps its own failure."""
    draw = stream.random()
    rates = config.rates
    if plan.fail is not None and plan.fail != GENERATION_FAIL:
        return None, plan
    if draw < rates.failed_answer:
        return FAILED, replace(plan, ends=True, fail=GENERATION_FAIL)
    if draw < rates.failed_answer + rates.expired_answer:
        return EXPIRED, replace(plan, ends=False, fail=None)
    return None, plan


def unknown(config: SimConfig, task: Task, now: float) -> bool:
    """Whether recordInfo does not know the task yet (just after its create)."""
    return now < task.created_mono + config.scaled(config.unknown_after_create)


def answer(
    config: SimConfig, task: Task, record: dict[str, Any], now: float, account: int
) -> Reply:
    """recordInfo's answer for a known task: its record, or the body code it was dealt."""
    if task.answer_code == FAILED and record["state"] == "fail":
        return Reply(FAILED, WORDS[FAILED], record, account)
    if task.answer_code == EXPIRED and now >= task.created_mono + config.scaled(EXPIRED_AFTER):
        return Reply(EXPIRED, WORDS[EXPIRED], None, account)
    return Reply(200, "success", record, account)
