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
from decimal import Decimal
from typing import Any

from pipeline.models.pricing import credits_json
from pipeline.simulator.config import SimConfig

MODERATION_FAIL = ("422", "Invalid prompt: prompt contains prohibited content")
GENERATION_FAIL = ("501", "Generation failed")
SUCCESS_FLAG = {"success": 1, "fail": 3}  # recordInfo's successFlag; 0 while running


@dataclass(frozen=True)
class Profile:
    """A latency distribution in real Kie seconds: lognormal around the median, clamped."""

    median: float
    sigma: float
    low: float
    high: float


def profile_for(config: SimConfig, media: str, long: bool) -> Profile:
    """Images take tens of seconds, audio about a minute, videos minutes, long videos more."""
    if media == "image":
        median, low, high = config.image_latency
    elif media == "audio":
        median, low, high = config.audio_latency
    else:
        median, low, high = config.latency_median, config.latency_min, config.latency_max
        if long:
            factor = config.long_video_factor
            median, low, high = median * factor, low * factor, high * factor
    return Profile(median, config.latency_sigma, low, high)


@dataclass(frozen=True)
class Plan:
    """How a task will go, in simulator seconds from its creation."""

    latency: float  # when it ends, or for a stuck task when it would have; sets the phases
    ends: bool  # False: stuck, generating forever
    fail: tuple[str, str] | None  # (failCode, failMsg) when it ends in `fail`

    @property
    def duration(self) -> float | None:
        return self.latency if self.ends else None


def plan_task(
    config: SimConfig,
    rng: random.Random,
    moderated: bool,
    profile: Profile | None = None,
    refused: tuple[str, str] | None = None,
) -> Plan:
    """How a task goes. `refused`: a failure known at create time (an input file gone)."""
    # Draw every number every time, whatever the outcome, so that one task's fate never
    # shifts the draws of the tasks after it (a replay with other rates stays aligned).
    p = profile or profile_for(config, "video", long=False)
    latency = rng.lognormvariate(math.log(p.median), p.sigma)
    fails, sticks = rng.random(), rng.random()
    latency = min(max(latency, p.low), p.high)
    if refused is not None:
        return Plan(config.scaled(config.moderation_delay), True, refused)
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
    credits: Decimal  # what the task costs; Kie's creditsConsumed may be fractional
    created_mono: float
    created_wall: float
    plan: Plan
    phases: tuple[float, float]
    callback_url: str | None
    result_token: str
    watermark_token: str
    lost_answer: bool = False
    settled: bool = False  # refund and callback done (see KieService.settle_due)
    media: str = "video"
    ext: str = "mp4"  # the extension (and so the type) of every result
    results: int = 1  # how many results a success yields
    answer_code: int | None = None  # recordInfo's body code for it, when not 200 (records.py)
    audio_data: bool = False  # its results listed as `data[].audio_url` (Kie's audio models)
    family: str = "createTask"  # whose endpoints made it, and so the shape of its record

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

    def record(
        self, now: float, result_urls: list[str], watermark_urls: list[str]
    ) -> dict[str, Any]:
        """recordInfo `data`, the shape Kie answers (strings where Kie sends strings).

        The 2026 fields sit beside the older ones: `response` (resultJson, parsed),
        `successFlag`, `creditsConsumed` (on success) and `costTime` in seconds.
        """
        state = self.state(now)
        data: dict[str, Any] = {
            "taskId": self.task_id,
            "model": self.model,
            "state": state,
            "param": json.dumps(self.body, ensure_ascii=False),
            "resultJson": "",
            "response": None,
            "successFlag": SUCCESS_FLAG.get(state, 0),
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
            result: dict[str, Any] = {
                "resultUrls": result_urls,
                "resultWaterMarkUrls": watermark_urls,
            }
            if self.audio_data:  # Kie's audio models: one item per track
                tracks = enumerate(result_urls, 1)
                result = {
                    "data": [
                        {"id": f"{self.task_id}-{i}", "audio_url": url, "title": f"Track {i}"}
                        for i, url in tracks
                    ]
                }
            data["resultJson"] = json.dumps(result)
            data["response"] = result
            data["creditsConsumed"] = credits_json(self.credits)
        # Seconds now (Kie's 2026 answers); at least 1, so a fast simulated task is not 0.
        data["costTime"] = max(1, math.ceil(self.plan.duration))
        data["completeTime"] = data["updateTime"] = int(finished * 1000)
        return data

    def summary(self, now: float) -> dict[str, Any]:
        """One row of /__sim/tasks."""
        return {
            "taskId": self.task_id,
            "account": self.account,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "input": self.body.get("input"),
            "state": self.state(now),
            "created_at": self.created_wall,
            "finished_at": self.finished_wall(now),
            "duration": self.plan.duration,
            "failCode": self.plan.fail[0] if self.plan.fail else None,
            "lost_answer": self.lost_answer,
            "media": self.media,
            "results": self.results,
            "credits": credits_json(self.credits),
            "family": self.family,
        }
