"""What each Kie error means for the loop that met it: decided here, once.

The engine's loops (the submitter's creates, the tracker's polls, the uploader's uploads, the
queries that resolve an input) all ask `verdict(exc, call)` and do what it says; none of them
reads the error tree itself. A family of Kie endpoints whose answers differ (Veo's record,
Suno's callbacks) maps them onto the same tree in `pipeline.kie`, so the engine never learns
where a family is different.

    Action       what the loop does                                   errors
    PACE         step the limiter aside, try again, uncounted         429
    WAIT_OUT     wait with the long backoff, uncounted (an outage     455; Kie unreachable
                 when Kie cannot be reached at all)
    RETRY        back off and try again, counted against the tries    5xx, a lost or unreadable
                 (and a create against AMBIGUOUS too)                 answer (maybe carried out)
    FAIL_JOB     this job fails for good: the same input never passes  422, a validation 500
    MODEL_GONE   this job fails and its model gets no more creates     paused or unknown model
    NOT_FOUND    the task is unknown (for now, right after a create)   404, 422 "record is null"
    STOP         the run stops: `stop` says why, `hard` whether the    401, 402, 433, 505, 3xx,
                 tasks in flight are still tracked (soft) or not       a request never sent
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from pipeline.kie.answers import (
    AuthError,
    InsufficientCredits,
    KeyLimitReached,
    KieError,
    Maintenance,
    ModelDisabled,
    ModelUnavailable,
    NotFound,
    RateLimited,
    Redirected,
    Rejected,
    RetryableError,
    TransportError,
    Unsendable,
)
from pipeline.kie.pacing import backoff

Call = Literal["create", "query", "upload"]
T = TypeVar("T")

# How many counted failures (RETRY) each kind of call gets before it gives up for this run.
TRIES: dict[Call, int] = {
    "create": 8,  # per submission; a create that may have made a task stays flagged
    "query": 4,  # one recordInfo or download-url asked for an input
    "upload": 6,  # one file; its jobs fail for this run, the next run tries again
}

# How many ambiguous answers (lost, unreadable, a 5xx after the request may have taken
# effect: each possibly a paid task) one submission may meet in one run. At the last one the
# job is left as it is, its intent standing: the next run resubmits it flagged as a possible
# duplicate, or skips it with `--on-ambiguous skip`. Only creates have effects worth bounding.
AMBIGUOUS: dict[Call, int] = {"create": 2}


def ambiguous(exc: BaseException) -> bool:
    """The call may have taken effect although it did not answer so."""
    return isinstance(exc, RetryableError) and exc.ambiguous


def too_ambiguous(call: Call, answers: int) -> bool:
    """`answers` ambiguous answers are as many as `call` may meet in one run (AMBIGUOUS)."""
    limit = AMBIGUOUS.get(call)
    return limit is not None and answers >= limit


class Action(enum.Enum):
    PACE = "pace"
    WAIT_OUT = "wait_out"
    RETRY = "retry"
    FAIL_JOB = "fail_job"
    MODEL_GONE = "model_gone"
    NOT_FOUND = "not_found"
    STOP = "stop"


@dataclass(frozen=True)
class Verdict:
    action: Action
    stop: str | None = None  # STOP: the reason the run gives
    hard: bool = False  # STOP: also stop tracking (the key is refused, the URL is wrong)
    unreachable: bool = False  # WAIT_OUT: Kie could not be reached (one outage for the run)


def unreachable(exc: BaseException) -> bool:
    """A failure that means the line to Kie is down (nothing was sent)."""
    return isinstance(exc, TransportError) and not exc.ambiguous


def verdict(exc: KieError, call: Call, *, model: str | None = None) -> Verdict:
    """What the loop making `call` does about `exc` (the table at the top)."""
    if isinstance(exc, RateLimited):
        return Verdict(Action.PACE)
    if unreachable(exc):
        return Verdict(Action.WAIT_OUT, unreachable=True)
    if isinstance(exc, Maintenance):
        return Verdict(Action.WAIT_OUT)
    if isinstance(exc, RetryableError):
        return Verdict(Action.RETRY)
    if isinstance(exc, AuthError):
        return Verdict(Action.STOP, f"the API key was refused ({exc.message})", hard=True)
    if isinstance(exc, Redirected | Unsendable):
        return Verdict(Action.STOP, exc.message, hard=True)
    if isinstance(exc, ModelUnavailable):
        return Verdict(Action.MODEL_GONE)
    if isinstance(exc, NotFound) and call != "create":
        return Verdict(Action.NOT_FOUND)
    if isinstance(exc, Rejected | NotFound):
        return Verdict(Action.FAIL_JOB)
    if isinstance(exc, InsufficientCredits):
        return Verdict(Action.STOP, f"out of credits ({exc.message}); tracking what is in flight")
    if isinstance(exc, KeyLimitReached):
        return Verdict(
            Action.STOP,
            f"{exc.message}: the key's own limit, not the account's balance; raise it in "
            "Kie's dashboard or use another key; tracking what is in flight",
        )
    if isinstance(exc, ModelDisabled):
        return Verdict(Action.STOP, f"model {model or '?'} is disabled ({exc.message})")
    if call == "upload":
        return Verdict(Action.FAIL_JOB)
    return Verdict(Action.STOP, f"Kie refused a {call} ({exc.message})")


async def retried(
    attempt: Callable[[], Awaitable[T]],
    call: Call,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    on_retry: Callable[[KieError, int], None] | None = None,
    over: Callable[[], bool] = lambda: False,
) -> T:
    """`attempt()` until it answers, as the policy says: PACE, RETRY and WAIT_OUT back off
    and go round, at most `TRIES[call]` times in all (a 429 storm ends too) or until `over()`;
    anything else is raised at once, as is the last failure. `on_retry(exc, failures)` is
    told before each wait."""
    failures = 0
    while True:
        try:
            return await attempt()
        except KieError as exc:
            if verdict(exc, call).action not in _GO_ROUND:
                raise
            failures += 1
            if failures >= TRIES[call] or over():
                raise
            if on_retry is not None:
                on_retry(exc, failures)
        await asyncio.sleep(backoff(failures, base=base, cap=cap, rng=rng))


_GO_ROUND = (Action.PACE, Action.RETRY, Action.WAIT_OUT)
