"""Issue 18's hostile server, as simulator faults: gateway errors after the effect, dripped
answers, bad ranges, deep JSON, gzip bombs and redirect loops. Each is off by default."""

from __future__ import annotations

import random
import socket
import zlib
from urllib.parse import urlsplit

import httpx
import pytest

from pipeline.simulator import FaultRates, Simulator
from tests.support.sim import CREATE, CREDIT, MakeSim, body, client, create, wait_end

HOSTILE = ("gateway_error", "slow_drip", "bad_range", "deep_json", "gzip_bomb", "redirect_loop")


def result_url(sim: Simulator) -> str:
    with client(sim) as http:
        data = wait_end(http, create(http))
    url = data["response"]["resultUrls"][0]
    assert isinstance(url, str)
    return url


def test_every_hostile_fault_is_off_by_default() -> None:
    rates = FaultRates().as_dict()
    assert all(rates[kind] == 0.0 for kind in HOSTILE)


def test_a_gateway_error_after_the_create_charges_and_hides_the_task(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"gateway_error": 1.0}, credits=100)
    with client(sim) as http:
        answer = http.post(CREATE, json=body())
        assert answer.status_code in (502, 503, 504)
        assert answer.headers["content-type"] == "text/html"
        assert answer.text.startswith("<html>") and str(answer.status_code) in answer.text
        sim.control(faults={"gateway_error": 0.0})
        assert http.get(CREDIT).json()["data"] == 70  # created and charged
    (task,) = sim.tasks()
    assert task["lost_answer"] is True
    assert sim.stats()["lost_answer_task_ids"] == [task["taskId"]]


def test_a_slow_drip_sends_one_byte_at_a_time(make_sim: MakeSim) -> None:
    # 0.5 s per byte at this time scale: the first read can only return one byte.
    sim = make_sim(faults={"slow_drip": 1.0}, drip_interval=50.0)
    host, port = urlsplit(sim.base_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(b"GET /api/v1/chat/credit HTTP/1.1\r\nHost: x\r\n\r\n")
        first = conn.recv(1024)
    assert first == b"H"  # of "HTTP/1.1 200 OK"
    assert sim.stats()["faults"] == {"slow_drip": 1}


def test_a_dripped_answer_is_complete_and_valid(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"slow_drip": 1.0}, drip_interval=0.01)
    with client(sim) as http:
        answer = http.get(CREDIT)
    assert answer.status_code == 200 and answer.json()["data"] == 100_000


def test_a_bad_range_answers_from_the_wrong_offset(make_sim: MakeSim) -> None:
    sim = make_sim()
    url = result_url(sim)
    full = httpx.get(url).content
    sim.control(faults={"bad_range": 1.0})
    answer = httpx.get(url, headers={"Range": "bytes=100-"})
    assert answer.status_code == 206
    assert answer.headers["content-range"] == f"bytes 0-{len(full) - 1}/{len(full)}"
    assert answer.content == full  # honest about what it sent, not what was asked for
    assert httpx.get(url).status_code == 200  # without a Range there is nothing to get wrong


def test_deep_json_on_a_create(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"deep_json": 1.0})
    with client(sim) as http:
        answer = http.post(CREATE, json=body())
    assert answer.status_code == 200 and answer.content == b"[" * 100_000
    (task,) = sim.tasks()
    assert task["lost_answer"] is True  # the client cannot learn its id


def _inflate(stream: httpx.Response) -> tuple[int, int]:
    """(compressed, inflated) sizes, inflating in bounded steps."""
    inflater = zlib.decompressobj(31)
    compressed = inflated = 0
    for chunk in stream.iter_raw():
        compressed += len(chunk)
        data = inflater.decompress(chunk, 1 << 20)
        while data:
            assert not data.strip(b"\x00")
            inflated += len(data)
            data = inflater.decompress(inflater.unconsumed_tail, 1 << 20)
    assert inflater.eof
    return compressed, inflated


@pytest.mark.parametrize("where", ["api", "file"])
def test_a_gzip_bomb_inflates_hugely(make_sim: MakeSim, where: str) -> None:
    sim = make_sim(gzip_bomb_bytes=32 << 20)
    url = result_url(sim) if where == "file" else sim.base_url + CREDIT
    sim.control(faults={"gzip_bomb": 1.0})
    headers = {"Authorization": "Bearer sim-key"}
    with httpx.stream("GET", url, headers=headers) as answer:
        assert answer.headers["content-encoding"] == "gzip"
        declared = int(answer.headers["content-length"])
        compressed, inflated = _inflate(answer)
    assert compressed == declared < 64 << 10 and inflated == 32 << 20


def test_a_redirect_loop_on_result_urls(make_sim: MakeSim) -> None:
    sim = make_sim()
    url = result_url(sim)
    sim.control(faults={"redirect_loop": 1.0})
    first = httpx.get(url)
    assert first.status_code == 302
    second = httpx.get(sim.base_url + first.headers["location"])
    assert second.status_code == 302 and second.headers["location"].endswith("hop=2")
    with pytest.raises(httpx.TooManyRedirects):
        httpx.get(url, follow_redirects=True)


def test_hostile_faults_leave_the_older_fault_stream_alone(make_sim: MakeSim) -> None:
    """The older faults strike the same requests as before the hostile ones existed: each
    API call still draws four numbers (500, reset, malformed, slow) from the seed's stream."""
    sim = make_sim(seed=9, faults={"http_500": 0.5, "gateway_error": 0.0, "deep_json": 0.0})
    with client(sim) as http:
        seen = [http.get(CREDIT).status_code for _ in range(12)]
    old = random.Random("9:faults")
    expected = []
    for _ in range(12):
        draws = [old.random() for _ in range(4)]
        expected.append(500 if draws[0] < 0.5 else 200)
    assert seen == expected and 500 in seen and 200 in seen
