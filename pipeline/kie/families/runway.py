"""Runway: `POST /api/v1/runway/generate` and `/runway/extend` (flat bodies, no `model`;
Kie requires a `callBackUrl`), read from `GET /api/v1/runway/record-detail`, whose record
has a `state` of its own words (`wait`, `queueing`, `generating`, `success`, `fail`) and its
video in `videoInfo.videoUrl`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.kie.answers import TaskInfo, check_task_id
from pipeline.kie.families.base import (
    OwnEndpoint,
    Request,
    credits,
    flat,
    record_of,
    text,
    urls,
)
from pipeline.status import KieState

_STATES: dict[str, KieState] = {
    "wait": "waiting",
    "queueing": "queuing",
    "generating": "generating",
    "success": "success",
    "fail": "fail",
}


class Runway(OwnEndpoint):
    name = "runway"
    create_path = "/api/v1/runway/generate"
    record_path = "/api/v1/runway/record-detail"
    callback_required = True

    def create(self, body: Mapping[str, Any], sources: Mapping[str, str]) -> Request:
        path = "/api/v1/runway/extend" if body.get("model") == "runway/extend" else None
        return Request(
            "POST", path or self.create_path, json=flat(body, model=None, callback_required=True)
        )

    def read(self, data: Any, task_id: str) -> TaskInfo:
        record = record_of(data, "Runway record-detail")
        state: KieState = _STATES.get(str(record.get("state")), "waiting")
        video = record.get("videoInfo")
        found = urls(video.get("videoUrl")) if isinstance(video, dict) else ()
        return TaskInfo(
            task_id=check_task_id(record.get("taskId") or task_id, "Runway record-detail"),
            state=state,
            result_urls=found,
            fail_code=text(record.get("failCode")),
            fail_msg=text(record.get("failMsg")),
            credits=credits(record.get("creditsConsumed")),
        )


FAMILY = Runway()
