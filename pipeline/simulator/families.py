"""Kie's own-endpoint families as the simulator serves them: routes, request bodies, record
and callback shapes (Veo 3.1, Runway, Flux Kontext, GPT-4o Image, Suno).

A family's task is the same `Task` as a createTask one (same latency, faults, moderation,
refunds and result files); only what goes in and what comes out differ, and both are
translated here: `split_body` turns a family's flat create body into (model, input, callback),
`family_record` and `family_callback` turn a task's createTask-shaped record into the family's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.simulator.replies import Reply
from pipeline.simulator.tasks import MODERATION_FAIL, Task

FLAGGED = "Your prompt was flagged by Website as violating content policies."
FETCH_FAILED = (
    "Failed to fetch the image. Kindly verify any access limits set by you or your service "
    "provider."
)
RECORD_EMPTY = "record is empty"
RATIO_ERROR = "Ratio error: Veo 3.1 supports 16:9, 9:16 and Auto"


@dataclass(frozen=True)
class Op:
    family: str
    kind: str  # "create" | "query" | "download" | "hd"
    model: str | None = None  # the model of an endpoint whose body names none
    default: str | None = None  # the body's `model` when it gives none
    callback_required: bool = False


ROUTES: dict[tuple[str, str], Op] = {
    ("POST", "/api/v1/veo/generate"): Op("veo", "create", default="veo3_fast"),
    ("POST", "/api/v1/veo/extend"): Op("veo", "create", "veo/extend"),
    ("POST", "/api/v1/veo/get-4k-video"): Op("veo", "create", "veo/get-4k-video"),
    ("GET", "/api/v1/veo/get-1080p-video"): Op("veo", "hd", "veo/get-1080p-video"),
    ("GET", "/api/v1/veo/record-info"): Op("veo", "query"),
    ("POST", "/api/v1/runway/generate"): Op("runway", "create", "runway", None, True),
    ("POST", "/api/v1/runway/extend"): Op("runway", "create", "runway/extend", None, True),
    ("GET", "/api/v1/runway/record-detail"): Op("runway", "query"),
    ("POST", "/api/v1/flux/kontext/generate"): Op(
        "flux-kontext", "create", default="flux-kontext-pro"
    ),
    ("GET", "/api/v1/flux/kontext/record-info"): Op("flux-kontext", "query"),
    ("POST", "/api/v1/gpt4o-image/generate"): Op("gpt4o-image", "create", "gpt4o-image"),
    ("GET", "/api/v1/gpt4o-image/record-info"): Op("gpt4o-image", "query"),
    ("POST", "/api/v1/gpt4o-image/download-url"): Op("gpt4o-image", "download"),
    ("POST", "/api/v1/generate"): Op("suno", "create", callback_required=True),
    ("GET", "/api/v1/generate/record-info"): Op("suno", "query"),
}
# Follow-ups whose `taskId` must name a finished task of the same family.
FOLLOW_UPS = ("veo/extend", "veo/get-4k-video", "veo/get-1080p-video", "runway/extend")


def split_body(op: Op, body: Mapping[str, Any]) -> tuple[str, dict[str, Any], Any] | Reply:
    """(model, input, callBackUrl) of a family's create body, or Kie's refusal."""
    fields = dict(body)
    callback = fields.pop("callBackUrl", None)
    named = fields.pop("model", None)  # veo/extend's `model` is a quality, not a model
    model = op.model or named or op.default
    if not isinstance(model, str) or not model:
        return Reply(422, "model is required")
    if op.callback_required and not callback:
        return Reply(422, "callBackUrl is required")
    if op.family == "veo" and fields.get("aspect_ratio") == "1:1":
        return Reply(422, RATIO_ERROR)
    return model, fields, callback


def family_record(task: Task, data: dict[str, Any]) -> dict[str, Any]:
    """The family's record of `task`, from its createTask-shaped record `data`."""
    family = task.family
    if family == "createTask":
        return data
    state = data["state"]
    response = data.get("response") or {}
    urls = list(response.get("resultUrls") or [])
    failed = state == "fail"
    moderated = task.plan.fail == MODERATION_FAIL
    code = (400 if moderated else 500) if failed else None
    message = (FLAGGED if moderated else str(data.get("failMsg"))) if failed else ""
    param = json.dumps({"model": task.model, **(task.body.get("input") or {})})
    common = {"taskId": task.task_id, "createTime": data["createTime"]}
    if family == "runway":
        words = {"waiting": "wait", "queuing": "queueing"}
        info = {"videoId": task.task_id, "taskId": task.task_id}
        if urls:
            info.update(videoUrl=urls[0], imageUrl=urls[0].rsplit(".", 1)[0] + ".jpg")
        return {
            **common,
            "parentTaskId": "",
            "generateParam": task.body.get("input"),
            "state": words.get(state, state),
            "generateTime": data.get("completeTime"),
            "videoInfo": info if urls else None,
            "failCode": code,
            "failMsg": message,
            "expireFlag": 0,
        }
    if family == "suno":
        status = (
            "SUCCESS"
            if state == "success"
            else "PENDING"
            if state != "generating"
            else ("TEXT_SUCCESS")
        )
        if failed:
            status = "SENSITIVE_WORD_ERROR" if moderated else "GENERATE_AUDIO_FAILED"
        tracks = [
            {"id": f"{task.task_id}-{i}", "audioUrl": u, "streamAudioUrl": u, "title": "",
             "tags": "", "duration": 30.0}
            for i, u in enumerate(urls, 1)
        ]  # fmt: skip
        return {
            **common,
            "parentMusicId": "",
            "param": param,
            "response": {"taskId": task.task_id, "sunoData": tracks} if urls else None,
            "status": status,
            "type": "chirp-v4",
            "operationType": "generate",
            "errorCode": code,
            "errorMessage": message or None,
        }
    flag = {"success": 1, "fail": 2 if family == "gpt4o-image" else 3}.get(state, 0)
    out: dict[str, Any] = {
        **common,
        "paramJson": param,
        "completeTime": data.get("completeTime"),
        "successFlag": flag,
        "errorCode": code,
        "errorMessage": message,
    }
    if family == "flux-kontext":
        out["response"] = {"originImageUrl": None, "resultImageUrl": urls[0]} if urls else None
    elif family == "gpt4o-image":
        out["response"] = {"resultUrls": urls} if urls else None
        out["status"] = {0: "GENERATING", 1: "SUCCESS", 2: "GENERATE_FAILED"}[flag]
        out["progress"] = "1.00" if flag else "0.50"
    else:  # veo
        out["response"] = (
            {"taskId": task.task_id, "resultUrls": urls, "originUrls": [], "resolution": "720p"}
            if urls
            else None
        )
        out["fallbackFlag"] = False
    if "creditsConsumed" in data and family != "veo":
        out["creditsConsumed"] = data["creditsConsumed"]
    return out


def family_callback(task: Task, data: dict[str, Any], code: int, msg: str) -> dict[str, Any]:
    """The callback body Kie posts for a finished task of the family."""
    if task.family == "createTask":
        return {"code": code, "msg": msg, "data": data}
    shaped = family_record(task, data)
    if task.family == "runway":
        info = shaped.get("videoInfo") or {}
        body = {
            "task_id": task.task_id,
            "video_id": task.task_id,
            "video_url": info.get("videoUrl", ""),
            "image_url": info.get("imageUrl", ""),
        }
    elif task.family == "suno":
        tracks = (shaped.get("response") or {}).get("sunoData") or []
        body = {"callbackType": "complete", "task_id": task.task_id, "data": tracks}
    else:
        body = {"taskId": task.task_id, "info": shaped.get("response")}
    return {"code": code, "msg": msg, "data": body}
