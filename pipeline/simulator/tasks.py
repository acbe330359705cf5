"""Tasks and their lifecycle, computed lazily from the clock.

A task's whole future is decided at create time (how long it takes, how it ends), so its
state at any moment is a pure function of the elapsed time: no timer has to fire for a query
to see the right answer, and a seeded run replays exactly.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from pipeline.simulator.config import SimConfig

MODERATION_FAIL = ("422", "Invalid prompt: prompt contains prohibited content")
GENERATION_FAIL = ("501", "Generation failed")


@dataclass(frozen=True)
class Plan:
    """How a task will go, in simulator seconds from its creation."""

    latency: float  # when it ends, or for a stuck task when it would have; sets the phases
    ends: bool  # False: stuck, generating forever
    fail: tuple[str, str] | None  # (failCode, failMsg) when it ends in `fail`

    @property
    def duration(self) -> float | None:
        return self.latency if self.ends else None


def plan_task(config: SimConfig, rng: random.Random, moderated: bool) -> Plan:
    # Draw every number every time, whatever the outcome, so that one task's fate never
    # shifts the draws of the tasks after it (a replay with other rates stays aligned).
    latency = rng.lognormvariate(math.log(config.latency_median), config.latency_sigma)
    fails, sticks = rng.random(), rng.random()
    latency = min(max(latency, config.latency_min), config.latency_max)
    if moderated:
        return Plan(config.scaled(config.moderation_delay), True, MODERATION_FAIL)
    if sticks < config.rates.stuck:
        return Plan(config.scaled(latency), False, None)
    failure = GENERATION_FAIL if fails < config.rates.generation_failure else None
    return Plan(config.scaled(latency), True, failure)


@dataclass
class Task:
    task_id: str
    account: int
    model: str
    body: dict[str, Any]  # the create body as received, echoed back as `param`
    fingerprint: str
    aspect_ratio: str
    credits: int
    created_mono: float
    created_wall: float
    plan: Plan
    phases: tuple[float, float]
    callback_url: str | None
    result_token: str
    watermark_token: str
    lost_answer: bool = False
    settled: bool = False  # refund and callback done (see KieService.settle_due)

    @property
    def end_mono(self) -> float | None:
        return None if self.plan.duration is None else self.created_mono + self.plan.duration

    def ended(self, now: float) -> bool:
        end = self.end_mono
        return end is not None and now >= end

    def state(self, now: float) -> str:
        if self.ended(now):
            return "fail" if self.plan.fail else "success"
        elapsed = now - self.created_mono
        total = self.plan.latency  # a stuck task passes the phases, then generates forever
        waiting, queuing = self.phases
        if elapsed < total * waiting:
            return "waiting"
        if elapsed < total * (waiting + queuing):
            return "queuing"
        return "generating"

    def finished_wall(self, now: float) -> float | None:
        if not self.ended(now) or self.plan.duration is None:
            return None
        return self.created_wall + self.plan.duration

    def record(self, now: float, result_url: str, watermark_url: str) -> dict[str, Any]:
        """recordInfo `data`, the shape Kie answers (strings where Kie sends strings)."""
        data: dict[str, Any] = {
            "taskId": self.task_id,
            "model": self.model,
            "state": self.state(now),
            "param": json.dumps(self.body, ensure_ascii=False),
            "resultJson": "",
            "failCode": None,
            "failMsg": None,
            "costTime": None,
            "completeTime": None,
            "createTime": int(self.created_wall * 1000),
        }
        finished = self.finished_wall(now)
        if finished is None or self.plan.duration is None:
            return data  # running: no updateTime at all, like the live service
        if self.plan.fail:
            data["failCode"], data["failMsg"] = self.plan.fail
        else:
            data["failCode"], data["failMsg"] = "", ""
            result = {"resultUrls": [result_url], "resultWaterMarkUrls": [watermark_url]}
            data["resultJson"] = json.dumps(result)
        data["costTime"] = int(self.plan.duration * 1000)
        data["completeTime"] = data["updateTime"] = int(finished * 1000)
        return data

    def summary(self, now: float) -> dict[str, Any]:
        """One row of /__sim/tasks."""
        return {
            "taskId": self.task_id,
            "account": self.account,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "state": self.state(now),
            "created_at": self.created_wall,
            "finished_at": self.finished_wall(now),
            "duration": self.plan.duration,
            "failCode": self.plan.fail[0] if self.plan.fail else None,
            "lost_answer": self.lost_answer,
        }
