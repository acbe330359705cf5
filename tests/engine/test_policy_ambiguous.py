"""The policy's rules for answers that may have made a task, and for requests never sent
(issue 26): data in `policy`, read by the submitter."""

from __future__ import annotations

import pytest

from pipeline.kie import client as kie
from pipeline.kie.answers import error_for
from pipeline.kie.policy import AMBIGUOUS, Action, ambiguous, too_ambiguous, verdict


def test_one_run_meets_at_most_two_ambiguous_create_answers() -> None:
    assert AMBIGUOUS["create"] == 2
    assert not too_ambiguous("create", 1) and too_ambiguous("create", 2)
    assert not too_ambiguous("query", 100)  # a poll has no effect to bound


@pytest.mark.parametrize("code", [500, 501, 502, 503, 504, 599])
def test_a_5xx_body_code_is_ambiguous_on_a_create_only(code: int) -> None:
    on_create = error_for(code, "Internal server error", create=True)
    assert ambiguous(on_create) and verdict(on_create, "create").action is Action.RETRY
    assert not ambiguous(error_for(code, "Internal server error"))


@pytest.mark.parametrize(
    "error",
    [
        kie.RateLimited("429"),
        kie.TransportError("refused", ambiguous=False),
        kie.Rejected("422"),
        error_for(505, "disabled", create=True),
        error_for(500, "This field is required", create=True),
    ],
)
def test_answers_that_made_nothing_are_not_ambiguous(error: kie.KieError) -> None:
    assert not ambiguous(error)


def test_a_request_never_sent_stops_the_run_hard() -> None:
    what = verdict(kie.Unsendable("cannot send"), "create")
    assert what.action is Action.STOP and what.hard and not ambiguous(kie.Unsendable("x"))
