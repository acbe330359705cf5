"""Receiving Kie's task callbacks during a run (`--callback-listen` / `--callback-url`).

Kie signs only `taskId + "." + timestamp`, not the body, so the body is never trusted: a
valid callback only tells the runner "poll this task now". That makes forged or replayed
bodies harmless, keeps the receiver idempotent, and leaves the state to recordInfo answers.
Delivery is at most "likely", so polling continues as a slow fallback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024
TOLERANCE = 300.0  # seconds a signed timestamp stays acceptable


def signature(key: str, task_id: str, timestamp: str) -> str:
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(
    key: str,
    task_id: str,
    timestamp: str | None,
    given: str | None,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE,
) -> str | None:
    """None when the signature is good; else why it is not."""
    if not timestamp or not given:
        return "missing signature headers"
    try:
        stamp = float(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs((now if now is not None else time.time()) - stamp) > tolerance:
        return "stale timestamp"
    if not hmac.compare_digest(signature(key, task_id, timestamp), given):
        return "bad signature"
    return None


def parse_task_id(body: bytes) -> str | None:
    try:
        envelope = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    task_id = data.get("taskId") if isinstance(data, dict) else None
    return task_id if isinstance(task_id, str) and task_id else None


class CallbackReceiver:
    """A small HTTP server on a thread; each accepted callback calls `notify(task_id)`."""

    def __init__(
        self, host: str, port: int, notify: Callable[[str], None], hmac_key: str | None = None
    ) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, message = receiver.handle(self)
                payload = json.dumps({"code": status, "msg": message}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return  # the run log records what matters; keep stderr for progress

        self.notify = notify
        self.hmac_key = hmac_key
        self.accepted = 0
        self.rejected = 0
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="callback-receiver"
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, str]:
        length = request.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            self.rejected += 1
            return 400, "a JSON body with Content-Length is required"
        task_id = parse_task_id(request.rfile.read(int(length)))
        if task_id is None:
            self.rejected += 1
            return 400, "not a Kie callback"
        if self.hmac_key:
            problem = verify(
                self.hmac_key,
                task_id,
                request.headers.get("X-Webhook-Timestamp"),
                request.headers.get("X-Webhook-Signature"),
            )
            if problem:
                self.rejected += 1
                return 401, problem
        self.accepted += 1
        self.notify(task_id)
        return 200, "success"

    def __enter__(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
