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
