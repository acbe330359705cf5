"""The HTTP layer: a threading server on loopback that routes to the API, files and /__sim/.

It only moves bytes and carries out transport faults (reset, dropped answer, delay,
truncation) that `api.py` decided; all books are kept by the service.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipeline.simulator.api import Outcome, handle_api, json_outcome, serve_file, serve_upload
from pipeline.simulator.config import ConfigError
from pipeline.simulator.files import FILES_PREFIX
from pipeline.simulator.service import KieService
from pipeline.simulator.uploads import UPLOAD_ROUTES, UPLOADS_PREFIX

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # API requests are small JSON; refuse anything bigger than 1 MiB


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False  # a `slow` answer must not hold up shutdown

    def __init__(self, address: tuple[str, int], service: KieService) -> None:
        self.service = service
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer are normal here (they are told to expect faults).
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as client connection pools expect
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client's
    # delayed ACK would add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: SimHTTPServer
    server_version = "KieSimulator/1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        if body is None:
            return
        try:
            outcome = self._route(method, body)
        except Exception as exc:
            # A simulator bug: say so loudly rather than pass it off as an injected fault.
            log.exception("simulator error on %s %s", method, self.path)
            msg = f"simulator internal error: {type(exc).__name__}: {exc}"
            outcome = json_outcome(500, {"code": 500, "msg": msg, "data": None})
        self._carry_out(outcome, head=method == "HEAD")

    def _route(self, method: str, body: bytes) -> Outcome:
        service = self.server.service
        url = urlsplit(self.path)
        if url.path.startswith("/api/"):
            headers = {k.lower(): v for k, v in self.headers.items()}
            return handle_api(service, method, url.path, parse_qs(url.query), headers, body)
        if url.path.startswith(FILES_PREFIX) and method in ("GET", "HEAD"):
            return serve_file(service, method, url.path, url.query, self.headers.get("Range"))
        if url.path.startswith(UPLOADS_PREFIX) and method in ("GET", "HEAD"):
            return serve_upload(service, method, url.path, self.headers.get("Range"))
        if url.path.startswith("/__sim/"):
            return self._sim(method, url.path, parse_qs(url.query), body)
        return json_outcome(404, {"code": 404, "msg": "Not found", "data": None})

    def _max_body(self) -> int:
        if urlsplit(self.path).path in UPLOAD_ROUTES:
            # A file, or its base64 (a third larger), with room for the form around it.
            return self.server.service.config.upload_max_bytes * 4 // 3 + (1 << 16)
        return MAX_BODY

    def _read_body(self) -> bytes | None:
        """The request body, or None when the request was refused (answer already sent)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= self._max_body():
            self.close_connection = True
            self._carry_out(json_outcome(413, {"code": 413, "msg": "Request body too large"}))
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > self._max_body():
                self.close_connection = True
                self._carry_out(json_outcome(413, {"code": 413, "msg": "Request body too large"}))
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _sim(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Outcome:
        service = self.server.service
        if method == "GET" and path == "/__sim/stats":
            return json_outcome(200, service.stats_view())
        if method == "GET" and path == "/__sim/tasks":
            return json_outcome(200, service.tasks_view())
        if method == "GET" and path == "/__sim/requests":
            try:
                since = float(query["since"][0]) if "since" in query else None
            except ValueError:
                return json_outcome(400, {"error": "since must be a number (Unix seconds)"})
            return json_outcome(200, service.requests_view(since))
        if method == "GET" and path == "/__sim/uploads":
            return json_outcome(200, service.uploads_view())
        if method == "GET" and path == "/__sim/control":
            return json_outcome(200, service.settings_view())
        if method == "POST" and path == "/__sim/control":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ConfigError("the body must be a JSON object")
                return json_outcome(200, service.control(changes))
            except (ValueError, ConfigError) as exc:
                return json_outcome(400, {"error": str(exc)})
        return json_outcome(404, {"error": f"no such simulator endpoint: {method} {path}"})

    def _carry_out(self, outcome: Outcome, head: bool = False) -> None:
        try:
            if outcome.action == "reset":
                self._drop(reset=True)
                return
            if outcome.action == "close":
                self._drop(reset=False)
                return
            if outcome.delay > 0:
                time.sleep(outcome.delay)
            if outcome.drip > 0:
                self._drip(outcome, head)
                return
            self.send_response(outcome.status)
            self.send_header("Content-Type", outcome.content_type)
            length = outcome.stream[0] if outcome.stream else len(outcome.body)
            self.send_header("Content-Length", str(length))
            for name, value in outcome.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if head:
                return
            if outcome.stream is not None:
                for chunk in outcome.stream[1]:  # never the whole bomb in memory
                    self.wfile.write(chunk)
                return
            if outcome.truncate_at is None:
                self.wfile.write(outcome.body)
                return
            # Full Content-Length promised, part of it sent: the client sees a short body.
            self.wfile.write(outcome.body[: outcome.truncate_at])
            self.wfile.flush()
            self._drop(reset=False)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client is gone; nothing to answer

    def _drip(self, outcome: Outcome, head: bool) -> None:
        """The whole answer, status line included, one byte at a time (the `slow_drip` fault):
        every read a client makes succeeds, so only an overall deadline ends the call."""
        lines = [f"HTTP/1.1 {outcome.status} {self.responses.get(outcome.status, ('',))[0]}"]
        lines += [f"Server: {self.version_string()}", f"Content-Type: {outcome.content_type}"]
        lines.append(f"Content-Length: {len(outcome.body)}")
        lines += [f"{name}: {value}" for name, value in outcome.headers.items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        raw += b"" if head else outcome.body
        service = self.server.service
        for i in range(len(raw)):
            if service.stopped:
                self._drop(reset=False)
                return
            self.wfile.write(raw[i : i + 1])
            self.wfile.flush()
            time.sleep(outcome.drip)

    def _drop(self, reset: bool) -> None:
        """Close the connection without (the rest of) an answer: RST or an orderly FIN."""
        self.close_connection = True
        try:
            if reset:
                # Linger 0: close() sends RST instead of FIN, like a crashed load balancer.
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
        except OSError:
            pass
