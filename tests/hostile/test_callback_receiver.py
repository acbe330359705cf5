"""The callback receiver against clients from the internet: idle, dripping, too many, too
big, forged, or gone before the answer. Each is bounded and quiet."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest

from pipeline.kie.callbacks import MAX_BODY, CallbackReceiver, signature

HMAC_KEY = "whsec-hostile"
WAIT = 20.0  # a generous bound for anything the server must do "soon"


@contextmanager
def receiver(
    *, hmac_key: str | None = None, read_deadline: float = 0.5, max_connections: int = 8
) -> Iterator[tuple[CallbackReceiver, list[str]]]:
    seen: list[str] = []
    with CallbackReceiver(
        "127.0.0.1",
        0,
        seen.append,
        hmac_key,
        read_deadline=read_deadline,
        max_connections=max_connections,
    ) as rx:
        yield rx, seen


def connect(rx: CallbackReceiver) -> socket.socket:
    sock = socket.create_connection(rx.address, timeout=WAIT)
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def post(task_id: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> bytes:
    payload = body if body is not None else _body(task_id)
    lines = ["POST /kie HTTP/1.1", "Host: x", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _body(task_id: str) -> bytes:
    return json.dumps({"code": 200, "data": {"taskId": task_id, "state": "success"}}).encode()


def send(rx: CallbackReceiver, raw: bytes) -> bytes:
    with closing(connect(rx)) as sock:
        sock.sendall(raw)
        return read_all(sock)


def signed(task_id: str, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or str(int(time.time()))
    return {
        "X-Webhook-Timestamp": stamp,
        "X-Webhook-Signature": signature(HMAC_KEY, task_id, stamp),
    }


def test_an_idle_connection_is_cut_at_the_read_deadline() -> None:
    with receiver() as (rx, seen), closing(connect(rx)) as sock:
        assert read_all(sock) == b""  # closed by the server, not by our timeout
    assert seen == []


def test_a_dripped_request_is_cut_at_the_read_deadline() -> None:
    """One header byte every 50 ms satisfies a per-read timeout for ever."""
    raw = post("t1")
    with receiver() as (rx, seen), closing(connect(rx)) as sock:
        cut = False
        for i in range(len(raw)):
            try:
                sock.sendall(raw[i : i + 1])
            except OSError:
                cut = True
                break
            time.sleep(0.05)
        assert cut  # the server closed it long before the request was complete
    assert seen == []


def test_connections_over_the_cap_are_turned_away_and_slots_come_back() -> None:
    with receiver(read_deadline=WAIT, max_connections=3) as (rx, seen):
        idle = [connect(rx) for _ in range(3)]
        try:
            # Accepted in order: the fourth finds every slot taken and is closed at once.
            assert send(rx, post("t1")) == b""
            assert rx.server.turned_away == 1
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + WAIT
        answer = b""
        while time.monotonic() < deadline and not answer:
            answer = send(rx, post("t2"))
        assert answer.split(b"\r\n")[0].endswith(b"200 OK")
    assert seen == ["t2"]


def test_a_body_over_the_cap_is_refused_before_it_is_read() -> None:
    head = (
        "POST /kie HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {MAX_BODY * 1000}\r\nContent-Type: application/json\r\n\r\n"
    )
    with receiver(read_deadline=WAIT) as (rx, seen), closing(connect(rx)) as sock:
        sock.sendall(head.encode())  # and no body: the answer must not wait for it
        answer = read_all(sock)
    assert answer.split(b"\r\n")[0].endswith(b"413 Request Entity Too Large")
    assert seen == []


def test_an_unsigned_callback_is_refused_before_its_body_is_read() -> None:
    head = "POST /kie HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    with receiver(hmac_key=HMAC_KEY, read_deadline=WAIT) as (rx, seen):
        with closing(connect(rx)) as sock:
            sock.sendall(head.encode())
            assert b" 401 " in read_all(sock).split(b"\r\n")[0]
        stale = signed("t1", str(int(time.time()) - 3600))
        assert b" 401 " in send(rx, post("t1", stale))
        forged = {**signed("t2"), "X-Webhook-Signature": signed("other")["X-Webhook-Signature"]}
        assert b" 401 " in send(rx, post("t2", forged))
        assert b" 200 " in send(rx, post("t3", signed("t3")))
    assert seen == ["t3"] and rx.rejected == 3


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b"not json", json.dumps({"data": {"taskId": "x" * 5000}}).encode()],
)
def test_a_poisoned_body_is_a_bad_request(body: bytes) -> None:
    with receiver(read_deadline=WAIT) as (rx, seen):
        assert b" 400 " in send(rx, post("t", body=body)).split(b"\r\n")[0]
    assert seen == []


def test_clients_that_go_away_leave_no_tracebacks(capfd: pytest.CaptureFixture[str]) -> None:
    with receiver() as (rx, seen):

        def rude(n: int) -> None:
            with closing(connect(rx)) as sock:
                raw = post(f"t{n}")
                sock.sendall(raw if n % 2 else raw[: len(raw) - 10])
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )

        threads = [threading.Thread(target=rude, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        # The receiver still answers afterwards.
        assert b" 200 " in send(rx, post("last"))
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Error" not in err
    assert "last" in seen
