"""Reading Kie's answers: the error tree, the envelope, recordInfo, and what we keep of them.

Everything a server sends is untrusted and bounded here: a body that is not JSON (or nests
deeper than Python can parse) is a `MalformedAnswer`, never a traceback; a task id longer than
128 characters or with unprintable ones is malformed; server messages are stripped of control
and terminal escape characters and truncated before they reach a log, a ledger or stderr.

The tree (`pipeline.kie.client` re-exports every name, which is where callers import them from):

    KieError
    ├── RetryableError               try again later; `ambiguous`: it may have taken effect
    │   ├── RateLimited              429
    │   ├── Maintenance              455
    │   ├── ServerError              5xx in Kie's envelope (ambiguous on a create)
    │   └── TransportError           no usable answer (refused, reset, timed out, no envelope)
    │       └── MalformedAnswer      an answer we cannot read (always ambiguous)
    └── PermanentError               trying again unchanged will not help
        ├── AuthError                401
        ├── InsufficientCredits      402
        ├── KeyLimitReached          433: the key's own limit (stop submitting, like 402)
        ├── NotFound                 404, or 422 "recordInfo is null"
        ├── Rejected                 422, or a 500 whose message is a validation message
        ├── ModelDisabled            505
        │   └── ModelUnavailable     paused or unknown model (a 500 saying so)
        ├── Redirected               a 3xx from the API: the base URL is wrong
        └── Unsendable               the request never left this machine (not sent)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pipeline.status import KIE_STATES, KieState

MAX_MESSAGE = 300  # characters kept of any server message
MAX_TASK_ID = 128
MAX_RESULTS = 100  # result URLs kept of one task
MAX_URL = 8192
MAX_RESULT_JSON = 16_000  # characters kept of a result that is not a list of URLs
# recordInfo answered with these body codes: the task itself ended without a result (Kie's
# words), not a failed query. 501: generation failed; 408: no result for over 10 minutes.
TASK_ENDED_CODES = {501: "generation failed", 408: "no result for over 10 minutes"}


class KieError(Exception):
    """An answer or failure from Kie. `code` is Kie's code (or the HTTP status) when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RetryableError(KieError):
    """Worth trying again later. `ambiguous`: the request may have taken effect anyway."""

    ambiguous = False


class RateLimited(RetryableError):
    pass


class Maintenance(RetryableError):
    pass


class ServerError(RetryableError):
    """A 5xx. On a createTask it is ambiguous: a gateway answers 502/503/504, or Kie its
    `{"code": 500, "msg": "Internal server error"}`, after the task may have been made."""

    def __init__(self, message: str, code: int | None = None, *, ambiguous: bool = False) -> None:
        super().__init__(message, code)
        self.ambiguous = ambiguous


class TransportError(RetryableError):
    """No usable answer: connection refused or reset, a deadline passed, or a body that is
    not Kie's envelope (a gateway page): a create answered so may have made a task."""

    def __init__(self, message: str, *, ambiguous: bool) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class MalformedAnswer(TransportError):
    """An answer that cannot be read: not JSON, too deep, too large, or holding values out of
    bounds. The request reached a server, so it is always ambiguous."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ambiguous=True)


class PermanentError(KieError):
    """Trying again unchanged will not help."""


class AuthError(PermanentError):
    pass


class InsufficientCredits(PermanentError):
    pass


class KeyLimitReached(PermanentError):
    """433: this API key's own hourly, daily or total cap. Stop submitting, like 402."""


class NotFound(PermanentError):
    pass


class Rejected(PermanentError):
    """The request failed validation or moderation: this job fails, the batch goes on."""


class ModelDisabled(PermanentError):
    pass


class ModelUnavailable(ModelDisabled):
    """The model is paused or unknown to Kie: no more creates for it in this run."""


class Redirected(PermanentError):
    """The API answered with a redirect: almost always a wrong `--base-url`."""


class Unsendable(PermanentError):
    """The request could not be put on the wire (an API key or header an HTTP request cannot
    carry): nothing left this machine, so nothing can have been created, and trying again
    unchanged fails the same way."""


_BY_CODE: dict[int, type[KieError]] = {
    401: AuthError,
    402: InsufficientCredits,
    404: NotFound,
    422: Rejected,
    429: RateLimited,
    433: KeyLimitReached,
    455: Maintenance,
    500: ServerError,
    505: ModelDisabled,
}

_UNAVAILABLE = re.compile(r"temporarily paused|not supported|model .*(?:does not exist|unknown)")
_VALIDATION = re.compile(
    r"is required|not within the range|allowed options|must be (?:a|an|one|at|less|greater|"
    r"between|in)\b|invalid (?:value|param|input|format|type)|not a valid|too long|exceeds",
    re.IGNORECASE,
)
# CSI/OSC escape sequences first (so their printable tails go too), then any control char.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def clean_text(value: object, limit: int = MAX_MESSAGE) -> str:
    """A server-supplied string made safe to print: no escapes or control characters,
    whitespace runs collapsed, at most `limit` characters."""
    text = _CONTROL.sub(" ", _ESCAPES.sub("", str(value)))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_for(code: int, message: str, *, create: bool = False) -> KieError:
    """The error for Kie's `code`. On createTask, a 500 (or 422) that names a paused or
    unknown model, or a validation failure, is permanent: retrying would only pay again.
    Any other 5xx but 505 on a createTask is ambiguous: the task may have been made."""
    message = clean_text(message) or "no message"
    cls = _BY_CODE.get(code)
    if create and code in (422, 500):
        if _UNAVAILABLE.search(message.lower()):
            cls = ModelUnavailable
        elif _VALIDATION.search(message):
            cls = Rejected
    if cls is KeyLimitReached:
        message = f"the API key's own limit was reached ({message})"
    if cls is None:
        cls = ServerError if code >= 500 else PermanentError
    if cls is ServerError:
        return ServerError(f"Kie answered {code}: {message}", code, ambiguous=create)
    return cls(f"Kie answered {code}: {message}", code)


def gateway_error(status: int, error: KieError) -> KieError:
    """A createTask answered with HTTP `status` >= 500 and an envelope read as `error`: a
    gateway's own JSON (`{"code": 504, "msg": "Gateway Timeout"}`) as much as Kie's. Unless
    it is one of Kie's documented refusals (validation, a paused, unknown or disabled model),
    the task may have been made behind the gateway: ambiguous."""
    if isinstance(error, Rejected | ModelDisabled):
        return error
    return ServerError(
        f"HTTP {status}, {error.message}; the task may have been made", status, ambiguous=True
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes | str, what: str) -> Any:
    """JSON from a server, or MalformedAnswer: bad encoding, bad syntax, NaN, or nesting too
    deep for the parser (100,000 `[` raise RecursionError inside json)."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise MalformedAnswer(f"{what} is not valid JSON ({type(exc).__name__})") from None


def check_task_id(value: Any, what: str) -> str:
    """A task id we are willing to store in five files: 1..128 visible ASCII characters."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_TASK_ID
        or not all("!" <= ch <= "~" for ch in value)
    ):
        raise MalformedAnswer(f"{what} without a usable taskId")
    return value


@dataclass(frozen=True)
class TaskInfo:
    """The parts of a recordInfo answer the runner needs.

    `result_urls` are all of the task's results in Kie's order; `credits` is Kie's
    `creditsConsumed` (None when not reported). `result_json` is a success's result that is
    not a list of files (a detection's or lyrics' `resultObject`, or a shape we do not know),
    as compact JSON cut to MAX_RESULT_JSON characters: kept, so a paid success is never
    bought again for want of a URL.
    `permanent`: the family's record says the failure is a refusal of the content (Veo's
    `errorCode` 400), not worth another try."""

    task_id: str
    state: KieState
    result_urls: tuple[str, ...]
    fail_code: str | None
    fail_msg: str | None
    credits: float | None = None
    result_json: str | None = None
    permanent: bool = False

    @property
    def finished(self) -> bool:
        return self.state in {"success", "fail"}


_FLAGS: dict[int, KieState] = {0: "generating", 1: "success", 2: "fail", 3: "fail"}


def flag_state(record: Mapping[str, Any]) -> KieState:
    """A record's `successFlag` (0 generating, 1 success, 2 and 3 failed) as a task state;
    "waiting" when there is none (createTask's recordInfo and several families use it)."""
    flag = record.get("successFlag")
    if isinstance(flag, int) and not isinstance(flag, bool) and flag in _FLAGS:
        return _FLAGS[flag]
    return "waiting"


def _text(value: Any) -> str | None:
    return None if value in (None, "") else clean_text(value)


def _state(data: dict[str, Any]) -> KieState:
    state = data.get("state")
    if isinstance(state, str) and state in KIE_STATES:
        return cast(KieState, state)
    return flag_state(data)


def _result(data: dict[str, Any]) -> Any:
    """`response` (2026: the parsed result) when it is an object, else `resultJson`, which is
    a JSON string (or null, or "") on most pages and an object on a few."""
    response = data.get("response")
    if isinstance(response, dict):
        return response
    raw = data.get("resultJson")
    if isinstance(raw, str) and raw.strip():
        return parse_json(raw, "recordInfo resultJson")
    return raw if isinstance(raw, dict) else {}


def _listed(result: Any) -> list[Any]:
    """The result URLs in any shape Kie answers them: `resultUrls` (a list, or one string),
    or audio models' `data: [{audio_url, ...}, ...]`."""
    if not isinstance(result, dict):
        return []
    urls = result.get("resultUrls")
    if isinstance(urls, str):
        return [urls]
    if isinstance(urls, list):
        return urls
    items = result.get("data")
    if isinstance(items, list):
        return [item.get("audio_url") for item in items if isinstance(item, dict)]
    return []


def _urls(result: Any) -> tuple[str, ...]:
    kept = tuple(u for u in _listed(result) if isinstance(u, str) and u)
    if len(kept) > MAX_RESULTS or any(len(u) > MAX_URL for u in kept):
        raise MalformedAnswer("recordInfo lists too many or too long result URLs")
    return kept


def _result_json(data: dict[str, Any], result: Any) -> str:
    """A success's result that holds no URL, as bounded JSON: `resultObject` where Kie puts
    one (in the result or beside it), else the whole result (`{}` when Kie gave none)."""
    kept = result.get("resultObject") if isinstance(result, dict) else None
    if kept is None:
        kept = data.get("resultObject")
    if kept is None:
        kept = result
    text = json.dumps(kept, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= MAX_RESULT_JSON else text[: MAX_RESULT_JSON - 1] + "…"


def _credits(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 1e12 else None


def parse_task_info(data: Any) -> TaskInfo:
    """Read recordInfo's `data` in any of its shapes (2025 or 2026)."""
    if not isinstance(data, dict):
        raise MalformedAnswer("recordInfo answer without a task")
    state = _state(data)
    result = _result(data)
    urls = _urls(result)
    return TaskInfo(
        task_id=check_task_id(data.get("taskId"), "recordInfo answer"),
        state=state,
        result_urls=urls,
        fail_code=_text(data.get("failCode")),
        fail_msg=_text(data.get("failMsg")),
        credits=_credits(data.get("creditsConsumed")),
        result_json=_result_json(data, result) if state == "success" and not urls else None,
    )


def ended_task(task_id: str, error: KieError) -> TaskInfo:
    """The record of a task whose recordInfo answered a TASK_ENDED_CODES code: failed, with
    Kie's message (the code is the fail code, as a callback's `failCode` would be)."""
    code = error.code or 501
    message = error.message.removeprefix(f"Kie answered {code}: ")
    if not message or message == "no message":
        message = TASK_ENDED_CODES.get(code, "generation failed")
    return TaskInfo(task_id, "fail", (), str(code), clean_text(message))
