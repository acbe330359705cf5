"""From an HTTP request to what goes on the wire, faults included.

Each call draws its faults from the seeded fault stream in a fixed order, so a replay of the
same requests injects the same faults. Faults that strike "before any effect" (500, reset)
skip the service entirely; the others happen after the service did its work, which is what
makes them dangerous to a client (a created task whose answer never arrives).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipeline.simulator.catalog import is_catalog_call
from pipeline.simulator.files import (
    ACCESS_DENIED,
    NO_SUCH_KEY,
    RangeNotSatisfiable,
    parse_file_path,
    parse_range,
    video_bytes,
)
from pipeline.simulator.service import KieService, Reply

Action = Literal["answer", "reset", "close"]

ERROR_PAGE = (
    b"<html><head><title>500 Internal Server Error</title></head><body>"
    b"<center><h1>500 Internal Server Error</h1></center><hr><center>nginx</center>"
    b"</body></html>"
)
ROUTES = {
    ("POST", "/api/v1/jobs/createTask"): "create",
    ("GET", "/api/v1/jobs/recordInfo"): "query",
    ("POST", "/api/v1/common/download-url"): "download",
    ("GET", "/api/v1/chat/credit"): "credit",
}


@dataclass(frozen=True)
class Outcome:
    """What the HTTP layer must do: answer, or drop the connection (reset: RST; close: FIN)."""

    action: Action = "answer"
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to hold the answer back (the `slow` fault)
    truncate_at: int | None = None  # send only this many body bytes, then close


def _draw(service: KieService, kinds: tuple[str, ...]) -> list[str]:
    """Which of `kinds` strike this request; one draw per kind, always, to stay aligned."""
    rates = service.config.rates.as_dict()
    return [kind for kind in kinds if service.rng.faults.random() < rates[kind]]


def json_outcome(status: int, payload: object) -> Outcome:
    return Outcome(status=status, body=json.dumps(payload, ensure_ascii=False).encode())


def handle_api(
    service: KieService,
    method: str,
    path: str,
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> Outcome:
    kind = ROUTES.get((method, path)) or ("catalog" if is_catalog_call(method, path) else None)
    if kind is None:
        msg = f"No such endpoint: {method} {path}"
        return json_outcome(404, {"code": 404, "msg": msg, "data": None})
    # One lock over the draw, the effect and the bookkeeping: concurrent calls then consume
    # the fault stream in the same order as they change the service state.
    with service.lock:
        return _handle(service, kind, method, path, query, headers, body)


def _handle(
    service: KieService,
    kind: str,
    method: str,
    path: str,
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> Outcome:
    kinds = ("http_500", "reset", "lost_answer", "malformed_json", "slow")
    hits = _draw(service, kinds if kind == "create" else kinds[:2] + kinds[3:])
    pre = next((k for k in hits if k in ("http_500", "reset")), None)
    if pre is not None:
        service.stats.faults[pre] += 1
        status = 500 if pre == "http_500" else None
        service.stats.log_request(service.wall(), method, path, None, status, None, pre)
        if pre == "http_500":
            return Outcome(status=500, body=ERROR_PAGE, content_type="text/html")
        return Outcome(action="reset")
    auth = headers.get("authorization")
    if kind == "create":
        reply = service.create(auth, body)
    elif kind == "query":
        reply = service.record_info(auth, next(iter(query.get("taskId", [])), None))
    elif kind == "download":
        reply = service.download_url(auth, body)
    elif kind == "catalog":
        reply = service.catalog.answer(service, auth, path, query)
    else:
        reply = service.credit(auth)
    return _after(service, method, path, reply, hits)


def _after(service: KieService, method: str, path: str, reply: Reply, hits: list[str]) -> Outcome:
    config = service.config
    status = 429 if reply.code == 429 and config.http_429 else 200
    payload = json.dumps(reply.envelope(), ensure_ascii=False).encode()
    # lost_answer only means something when there is a task whose answer can be lost.
    post = next((k for k in hits if k != "lost_answer" or reply.created is not None), None)
    if post is not None:
        service.stats.faults[post] += 1
    if reply.created is not None and post in ("lost_answer", "malformed_json"):
        # The client cannot learn the task id: from its side the create is ambiguous.
        reply.created.lost_answer = True
        service.stats.lost_answer_task_ids.append(reply.created.task_id)
    answered = post not in ("lost_answer", "malformed_json")
    service.stats.log_request(
        service.wall(),
        method,
        path,
        reply.account,
        None if post == "lost_answer" else status,
        reply.code if answered else None,
        post,
    )
    if post == "lost_answer":
        return Outcome(action="close")
    if post == "malformed_json":
        return Outcome(status=200, body=payload[: len(payload) // 2])
    delay = config.scaled(config.slow_delay) if post == "slow" else 0.0
    return Outcome(status=status, body=payload, delay=delay)


def serve_file(service: KieService, method: str, path: str, range_header: str | None) -> Outcome:
    """A result video, as an S3-like store would serve it (no auth; the URL is the key)."""
    with service.lock:
        now = service.clock()
        parsed = parse_file_path(path)
        grant = service.grants.get(parsed[0]) if parsed else None
        task = service.tasks.get(grant.task_id) if grant else None
        if parsed is None or grant is None or task is None or grant.task_id != parsed[1]:
            return Outcome(status=404, body=NO_SUCH_KEY, content_type="application/xml")
        if task.state(now) != "success":
            return Outcome(status=404, body=NO_SUCH_KEY, content_type="application/xml")
        if now >= grant.expires:
            return Outcome(status=403, body=ACCESS_DENIED, content_type="application/xml")
        data = video_bytes(task.aspect_ratio)
        size = len(data)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=0"}
        try:
            span = parse_range(range_header, size)
        except RangeNotSatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            return Outcome(status=416, content_type="video/mp4", headers=headers)
        status = 200
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
            data = data[span[0] : span[1] + 1]
        truncate_at = None
        if method == "GET":
            # A cut-short transfer still delivers something (half, at least one byte), as a
            # real dropped connection does; a one-byte body cannot be cut short.
            if len(data) > 1 and _draw(service, ("truncated_download",)):
                service.stats.faults["truncated_download"] += 1
                truncate_at = max(1, len(data) // 2)
            service.stats.file_downloads += 1
            service.stats.file_download_bytes += len(data) if truncate_at is None else truncate_at
        return Outcome(
            status=status,
            body=data,
            content_type="video/mp4",
            headers=headers,
            truncate_at=truncate_at,
        )
