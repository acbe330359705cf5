"""What a create's answer means, against a loopback server (issue 26): any 5xx but Kie's
documented refusals may follow a made task (ambiguous); a request that never left the machine
is "not sent"."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.kie import client as kie
from pipeline.kie.policy import Action, verdict
from tests.hostile.test_api_answers import BODY, KEY, against
from tests.support.hostile import Conn, Request, hostile, json_answer

AMBIGUOUS = [
    (502, '{"code":502,"msg":"Bad Gateway"}'),
    (503, '{"code":503,"msg":"Service Unavailable"}'),
    (504, '{"code":504,"msg":"Gateway Timeout"}'),
    (200, '{"code":500,"msg":"Internal server error"}'),
    (200, '{"code":502,"msg":"upstream error"}'),
    (500, '{"code":429,"msg":"busy"}'),  # a status >= 500 whatever the body says
    (503, '{"code":455,"msg":"maintenance"}'),
]


@pytest.mark.parametrize(("status", "body"), AMBIGUOUS)
def test_a_5xx_to_a_create_is_ambiguous(status: int, body: str) -> None:
    with pytest.raises(kie.ServerError) as caught:
        against(json_answer(body, status), "create_task", BODY)
    assert caught.value.ambiguous
    assert verdict(caught.value, "create").action is Action.RETRY


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, '{"code":500,"msg":"This field is required"}', kie.Rejected),
        (200, '{"code":500,"msg":"This interface is temporarily paused"}', kie.ModelUnavailable),
        (
            200,
            '{"code":500,"msg":"The model name you specified is not supported"}',
            kie.ModelUnavailable,
        ),
        (200, '{"code":505,"msg":"disabled"}', kie.ModelDisabled),
    ],
)
def test_kies_documented_refusals_stay_refusals(
    status: int, body: str, error: type[kie.KieError]
) -> None:
    with pytest.raises(error) as caught:
        against(json_answer(body, status), "create_task", BODY)
    assert not getattr(caught.value, "ambiguous", False)


def test_a_5xx_to_a_poll_is_not_ambiguous() -> None:
    with pytest.raises(kie.ServerError) as caught:
        against(json_answer('{"code":504,"msg":"Gateway Timeout"}', 504), "record_info", "t1")
    assert not caught.value.ambiguous


def test_a_request_that_cannot_be_written_is_not_sent() -> None:
    """A header value HTTP cannot carry fails in httpx before a byte is sent."""
    seen: list[Request] = []

    def handler(request: Request, conn: Conn) -> None:
        seen.append(request)

    async def go(url: str) -> None:
        async with kie.KieClient(url, "key-with\nnewline", timeout=5) as client:
            await client.create_task(BODY)

    with hostile(handler) as server, pytest.raises(kie.Unsendable) as caught:
        asyncio.run(go(server.url))
    assert not seen
    what = verdict(caught.value, "create")
    assert what.action is Action.STOP and what.hard
    assert "newline" not in str(caught.value) and KEY not in str(caught.value)
