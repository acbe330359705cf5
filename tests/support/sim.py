"""Helpers for the simulator tests: clients, create calls and patient waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from pipeline.simulator import Simulator

# 100x faster than Kie, and short generations: a task ends within 0.1-0.6 s.
FAST: dict[str, Any] = {
    "time_scale": 0.01,
    "latency_median": 30.0,
    "latency_min": 10.0,
    "latency_max": 60.0,
}
MakeSim = Callable[..., Simulator]  # the make_sim fixture: SimConfig overrides -> Simulator

KEY = "sim-key"
MODEL = "sora-2-text-to-video"
CREATE = "/api/v1/jobs/createTask"
QUERY = "/api/v1/jobs/recordInfo"
DOWNLOAD_URL = "/api/v1/common/download-url"
CREDIT = "/api/v1/chat/credit"
T = TypeVar("T")


def client(sim: Simulator, key: str | None = KEY, timeout: float = 10.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.Client(base_url=sim.base_url, headers=headers, timeout=timeout)


def body(
    prompt: str = "A red kite over green hills", model: str = MODEL, **extra: Any
) -> dict[str, Any]:
    """A createTask body; keyword arguments go into `input`, except callBackUrl."""
    callback = extra.pop("callBackUrl", None)
    out: dict[str, Any] = {"model": model, "input": {"prompt": prompt, **extra}}
    if callback is not None:
        out["callBackUrl"] = callback
    return out


def create(http: httpx.Client, prompt: str = "A red kite over green hills", **extra: Any) -> str:
    """Create a task that must be accepted; its id."""
    answer = http.post(CREATE, json=body(prompt, **extra))
    assert answer.status_code == 200, answer.text
    envelope = answer.json()
    assert envelope["code"] == 200, envelope
    task_id = envelope["data"]["taskId"]
    assert isinstance(task_id, str)
    return task_id


def record(http: httpx.Client, task_id: str) -> dict[str, Any]:
    envelope = http.get(QUERY, params={"taskId": task_id}).json()
    assert envelope["code"] == 200, envelope
    data = envelope["data"]
    assert isinstance(data, dict)
    return data


def wait_for(check: Callable[[], T | None], timeout: float = 15.0, every: float = 0.02) -> T:
    """Poll `check` until it returns something other than None (generous, never a bound)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def wait_end(http: httpx.Client, task_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """The record once the task reached success or fail."""

    def ended() -> dict[str, Any] | None:
        data = record(http, task_id)
        return data if data["state"] in ("success", "fail") else None

    return wait_for(ended, timeout)


def _model(name: str, media: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A model file in the pinned format (MODEL_FORMAT), with a prompt field."""
    return {
        "model": name,
        "title": name,
        "task_types": ["Text to Image" if media == "image" else "Text to Video"],
        "output": {"media": media, "max_results": extra.pop("max_results", 1)},
        "status": extra.pop("status", {"state": "available"}),
        "price": {"prose": "test", "rule": extra.pop("rule", None)},
        "source": {"url": "https://docs.kie.ai/test", "fetched": "2026-11-28", "digest": ""},
        "input": {
            "type": "object",
            "properties": {"prompt": {"type": "string", "minLength": 1}, **properties},
            "required": ["prompt"],
            "additionalProperties": False,
        },
    }


# Test models of every kind, written to a folder given to SimConfig(model_dirs=...), so the
# tests do not depend on which models the bundled catalog holds.
TEST_MODELS: dict[str, dict[str, Any]] = {
    "test/multi-image": _model(
        "test/multi-image",
        "image",
        {
            "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
            "output_format": {"enum": ["png", "jpeg"], "default": "png"},
            "image_urls": {"type": "array", "items": {"type": "string"}},
        },
        max_results={"field": "num_images", "default": 1},
        rule={"per_result": 4, "field": "num_images"},
    ),
    "test/video": _model(
        "test/video",
        "video",
        {
            "duration": {"enum": ["5", "10", "15"], "default": "5"},
            "aspect_ratio": {"enum": ["16:9", "9:16"], "default": "16:9"},
            "image_url": {"type": "string"},
        },
        rule={"per_second": 14, "field": "duration"},
    ),
    "test/table": _model(
        "test/table",
        "video",
        {"resolution": {"enum": ["720p", "1080p"], "default": "720p"}},
        rule={"table": [{"when": {"resolution": "1080p"}, "credits": 110}], "default": 55},
    ),
    "test/song": _model("test/song", "audio", {}, rule={"flat": 12}),
    "test/unpriced": _model("test/unpriced", "image", {}),
    "test/paused": _model(
        "test/paused",
        "video",
        {},
        status={"state": "paused", "since": "2026-06-11", "message": "paused for tests"},
    ),
}


def write_models(folder: Any) -> str:
    """TEST_MODELS as files under `folder` (a Path); the folder, for SimConfig.model_dirs."""
    import json
    from pathlib import Path

    for name, data in TEST_MODELS.items():
        path = Path(folder, f"{name}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data), encoding="utf-8")
    return str(folder)
