"""GPT-4o Image: `POST /api/v1/gpt4o-image/generate` (a flat body, no `model`), read from
`GET /api/v1/gpt4o-image/record-info` (`successFlag` 0 generating, 1 success, 2 failed;
several images in `response.resultUrls`); an expired image link is renewed by its own
`POST /api/v1/gpt4o-image/download-url` (`taskId`, `url`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.kie.answers import KieError, TaskInfo, check_task_id
from pipeline.kie.families.base import (
    Call,
    Family,
    Request,
    credits,
    flat,
    own_endpoint_error,
    record_of,
    text,
    urls,
)
from pipeline.status import KieState

_FLAGS: dict[int, KieState] = {0: "generating", 1: "success", 2: "fail", 3: "fail"}


class Gpt4oImage(Family):
    name = "gpt4o-image"
    create_path = "/api/v1/gpt4o-image/generate"
    record_path = "/api/v1/gpt4o-image/record-info"

    def create(self, body: Mapping[str, Any], sources: Mapping[str, str]) -> Request:
        return Request("POST", self.create_path, json=flat(body, model=None))

    def read(self, data: Any, task_id: str) -> TaskInfo:
        record = record_of(data, "GPT-4o Image record-info")
        flag = record.get("successFlag")
        state: KieState = _FLAGS.get(flag, "waiting") if isinstance(flag, int) else "waiting"
        response = record.get("response")
        found = urls(response.get("resultUrls")) if isinstance(response, dict) else ()
        return TaskInfo(
            task_id=check_task_id(record.get("taskId") or task_id, "GPT-4o Image record-info"),
            state=state,
            result_urls=found[:100],
            fail_code=text(record.get("errorCode")),
            fail_msg=text(record.get("errorMessage")),
            credits=credits(record.get("creditsConsumed")),
        )

    def refresh(self, task_id: str | None, url: str) -> Request:
        if task_id is None:
            return super().refresh(task_id, url)
        return Request(
            "POST", "/api/v1/gpt4o-image/download-url", json={"taskId": task_id, "url": url}
        )

    def error(self, exc: KieError, call: Call) -> KieError:
        return own_endpoint_error(exc, call) or super().error(exc, call)


FAMILY = Gpt4oImage()
