"""The client against API servers that misbehave: every call ends, every answer is bounded,
and nothing that may have made a task is reported as "not created"."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from typing import Any

import pytest

from pipeline.kie import client as kie
from tests.support.hostile import Conn, Handler, Request, hostile, json_answer, response

KEY = "hostile-test-key"
BODY = {"model": "kling-2.6/text-to-video", "input": {"prompt": "a lighthouse"}}


def call(base_url: str, method: str, *args: Any, deadline: float = 30.0) -> Any:
    async def go() -> Any:
        async with kie.KieClient(base_url, KEY, timeout=5, deadline=deadline) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(go())


def against(handler: Handler, method: str, *args: Any, deadline: float = 30.0) -> Any:
    with hostile(handler) as server:
        return call(server.url, method, *args, deadline=deadline)


CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("create_task", (BODY,)),
    ("record_info", ("t1",)),
    ("download_url", ("https://files.example/a.mp4",)),
    ("credit", ()),
]


@pytest.mark.parametrize(("method", "args"), CALLS)
def test_a_dripped_answer_ends_at_the_call_deadline(method: str, args: tuple[Any, ...]) -> None:
    """One byte every 0.2 s keeps each read inside the 5 s read timeout for ever; the call's
    overall deadline ends it, as an ambiguous non-answer."""
    envelope = json.dumps({"code": 200, "msg": "success", "data": {"taskId": "x"}}).encode()

    def drip(request: Request, conn: Conn) -> None:
        conn.drip(response(200, envelope, {"Content-Type": "application/json"}), every=0.2)

    with pytest.raises(kie.TransportError) as caught:
        against(drip, method, *args, deadline=1.0)
    assert caught.value.ambiguous is True
    assert "within 1 s" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_gateway_page_to_a_create_is_ambiguous(status: int) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"

    def gateway(request: Request, conn: Conn) -> None:
        conn.send(response(status, page, {"Content-Type": "text/html"}))

    with pytest.raises(kie.TransportError) as caught:
        against(gateway, "create_task", BODY)
    assert caught.value.ambiguous is True
    assert f"HTTP {status}" in caught.value.message and "may have been" in caught.value.message


def test_a_rate_limiter_page_is_not_ambiguous() -> None:
    def limiter(request: Request, conn: Conn) -> None:
        conn.send(response(429, b"<html>Too Many Requests</html>", {"Content-Type": "text/html"}))

    with pytest.raises(kie.RateLimited):
        against(limiter, "create_task", BODY)


def test_a_timeout_after_sending_a_create_is_ambiguous() -> None:
    def silent(request: Request, conn: Conn) -> None:
        conn.hold()

    with pytest.raises(kie.TransportError) as caught:
        against(silent, "create_task", BODY, deadline=1.0)
    assert caught.value.ambiguous is True


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000,
        '{"code": 200, "msg": "ok", "data": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "not json at all",
        '{"code": 200, "msg": "ok", "data": {"taskId": NaN}}',
        '{"msg": "no code"}',
    ],
)
@pytest.mark.parametrize("method", ["create_task", "record_info"])
def test_unparseable_answers_are_malformed_never_a_traceback(raw: str, method: str) -> None:
    args = (BODY,) if method == "create_task" else ("t1",)
    with pytest.raises(kie.MalformedAnswer) as caught:
        against(json_answer(raw), method, *args)
    assert caught.value.ambiguous is True


def test_a_deeply_nested_result_json_string_is_malformed() -> None:
    data = {"taskId": "t1", "state": "success", "resultJson": "[" * 100_000}
    with pytest.raises(kie.MalformedAnswer):
        against(
            json_answer(json.dumps({"code": 200, "msg": "ok", "data": data})), "record_info", "t1"
        )


def test_a_gzip_bomb_is_cut_at_the_answer_cap() -> None:
    """About 100 KB compressed, 100 MB once inflated: reading stops past 1 MiB."""
    bomb = gzip.compress(b'{"code": 200, "data": "' + b"0" * 100_000_000, compresslevel=9)
    assert len(bomb) < 200_000

    def gzipped(request: Request, conn: Conn) -> None:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        conn.send(response(200, bomb, headers))

    with pytest.raises(kie.MalformedAnswer) as caught:
        against(gzipped, "record_info", "t1")
    assert "larger than" in caught.value.message


def test_a_declared_huge_answer_is_refused_before_reading() -> None:
    def huge(request: Request, conn: Conn) -> None:
        conn.send(response(200, b"{", {"Content-Length": str(5 * 1024**3)}))
        conn.hold()

    with pytest.raises(kie.MalformedAnswer) as caught:
        against(huge, "credit")
    assert "too large" in caught.value.message


def test_a_redirect_to_a_create_says_what_happened() -> None:
    def moved(request: Request, conn: Conn) -> None:
        conn.send(response(302, b"", {"Location": "https://elsewhere.example/login"}))

    with pytest.raises(kie.Redirected) as caught:
        against(moved, "create_task", BODY)
    message = caught.value.message
    assert "HTTP 302 redirect to https://elsewhere.example/login" in message
    assert "check --base-url" in message and "disabled" not in message
    assert isinstance(caught.value, kie.PermanentError)


def _envelope(code: int, msg: str, data: Any = None) -> Handler:
    return json_answer(json.dumps({"code": code, "msg": msg, "data": data}))


@pytest.mark.parametrize(
    "task_id", ["x" * 1_000_000, "task\x1b[31mred", "has space", "", 12345, None]
)
def test_an_unusable_task_id_is_malformed(task_id: Any) -> None:
    with pytest.raises(kie.MalformedAnswer):
        against(_envelope(200, "success", {"taskId": task_id}), "create_task", BODY)


def test_a_long_task_id_at_the_limit_is_kept() -> None:
    task_id = "t" * 128
    assert against(_envelope(200, "success", {"taskId": task_id}), "create_task", BODY) == task_id


def test_server_messages_are_stripped_of_escapes_and_truncated() -> None:
    msg = "\x1b[2J\x1b]0;pwned\x07bad \x1b[31minput\x1b[0m\r\n" + "x" * 100_000
    with pytest.raises(kie.Rejected) as caught:
        against(_envelope(422, msg), "create_task", BODY)
    text = str(caught.value)
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text and "pwned" not in text
    assert "bad input" in text and len(text) < 400


@pytest.mark.parametrize(
    ("code", "msg", "error"),
    [
        (433, "Sub-key usage limit exceeded", kie.KeyLimitReached),
        (500, "This interface is temporarily paused", kie.ModelUnavailable),
        (500, "The model name you specified is not supported", kie.ModelUnavailable),
        (500, "input.prompt: This field is required", kie.Rejected),
        (500, "duration is not within the range of allowed options", kie.Rejected),
        (500, "Internal server error", kie.ServerError),
        (505, "This feature is disabled", kie.ModelDisabled),
    ],
)
def test_2026_create_answers(code: int, msg: str, error: type[kie.KieError]) -> None:
    with pytest.raises(error) as caught:
        against(_envelope(code, msg), "create_task", BODY)
    assert type(caught.value) is error
    if code == 433:
        assert "the API key's own limit was reached" in caught.value.message
        assert not isinstance(caught.value, kie.RetryableError)


def test_a_paused_message_on_a_poll_is_still_a_server_error() -> None:
    with pytest.raises(kie.ServerError):
        against(_envelope(500, "This interface is temporarily paused"), "record_info", "t1")


def test_recordinfo_is_null_means_an_unknown_task() -> None:
    with pytest.raises(kie.NotFound):
        against(_envelope(422, "recordInfo is null"), "record_info", "t1")


def test_2026_record_info_shape() -> None:
    urls = [f"https://cdn.example/r/{i}.png" for i in range(4)]
    data = {
        "taskId": "t1",
        "successFlag": 1,
        "response": {"resultUrls": urls},
        "resultJson": json.dumps({"resultUrls": ["https://stale.example/old.png"]}),
        "creditsConsumed": 12.5,
        "failCode": None,
        "failMsg": "",
    }
    info = against(_envelope(200, "success", data), "record_info", "t1")
    assert info.state == "success" and info.finished
    assert info.result_urls == tuple(urls) and info.credits == 12.5


@pytest.mark.parametrize(
    ("flag", "state"), [(0, "generating"), (1, "success"), (2, "fail"), (3, "fail")]
)
def test_success_flag_without_state(flag: int, state: str) -> None:
    info = kie.parse_task_info({"taskId": "t", "successFlag": flag})
    assert info.state == state and info.credits is None


def test_result_json_object_is_the_fallback() -> None:
    info = kie.parse_task_info(
        {"taskId": "t", "state": "success", "resultJson": {"resultUrls": ["https://x/1.mp3"]}}
    )
    assert info.result_urls == ("https://x/1.mp3",)


def test_api_calls_ask_for_uncompressed_answers() -> None:
    seen: list[str] = []

    def record(request: Request, conn: Conn) -> None:
        seen.append(request.headers.get("accept-encoding", ""))
        conn.send(response(200, b'{"code": 200, "msg": "ok", "data": 5}'))

    against(record, "credit")
    assert seen == ["identity"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_answer_is_still_read_when_small(encoding: str) -> None:
    raw = b'{"code": 200, "msg": "ok", "data": 42}'
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)

    def compressed(request: Request, conn: Conn) -> None:
        headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
        conn.send(response(200, body, headers))

    assert against(compressed, "credit") == 42
