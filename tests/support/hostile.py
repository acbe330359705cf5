"""Small misbehaving HTTP servers on 127.0.0.1, for the client's and downloader's bounds.

A test gives a `handler(request, conn)` that writes whatever raw bytes it likes: a dripped
answer, a gateway's HTML page, a wrong Content-Range, an endless body. Each server runs on a
thread, answers only on loopback, and is bounded: a dripping handler stops when the server
closes (`conn.stopped`) and never runs longer than `MAX_LIFE` seconds.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

MAX_LIFE = 30.0  # seconds any one connection may be served


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Conn:
    sock: socket.socket
    stop: threading.Event
    started: float = field(default_factory=time.monotonic)

    @property
    def stopped(self) -> bool:
        return self.stop.is_set() or time.monotonic() - self.started > MAX_LIFE

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def drip(self, data: bytes, every: float, step: int = 1) -> None:
        """Send `data` `step` bytes at a time, one step every `every` seconds."""
        for i in range(0, len(data), step):
            if self.stopped or not self.send(data[i : i + step]):
                return
            self.stop.wait(every)

    def hold(self) -> None:
        """Keep the connection open, saying nothing, until the server stops."""
        while not self.stopped:
            self.stop.wait(0.05)


Handler = Callable[[Request, Conn], None]


def response(
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: bool = True,
) -> bytes:
    """Raw bytes of an HTTP/1.1 answer that closes the connection."""
    lines = [f"HTTP/1.1 {status} X"]
    all_headers = {"Connection": "close", **(headers or {})}
    if length and not any(k.lower() == "content-length" for k in all_headers):
        all_headers["Content-Length"] = str(len(body))
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_answer(body: bytes | str, status: int = 200) -> Handler:
    raw = body.encode() if isinstance(body, str) else body

    def handler(request: Request, conn: Conn) -> None:
        conn.send(response(status, raw, {"Content-Type": "application/json"}))

    return handler


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops a burst of concurrent connects, which the client's TCP
    # then retries a second or more later: timing a test cannot control.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that goes away mid-answer is the point of these servers


class HostileServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.stop = threading.Event()
        outer = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(5.0)
                request = _read_request(sock)
                if request is None:
                    return
                outer.requests.append(request)
                outer.handler(request, Conn(sock, outer.stop))

        self._server = _TCPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk or len(data) > 1 << 20:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Request(method, path, headers, rest[:length])
    except (OSError, ValueError):
        return None


@contextmanager
def hostile(handler: Handler) -> Iterator[HostileServer]:
    server = HostileServer(handler).start()
    try:
        yield server
    finally:
        server.close()
