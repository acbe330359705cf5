"""From an HTTP request to what goes on the wire, faults included.

Each call draws its faults from the seeded fault stream in a fixed order, so a replay of the
same requests injects the same faults. Faults that strike "before any effect" (500, reset)
skip the service entirely; the others happen after the service did its work, which is what
makes them dangerous to a client (a created task whose answer never arrives).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipeline.simulator.catalog import is_catalog_call
from pipeline.simulator.families import ROUTES as FAMILY_ROUTES
from pipeline.simulator.families import Op
from pipeline.simulator.files import (
    ACCESS_DENIED,
    NO_SUCH_KEY,
    RangeNotSatisfiable,
    parse_file_path,
    parse_range,
)
from pipeline.simulator.hostile import (
    DEEP_JSON,
    GATEWAY_STATUSES,
    INTERNAL_ERROR,
    gateway_json,
    gateway_page,
    gzip_bomb,
)
from pipeline.simulator.hosting import handle_upload
from pipeline.simulator.replies import Reply
from pipeline.simulator.results import CONTENT_TYPES, result_bytes
from pipeline.simulator.service import KieService
from pipeline.simulator.uploads import UPLOAD_ROUTES, mime_for
from pipeline.simulator.wrong import foreign_record

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
    drip: float = 0.0  # send the whole answer one byte per `drip` seconds
    # A streamed body (the gzip bomb): (Content-Length, chunks) instead of `body`.
    stream: tuple[int, Iterator[bytes]] | None = None


def _draw(
    service: KieService, kinds: tuple[str, ...], hostile: bool = False, answers: bool = False
) -> list[str]:
    """Which of `kinds` strike this request; one draw per kind, always, to stay aligned.

    The hostile kinds, and the wrong answers, draw from streams of their own, so they leave
    older replays unchanged.
    """
    rates = service.config.rates.as_dict()
    stream = service.rng.hostile if hostile else service.rng.faults
    stream = service.rng.answers if answers else stream
    return [kind for kind in kinds if stream.random() < rates[kind]]


API_HOSTILE = ("gateway_error", "slow_drip", "deep_json", "gzip_bomb")
API_WRONG = ("gateway_json", "error_500_body", "foreign_record")
FILE_HOSTILE = ("slow_drip", "bad_range", "gzip_bomb", "redirect_loop")


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
    op = FAMILY_ROUTES.get((method, path))
    kind = ROUTES.get((method, path)) or (op.kind if op else None)
    kind = kind or ("catalog" if is_catalog_call(method, path) else None)
    if kind is None and method == "POST" and path in UPLOAD_ROUTES:
        kind = "upload:" + UPLOAD_ROUTES[path]
    if kind is None:
        msg = f"No such endpoint: {method} {path}"
        return json_outcome(404, {"code": 404, "msg": msg, "data": None})
    # One lock over the draw, the effect and the bookkeeping: concurrent calls then consume
    # the fault stream in the same order as they change the service state.
    with service.lock:
        return _handle(service, kind, method, path, query, headers, body, op)


def _handle(
    service: KieService,
    kind: str,
    method: str,
    path: str,
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
    op: Op | None = None,
) -> Outcome:
    kinds = ("http_500", "reset", "lost_answer", "malformed_json", "slow")
    effectful = kind == "create" or kind.startswith("upload:")
    hits = _draw(service, kinds if effectful else kinds[:2] + kinds[3:])
    hits += _draw(service, API_HOSTILE, hostile=True)
    hits += _draw(service, API_WRONG, answers=True)
    if kind != "query" and "foreign_record" in hits:
        hits.remove("foreign_record")  # only a record can be another task's
    pre = next((k for k in hits if k in ("http_500", "reset")), None)
    if pre is not None:
        service.stats.faults[pre] += 1
        status = 500 if pre == "http_500" else None
        service.stats.log_request(service.wall(), method, path, None, status, None, pre)
        if pre == "http_500":
            return Outcome(status=500, body=ERROR_PAGE, content_type="text/html")
        return Outcome(action="reset")
    auth = headers.get("authorization")
    task_id = next(iter(query.get("taskId", [])), None)
    if kind == "create":
        reply = service.create(auth, body, op)
    elif kind == "query":
        reply = service.record_info(auth, task_id, op.family if op else "createTask")
        if "foreign_record" in hits:
            reply = foreign_record(service, reply)
    elif kind == "hd":
        reply = service.hd_video(auth, query)
    elif kind == "download":
        reply = service.download_url(auth, body)
    elif kind == "catalog":
        reply = service.catalog.answer(service, auth, path, query)
    elif kind == "credit":
        reply = service.credit(auth)
    else:
        # The upload may fetch a URL (from this very server): not under the service lock.
        service.lock.release()
        try:
            reply = handle_upload(service, kind.split(":")[1], headers, body)
        finally:
            service.lock.acquire()
    sent = _logged_body(body) if kind == "create" else None
    return _after(service, method, path, reply, hits, upload=kind.startswith("upload:"), sent=sent)


def _logged_body(body: bytes) -> object:
    """A create's body as the request log keeps it (for tests and the closing note)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace")


LOST = (
    "lost_answer",
    "malformed_json",
    "gateway_error",
    "deep_json",
    "gzip_bomb",
    "gateway_json",
    "error_500_body",
)


def _after(
    service: KieService,
    method: str,
    path: str,
    reply: Reply,
    hits: list[str],
    upload: bool = False,
    sent: object = None,
) -> Outcome:
    config = service.config
    status = 429 if reply.code == 429 and config.http_429 else 200
    envelope = reply.envelope()
    if upload:  # the file host's answers carry a `success` flag too
        envelope = {"success": reply.code == 200, **envelope}
    payload = json.dumps(envelope, ensure_ascii=False).encode()
    # lost_answer only means something when a task was made or a file stored.
    effect = reply.created is not None or (upload and reply.code == 200)
    post = next((k for k in hits if k != "lost_answer" or effect), None)
    if post is not None:
        service.stats.faults[post] += 1
    if reply.created is not None and post in LOST:
        # The client cannot learn the task id: from its side the create is ambiguous.
        reply.created.lost_answer = True
        service.stats.lost_answer_task_ids.append(reply.created.task_id)
        service.save_task(reply.created)
    answered = post not in LOST
    service.stats.log_request(
        service.wall(),
        method,
        path,
        reply.account,
        None if post == "lost_answer" else status,
        reply.code if answered else None,
        post,
        sent,
    )
    if post == "lost_answer":
        return Outcome(action="close")
    if post == "malformed_json":
        return Outcome(status=200, body=payload[: len(payload) // 2])
    hostile = _hostile(service, post)
    if hostile is not None:
        return hostile
    delay = config.scaled(config.slow_delay) if post == "slow" else 0.0
    drip = config.scaled(config.drip_interval) if post == "slow_drip" else 0.0
    return Outcome(status=status, body=payload, delay=delay, drip=drip)


def _hostile(service: KieService, post: str | None) -> Outcome | None:
    """The answer of a hostile fault that replaces the envelope, if `post` is one."""
    if post == "gateway_error":
        status = GATEWAY_STATUSES[service.rng.hostile.randrange(len(GATEWAY_STATUSES))]
        return Outcome(status=status, body=gateway_page(status), content_type="text/html")
    if post == "gateway_json":
        status = GATEWAY_STATUSES[service.rng.answers.randrange(len(GATEWAY_STATUSES))]
        return Outcome(status=status, body=gateway_json(status))
    if post == "error_500_body":
        return Outcome(status=200, body=INTERNAL_ERROR)
    if post == "deep_json":
        return Outcome(status=200, body=DEEP_JSON)
    if post == "gzip_bomb":
        stream = gzip_bomb(service.config.gzip_bomb_bytes)
        return Outcome(status=200, headers={"Content-Encoding": "gzip"}, stream=stream)
    return None


def serve_file(
    service: KieService, method: str, path: str, query: str, range_header: str | None
) -> Outcome:
    """A result file, as an S3-like store would serve it (no auth; the URL is the key)."""
    with service.lock:
        now = service.clock()
        parsed = parse_file_path(path)
        grant = service.grants.get(parsed.token) if parsed else None
        task = service.tasks.get(grant.task_id) if grant else None
        if parsed is None or grant is None or task is None or grant.task_id != parsed.task_id:
            return Outcome(status=404, body=NO_SUCH_KEY, content_type="application/xml")
        if task.state(now) != "success" or parsed.index >= task.results or parsed.ext != task.ext:
            return Outcome(status=404, body=NO_SUCH_KEY, content_type="application/xml")
        if now >= grant.expires:
            return Outcome(status=403, body=ACCESS_DENIED, content_type="application/xml")
        hostile = _draw(service, FILE_HOSTILE, hostile=True) if method == "GET" else []
        post = hostile[0] if hostile else None
        if post == "bad_range" and not (range_header or "").strip().startswith("bytes="):
            post = None  # nothing was asked for at an offset: nothing to get wrong
        if post is not None:
            service.stats.faults[post] += 1
        if post == "redirect_loop":
            hop = int(query.rpartition("hop=")[2] or 0) if "hop=" in query else 0
            headers = {"Location": f"{path}?hop={hop + 1}"}
            return Outcome(status=302, content_type="text/plain", headers=headers)
        content_type = CONTENT_TYPES[task.ext]
        if post == "gzip_bomb":
            stream = gzip_bomb(service.config.gzip_bomb_bytes)
            headers = {"Content-Encoding": "gzip"}
            return Outcome(content_type=content_type, headers=headers, stream=stream)
        data = result_bytes(task.ext, f"{task.task_id}-{parsed.index}", task.aspect_ratio)
        return _ranged(service, method, data, content_type, range_header, post)


def _ranged(
    service: KieService,
    method: str,
    data: bytes,
    content_type: str,
    range_header: str | None,
    post: str | None,
) -> Outcome:
    size = len(data)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=0"}
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return Outcome(status=416, content_type=content_type, headers=headers)
    status = 200
    if span is not None and post == "bad_range" and span[0] > 0:
        span = (0, size - 1)  # honest about what it sends, but not what was asked for
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
    drip = service.config.scaled(service.config.drip_interval) if post == "slow_drip" else 0.0
    return Outcome(
        status=status,
        body=data,
        content_type=content_type,
        headers=headers,
        truncate_at=truncate_at,
        drip=drip,
    )


def serve_upload(service: KieService, method: str, path: str, range_header: str | None) -> Outcome:
    """An uploaded file, typed by its name; 404 once its retention is over."""
    with service.lock:
        name = service.uploads.path_of(service.base_url + path, service.base_url)
        upload = service.uploads.live(name, service.wall()) if name else None
        if upload is None:
            return Outcome(status=404, body=NO_SUCH_KEY, content_type="application/xml")
        if method == "GET":
            service.stats.upload_downloads += 1
        size = len(upload.data)
        headers = {"Accept-Ranges": "bytes"}
        try:
            span = parse_range(range_header, size)
        except RangeNotSatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            return Outcome(status=416, content_type=mime_for(upload.name), headers=headers)
        data, status = upload.data, 200
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
            data = data[span[0] : span[1] + 1]
        return Outcome(
            status=status, body=data, content_type=mime_for(upload.name), headers=headers
        )
