"""Suno's music API: `POST /api/v1/generate` (a flat body with `model`: `V4` ... `V5_5`;
Kie requires a `callBackUrl`), read from `GET /api/v1/generate/record-info`, whose `status`
is a word of its own (`PENDING`, `TEXT_SUCCESS`, `FIRST_SUCCESS`, `SUCCESS`, or a failure:
`CREATE_TASK_FAILED`, `GENERATE_AUDIO_FAILED`, `CALLBACK_EXCEPTION`,
`SENSITIVE_WORD_ERROR`); two tracks per task in `response.sunoData[].audioUrl`. A task is
done at `SUCCESS` (at `FIRST_SUCCESS` only the first track is ready)."""

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

_RUNNING: dict[str, KieState] = {
    "PENDING": "queuing",
    "TEXT_SUCCESS": "generating",
    "FIRST_SUCCESS": "generating",
}
MODERATED = "SENSITIVE_WORD_ERROR"


class Suno(OwnEndpoint):
    name = "suno"
    create_path = "/api/v1/generate"
    record_path = "/api/v1/generate/record-info"
    callback_required = True

    def create(self, body: Mapping[str, Any], sources: Mapping[str, str]) -> Request:
        return Request(
            "POST",
            self.create_path,
            json=flat(body, model=str(body.get("model")), callback_required=True),
        )

    def read(self, data: Any, task_id: str) -> TaskInfo:
        record = record_of(data, "Suno record-info")
        status = str(record.get("status") or "PENDING")
        state: KieState = "success" if status == "SUCCESS" else _RUNNING.get(status, "fail")
        response = record.get("response")
        tracks = response.get("sunoData") if isinstance(response, dict) else None
        found: tuple[str, ...] = ()
        if isinstance(tracks, list):
            found = tuple(
                u for t in tracks if isinstance(t, dict) for u in urls(t.get("audioUrl"))
            )[:100]
        failed = state == "fail"
        return TaskInfo(
            task_id=check_task_id(record.get("taskId") or task_id, "Suno record-info"),
            state=state,
            result_urls=found,
            fail_code=text(record.get("errorCode")) or (status if failed else None),
            fail_msg=text(record.get("errorMessage")) or (status if failed else None),
            credits=credits(record.get("creditsConsumed")),
            permanent=failed and status == MODERATED,
        )


FAMILY = Suno()
