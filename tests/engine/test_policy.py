"""The one Kie-error policy: each error of the tree, the action every loop takes."""

from __future__ import annotations

import asyncio
import random

import pytest

from pipeline.kie import client as kie
from pipeline.kie.policy import TRIES, Action, retried, verdict


@pytest.mark.parametrize(
    ("error", "call", "action"),
    [
        (kie.RateLimited("429", 429), "create", Action.PACE),
        (kie.TransportError("refused", ambiguous=False), "create", Action.WAIT_OUT),
        (kie.Maintenance("455", 455), "query", Action.WAIT_OUT),
        (kie.ServerError("500", 500), "create", Action.RETRY),
        (kie.TransportError("reset after sending", ambiguous=True), "create", Action.RETRY),
        (kie.MalformedAnswer("HTML page"), "query", Action.RETRY),
        (kie.Rejected("bad field", 422), "create", Action.FAIL_JOB),
        (kie.NotFound("record is null", 422), "query", Action.NOT_FOUND),
        (kie.NotFound("no such path", 404), "create", Action.FAIL_JOB),
        (kie.ModelUnavailable("paused", 500), "create", Action.MODEL_GONE),
        (kie.AuthError("401", 401), "upload", Action.STOP),
        (kie.InsufficientCredits("402", 402), "create", Action.STOP),
        (kie.KeyLimitReached("433", 433), "create", Action.STOP),
        (kie.ModelDisabled("505", 505), "create", Action.STOP),
        (kie.Redirected("302 to elsewhere", 302), "query", Action.STOP),
    ],
)
def test_each_error_has_one_action(error: kie.KieError, call: str, action: Action) -> None:
    assert verdict(error, call).action is action  # type: ignore[arg-type]


def test_only_a_refused_key_or_a_wrong_url_stops_tracking_too() -> None:
    hard = {
        type(e).__name__: verdict(e, "create").hard
        for e in (
            kie.AuthError("401", 401),
            kie.Redirected("302", 302),
            kie.InsufficientCredits("402", 402),
            kie.KeyLimitReached("433", 433),
        )
    }
    assert hard == {
        "AuthError": True,
        "Redirected": True,
        "InsufficientCredits": False,
        "KeyLimitReached": False,
    }
    assert verdict(kie.AuthError("401", 401), "query").stop == "the API key was refused (401)"


def test_an_unreachable_kie_is_an_outage_not_a_failure() -> None:
    assert verdict(kie.TransportError("refused", ambiguous=False), "create").unreachable
    assert not verdict(kie.TransportError("reset", ambiguous=True), "create").unreachable


def _run(errors: list[kie.KieError], call: str = "query") -> tuple[int, object]:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)
        return "answer"

    async def go() -> object:
        try:
            return await retried(attempt, call, base=0, cap=0, rng=random.Random(0))  # type: ignore[arg-type]
        except kie.KieError as exc:
            return exc

    answer = asyncio.run(go())
    return calls, answer


def test_retried_goes_round_transient_failures_then_answers() -> None:
    calls, answer = _run([kie.ServerError("500", 500), kie.RateLimited("429", 429)])
    assert (calls, answer) == (3, "answer")


def test_retried_gives_up_after_the_tries_of_its_call_even_in_a_429_storm() -> None:
    storm: list[kie.KieError] = [kie.RateLimited("429", 429) for _ in range(100)]
    calls, answer = _run(storm)
    assert calls == TRIES["query"] and isinstance(answer, kie.RateLimited)


def test_retried_raises_a_permanent_error_at_once() -> None:
    calls, answer = _run([kie.Rejected("bad", 422)], call="upload")
    assert calls == 1 and isinstance(answer, kie.Rejected)
