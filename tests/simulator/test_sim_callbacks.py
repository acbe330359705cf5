"""Callbacks: the final envelope POSTed to callBackUrl, HMAC-signed, retried on failure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.sim import MakeSim, client, create, wait_end, wait_for

HMAC_KEY = "webhook-secret"


@dataclass
class Receiver:
    """A tiny callback endpoint: records every POST, fails the first `fail_first` of them."""

    url: str = ""
    fail_first: int = 0
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], payload: bytes) -> int:
        with self.lock:
            self.posts.append((headers, payload))
            return 500 if len(self.posts) <= self.fail_first else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.answer({k.lower(): v for k, v in self.headers.items()}, payload)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/kie/callback"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def valid_signature(headers: dict[str, str], task_id: str) -> bool:
    timestamp = headers["x-webhook-timestamp"]
    expected = hmac.new(HMAC_KEY.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256)
    given = base64.b64decode(headers["x-webhook-signature"])
    return hmac.compare_digest(expected.digest(), given)


def test_a_signed_callback_carries_the_final_query_envelope(
    make_sim: MakeSim, receiver: Receiver
) -> None:
    sim = make_sim(webhook_hmac_key=HMAC_KEY)
    with client(sim) as http:
        task_id = create(http, callBackUrl=receiver.url)
        final = wait_end(http, task_id)
    wait_for(lambda: receiver.posts or None)
    ((headers, payload),) = receiver.posts
    assert valid_signature(headers, task_id)
    assert headers["x-webhook-timestamp"].isdigit()
    envelope = json.loads(payload)
    assert envelope["code"] == 200 and envelope["msg"] == "success"
    assert envelope["data"] == final  # the same record a query answers
    assert wait_for(lambda: sim.stats()["callbacks"]["delivered"] or None) == 1


def test_a_failed_task_calls_back_with_code_501(make_sim: MakeSim, receiver: Receiver) -> None:
    sim = make_sim(faults={"generation_failure": 1.0})
    with client(sim) as http:
        task_id = create(http, callBackUrl=receiver.url)
    wait_for(lambda: receiver.posts or None)
    headers, payload = receiver.posts[0]
    envelope = json.loads(payload)
    assert envelope["code"] == 501
    assert envelope["data"]["state"] == "fail" and envelope["data"]["taskId"] == task_id
    assert "x-webhook-signature" not in headers  # no key configured, no signing


def test_failed_deliveries_are_retried_with_fresh_signatures(
    make_sim: MakeSim, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    sim = make_sim(webhook_hmac_key=HMAC_KEY, callback_attempts=3, callback_backoff=2.0)
    with client(sim) as http:
        task_id = create(http, callBackUrl=receiver.url)
    wait_for(lambda: sim.stats()["callbacks"]["delivered"] or None)
    assert len(receiver.posts) == 3
    assert all(valid_signature(headers, task_id) for headers, _ in receiver.posts)
    assert len({payload for _, payload in receiver.posts}) == 1  # the same body each time
    assert sim.stats()["callbacks"] == {"delivered": 1, "failed_attempts": 2, "gave_up": 0}


def test_delivery_gives_up_after_the_configured_attempts(
    make_sim: MakeSim, receiver: Receiver
) -> None:
    receiver.fail_first = 100
    sim = make_sim(callback_attempts=2, callback_backoff=1.0)
    with client(sim) as http:
        create(http, callBackUrl=receiver.url)
    wait_for(lambda: sim.stats()["callbacks"]["gave_up"] or None)
    assert len(receiver.posts) == 2
    assert sim.stats()["callbacks"] == {"delivered": 0, "failed_attempts": 2, "gave_up": 1}


def test_an_unreachable_receiver_counts_as_failed_attempts(make_sim: MakeSim) -> None:
    sim = make_sim(callback_attempts=2, callback_backoff=1.0, callback_timeout=1.0)
    with client(sim) as http:
        create(http, callBackUrl="http://127.0.0.1:9/nothing-listens-here")
    wait_for(lambda: sim.stats()["callbacks"]["gave_up"] or None)
    assert sim.stats()["callbacks"]["failed_attempts"] == 2
