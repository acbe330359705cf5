"""Receiving Kie's task callbacks during a run (`--callback-listen` / `--callback-url`).

Kie signs only `taskId + "." + timestamp`, not the body, so the body is never trusted: a
valid callback only tells the runner "poll this task now". That makes forged or replayed
bodies harmless, keeps the receiver idempotent, and leaves the state to recordInfo answers.
Delivery is at most "likely", so polling continues as a slow fallback.

The receiver faces the internet, so each connection is bounded: at most `MAX_CONNECTIONS` at
once (more are closed at once), `READ_DEADLINE` seconds in all to send a request (a timer cuts
the socket; a per-read timeout alone lets a drip hold a thread for ever), a body cap checked
on Content-Length before a byte of the body is read, the signature's headers and timestamp
checked before the body is read at all, and silence when a client goes away (no tracebacks
on the runner's stderr).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.kie.answers import MalformedAnswer, check_task_id

MAX_BODY = 256 * 1024  # a callback envelope is a few KB (with the create body in `param`)
TOLERANCE = 300.0  # seconds a signed timestamp stays acceptable
READ_DEADLINE = 10.0  # seconds a client has to send its whole request
MAX_CONNECTIONS = 64


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
    problem = check_headers(timestamp, given, now=now, tolerance=tolerance)
    if problem is None and not hmac.compare_digest(
        signature(key, task_id, str(timestamp)), str(given)
    ):
        return "bad signature"
    return problem


def check_headers(
    timestamp: str | None,
    given: str | None,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE,
) -> str | None:
    """What can be checked of a signed callback before reading its body: the headers are
    there and the timestamp is fresh. None when they are."""
    if not timestamp or not given or len(given) > 200:
        return "missing signature headers"
    try:
        stamp = float(timestamp)
    except ValueError:
        return "bad timestamp"
    if not abs((now if now is not None else time.time()) - stamp) <= tolerance:
        return "stale timestamp"
    return None


def parse_task_id(body: bytes) -> str | None:
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    # Families post their own shapes: `taskId` (createTask, Veo, Flux Kontext, GPT-4o Image)
    # or `task_id` (Runway, Suno). Only the id is taken; the record is read by polling.
    task_id = (data.get("taskId") or data.get("task_id")) if isinstance(data, dict) else None
    try:
        return check_task_id(task_id, "callback")
    except MalformedAnswer:
        return None


class _Server(ThreadingHTTPServer):
    """A threading server with a connection cap, a whole-request deadline and no
    tracebacks for clients that go away."""

    daemon_threads = True
    read_deadline = READ_DEADLINE

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        self.slots = threading.BoundedSemaphore(max_connections)
        self.turned_away = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.turned_away += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        timer = threading.Timer(self.read_deadline, _cut, args=(request,))
        timer.daemon = True
        timer.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            timer.cancel()
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that went away, or was cut at the deadline: nothing to report


def _cut(sock: socket.socket) -> None:
    """End a connection that overran its deadline; its thread's read then returns."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class CallbackReceiver:
    """A small HTTP server on a thread; each accepted callback calls `notify(task_id)`."""

    def __init__(
        self,
        host: str,
        port: int,
        notify: Callable[[str], None],
        hmac_key: str | None = None,
        *,
        read_deadline: float = READ_DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = read_deadline  # per read; the server's timer bounds the whole request

            def do_POST(self) -> None:
                status, message = receiver.handle(self)
                payload = json.dumps({"code": status, "msg": message}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True  # the client went away: fine

            def log_message(self, format: str, *args: object) -> None:
                return  # the run log records what matters; keep stderr for progress

        self.notify = notify
        self.hmac_key = hmac_key
        self.accepted = 0
        self.rejected = 0
        self.server = _Server((host, port), Handler, max_connections)
        self.server.read_deadline = read_deadline
        self.thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="callback-receiver"
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, str]:
        """Check all that can be checked before reading the body, then read at most
        MAX_BODY bytes, then verify the signature, and only then notify."""
        stamp = request.headers.get("X-Webhook-Timestamp")
        given = request.headers.get("X-Webhook-Signature")
        if self.hmac_key and (problem := check_headers(stamp, given)):
            return self._reject(request, 401, problem)
        length = request.headers.get("Content-Length", "")
        if not length.isdigit():
            return self._reject(request, 411, "a JSON body with Content-Length is required")
        if int(length) > MAX_BODY:
            return self._reject(request, 413, f"a callback body is at most {MAX_BODY} bytes")
        try:
            body = request.rfile.read(int(length))
        except OSError:
            return self._reject(request, 408, "the request was not sent in time")
        task_id = parse_task_id(body)
        if task_id is None:
            return self._reject(request, 400, "not a Kie callback")
        if self.hmac_key and (problem := verify(self.hmac_key, task_id, stamp, given)):
            return self._reject(request, 401, problem)
        self.accepted += 1
        self.notify(task_id)
        return 200, "success"

    def _reject(self, request: BaseHTTPRequestHandler, status: int, why: str) -> tuple[int, str]:
        self.rejected += 1
        request.close_connection = True
        return status, why

    def __enter__(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
