"""Veo 3.1: `POST /api/v1/veo/generate` (a flat body: the fields beside `model`), its
follow-ups (`extend`, `get-4k-video`, `get-1080p-video`) and `GET /api/v1/veo/record-info`.

The record has no `state`: `successFlag` 0 generating, 1 success, 2 failed before
completion, 3 generation failed; `errorCode`/`errorMessage` instead of `failCode`/`failMsg`;
results in `response.resultUrls`. Moderation is asynchronous: the create succeeds and the
record fails with `errorCode` 400, a refusal of the content (permanent). Every Veo task
(generation, extension, 4K) is read from record-info. The 1080p version is a GET that
answers the URL itself once ready; its "task" is the source task and index, read by the same
GET (`1080p~<index>~<source task id>`), so the engine tracks it like any task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.kie.answers import KieError, MalformedAnswer, TaskInfo, check_task_id, flag_state
from pipeline.kie.families.base import (
    Call,
    Family,
    Request,
    credits,
    flat,
    own_endpoint_error,
    record_of,
    refused,
    text,
    urls,
)
from pipeline.status import KieState

GENERATE = ("veo3", "veo3_fast", "veo3_lite")
# `veo/extend` extends with the quality its source was made with (Kie's `model` values).
EXTEND_MODEL = {"veo3": "quality", "veo3_fast": "fast", "veo3_lite": "lite"}
HD_PREFIX = "1080p~"
MODERATED = "400"  # the record's errorCode for a prompt or image refused by moderation


class Veo(Family):
    name = "veo"
    create_path = "/api/v1/veo/generate"
    record_path = "/api/v1/veo/record-info"

    def create(self, body: Mapping[str, Any], sources: Mapping[str, str]) -> Request:
        model = str(body.get("model"))
        if model in GENERATE:
            return Request("POST", self.create_path, json=flat(body, model=model))
        if model == "veo/extend":
            quality = EXTEND_MODEL.get(sources.get("taskId", ""))
            return Request("POST", "/api/v1/veo/extend", json=flat(body, model=quality))
        if model == "veo/get-4k-video":
            return Request("POST", "/api/v1/veo/get-4k-video", json=flat(body, model=None))
        if model == "veo/get-1080p-video":
            params = {k: v for k, v in (body.get("input") or {}).items()}
            return Request("GET", "/api/v1/veo/get-1080p-video", params=params)
        raise ValueError(f"{model} is not a Veo 3.1 model")

    def task_id(self, data: Any, request: Request) -> str:
        if request.path.endswith("/get-1080p-video"):
            params = request.params or {}
            source = check_task_id(params.get("taskId"), "get-1080p-video was asked")
            return check_task_id(f"{HD_PREFIX}{params.get('index', 0)}~{source}", "get-1080p-video")
        return super().task_id(data, request)

    def record(self, task_id: str) -> Request:
        if task_id.startswith(HD_PREFIX):
            index, _, source = task_id[len(HD_PREFIX) :].partition("~")
            params = {"taskId": source, "index": int(index) if index.isdigit() else 0}
            return Request("GET", "/api/v1/veo/get-1080p-video", params=params)
        return super().record(task_id)

    def read(self, data: Any, task_id: str) -> TaskInfo:
        if task_id.startswith(HD_PREFIX):  # the 1080p GET: a URL once ready
            found = urls(data.get("resultUrl") if isinstance(data, dict) else None)
            state: KieState = "success" if found else "generating"
            return TaskInfo(task_id, state, found, None, None)
        record = record_of(data, "Veo record-info")
        state = flag_state(record)
        response = record.get("response")
        found = urls(response.get("resultUrls")) if isinstance(response, dict) else ()
        code = text(record.get("errorCode"))
        if len(found) > 100:
            raise MalformedAnswer("Veo record-info lists too many result URLs")
        return TaskInfo(
            task_id=check_task_id(record.get("taskId") or task_id, "Veo record-info"),
            state=state,
            result_urls=found,
            fail_code=code,
            fail_msg=text(record.get("errorMessage")),
            credits=credits(record.get("creditsConsumed")),
            permanent=state == "fail" and code == MODERATED,
        )

    def error(self, exc: KieError, call: Call) -> KieError:
        known = own_endpoint_error(exc, call)
        if known is not None:
            return known
        if call == "create" and exc.code == 422 and "ratio" in exc.message.lower():
            return refused(exc, "Veo 3.1 makes 16:9 and 9:16 videos (or Auto), not 1:1")
        return super().error(exc, call)


FAMILY = Veo()
