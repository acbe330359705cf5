"""What a family of Kie endpoints is: where a create goes, where its task is read, and how.

Most models run on createTask + recordInfo; a few (Veo 3.1, Runway, Flux Kontext, GPT-4o
Image, Suno) have endpoints of their own and answers of their own. A family turns the
runner's one request shape (`{"model", "callBackUrl"?, "input"}`, what `Job.body` builds)
into its wire request, reads its record into the one `TaskInfo`, and maps its documented
error answers onto the one error tree, so that `pipeline.kie.policy` decides what they mean
and the engine never learns where a family differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.kie.answers import (
    MAX_RESULTS,
    KieError,
    MalformedAnswer,
    NotFound,
    Rejected,
    TaskInfo,
    check_task_id,
    clean_text,
    flag_state,
    parse_task_info,
)

Call = Literal["create", "record", "refresh"]
COMMON_DOWNLOAD_URL = "/api/v1/common/download-url"
# Kie's answers for a task id it does not know, by family and era.
_UNKNOWN_TASK = ("recordinfo is null", "record is empty", "record is null", "task not found")


@dataclass(frozen=True)
class Request:
    """One HTTP request to Kie's API: a JSON body or query parameters."""

    method: Literal["GET", "POST"]
    path: str
    json: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None


# Sent where Kie requires a callBackUrl and neither the job nor the run gives one: `.invalid`
# never resolves (RFC 2606), so Kie's callback reaches no one; the runner polls as always.
PLACEHOLDER_CALLBACK = "https://callback.invalid/run-pipeline"


def flat(
    body: Mapping[str, Any], *, model: str | None, callback_required: bool = False
) -> dict[str, Any]:
    """The input's fields beside `model` (when the endpoint takes one) and `callBackUrl`
    (the placeholder when Kie requires one and the job has none)."""
    out: dict[str, Any] = {} if model is None else {"model": model}
    out.update(body.get("input") or {})
    callback = body.get("callBackUrl") or (PLACEHOLDER_CALLBACK if callback_required else None)
    if callback:
        out["callBackUrl"] = callback
    return out


def text(value: Any) -> str | None:
    return None if value in (None, "") else clean_text(value)


def urls(value: Any) -> tuple[str, ...]:
    """URL strings of a list (or one string), in order, empty ones left out."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(u for u in items if isinstance(u, str) and u)


def credits(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 <= number < 1e12 else None


def record_of(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedAnswer(f"{what} answer without a task")
    return data


class Family:
    """The createTask family; the others override what differs."""

    name = "createTask"
    create_path = "/api/v1/jobs/createTask"
    record_path = "/api/v1/jobs/recordInfo"
    # Kie requires a callBackUrl on this family's creates (Suno, Runway). With none from the
    # job or the run, the runner sends `PLACEHOLDER_CALLBACK` and polls as always.
    callback_required = False

    def create(self, body: Mapping[str, Any], sources: Mapping[str, str]) -> Request:
        """The create request for `body` (`Job.body`'s shape). `sources`: input field ->
        the model of the job whose task id the field holds (a follow-up's source)."""
        return Request("POST", self.create_path, json=dict(body))

    def task_id(self, data: Any, request: Request) -> str:
        task_id = data.get("taskId") if isinstance(data, dict) else None
        return check_task_id(task_id, f"{request.path} answered")

    def record(self, task_id: str) -> Request:
        return Request("GET", self.record_path, params={"taskId": task_id})

    def read(self, data: Any, task_id: str) -> TaskInfo:
        return parse_task_info(data)

    def refresh(self, task_id: str | None, url: str) -> Request:
        """A fresh link for an expired result URL: Kie's common download-url."""
        return Request("POST", COMMON_DOWNLOAD_URL, json={"url": url})

    def error(self, exc: KieError, call: Call) -> KieError:
        """The family's documented answers onto the tree (the default reads them as Kie's
        createTask pages do); an unknown task on a record call is NotFound."""
        message = exc.message.lower()
        if call == "record" and exc.code in (404, 422) and any(w in message for w in _UNKNOWN_TASK):
            return NotFound(exc.message, exc.code)
        return exc


def refused(exc: KieError, message: str) -> Rejected:
    """`exc` as a refusal of this job's input, with the family's explanation."""
    return Rejected(f"{exc.message} ({message})", exc.code)


def own_endpoint_error(exc: KieError, call: Call) -> KieError | None:
    """Answers the own-endpoint families document alike: on a create, 400 is a prompt
    flagged by moderation and 451 an input image Kie could not fetch; both refuse this
    job's input (trying again unchanged cannot help), neither stops the run."""
    if call == "create" and exc.code == 400:
        return refused(exc, "Kie refused the content of this job's input")
    if call == "create" and exc.code == 451:
        return refused(exc, "Kie could not fetch an input image: is its URL public?")
    return None


class OwnEndpoint(Family):
    """A family with endpoints of its own: its documented create answers come first."""

    def error(self, exc: KieError, call: Call) -> KieError:
        return own_endpoint_error(exc, call) or super().error(exc, call)


def read_flagged(data: Any, task_id: str, what: str, results: str) -> TaskInfo:
    """A record of the `successFlag` kind with `errorCode`/`errorMessage` and its result URLs
    in `response[results]` (Flux Kontext, GPT-4o Image)."""
    record = record_of(data, what)
    response = record.get("response")
    found = urls(response.get(results)) if isinstance(response, dict) else ()
    return TaskInfo(
        task_id=check_task_id(record.get("taskId") or task_id, what),
        state=flag_state(record),
        result_urls=found[:MAX_RESULTS],
        fail_code=text(record.get("errorCode")),
        fail_msg=text(record.get("errorMessage")),
        credits=credits(record.get("creditsConsumed")),
    )
