"""Flux Kontext: `POST /api/v1/flux/kontext/generate` (a flat body with `model`:
`flux-kontext-pro` or `flux-kontext-max`; `inputImage` makes it an edit), read from
`GET /api/v1/flux/kontext/record-info`: `successFlag` 0 generating, 1 success, 2 create
failed, 3 generation failed; the image in `response.resultImageUrl`."""

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


class FluxKontext(Family):
    name = "flux-kontext"
    create_path = "/api/v1/flux/kontext/generate"
    record_path = "/api/v1/flux/kontext/record-info"

    def create(self, body: Mapping[str, Any], sources: Mapping[str, str]) -> Request:
        return Request("POST", self.create_path, json=flat(body, model=str(body.get("model"))))

    def read(self, data: Any, task_id: str) -> TaskInfo:
        record = record_of(data, "Flux Kontext record-info")
        flag = record.get("successFlag")
        state: KieState = _FLAGS.get(flag, "waiting") if isinstance(flag, int) else "waiting"
        response = record.get("response")
        found = urls(response.get("resultImageUrl")) if isinstance(response, dict) else ()
        return TaskInfo(
            task_id=check_task_id(record.get("taskId") or task_id, "Flux Kontext record-info"),
            state=state,
            result_urls=found,
            fail_code=text(record.get("errorCode")),
            fail_msg=text(record.get("errorMessage")),
            credits=credits(record.get("creditsConsumed")),
        )

    def error(self, exc: KieError, call: Call) -> KieError:
        return own_endpoint_error(exc, call) or super().error(exc, call)


FAMILY = FluxKontext()
