"""The only module that speaks HTTP to Kie. Turns every answer into data or one of our errors.

Kie answers most errors as HTTP 200 with the code in the body, rate limiting sometimes as a
real HTTP 429, and 5xx sometimes as HTML; we check the status and the body code. An answer
that is not Kie's envelope (a gateway's HTML page, a cut or garbled body, a deadline passed
after sending) may follow a task Kie made: it is ambiguous, never "not created". Every call
has an overall deadline whatever the server drips, and every answer is read with a size cap
(decompressed bytes). The API key is sent only to the Kie endpoint (never to file hosts, see
`filehosts`) and never appears in an error message. The error tree and the reading of
answers live in `answers`; every name is re-exported here.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from pipeline import __version__
from pipeline.kie.answers import (
    TASK_ENDED_CODES,
    AuthError,
    InsufficientCredits,
    KeyLimitReached,
    KieError,
    Maintenance,
    MalformedAnswer,
    ModelDisabled,
    ModelUnavailable,
    NotFound,
    PermanentError,
    RateLimited,
    Redirected,
    Rejected,
    RetryableError,
    ServerError,
    TaskInfo,
    TransportError,
    Unsendable,
    clean_text,
    ended_task,
    error_for,
    gateway_error,
    parse_json,
    parse_task_info,
)
from pipeline.kie.families import Request, family
from pipeline.kie.filehosts import FileHosts, FileURLRefused

__all__ = [
    "AuthError",
    "FileURLRefused",
    "InsufficientCredits",
    "KeyLimitReached",
    "KieClient",
    "KieError",
    "Maintenance",
    "MalformedAnswer",
    "ModelDisabled",
    "ModelUnavailable",
    "NotFound",
    "PermanentError",
    "RateLimited",
    "Redirected",
    "Rejected",
    "RetryableError",
    "ServerError",
    "TaskInfo",
    "TransportError",
    "Unsendable",
    "parse_task_info",
]

MAX_ANSWER = 1024 * 1024  # bytes of an API answer, counted after decompression
CALL_DEADLINE = 90.0  # seconds for a whole API call: connect, send, and the last byte read
_error_for = error_for  # the old private name, kept for callers and tests


def _read_envelope(status: int, headers: httpx.Headers, raw: bytes, *, create: bool) -> Any:
    """`data` of a success envelope, else the error the answer means."""
    if 300 <= status < 400:
        where = clean_text(headers.get("location") or "nowhere", 200)
        raise Redirected(
            f"Kie answered HTTP {status} redirect to {where}; check --base-url", status
        )
    try:
        body = parse_json(raw, "Kie's answer")
    except MalformedAnswer:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, int) or isinstance(code, bool) or (status != 200 and code == 200):
        if status == 429:  # a rate limiter in front of Kie: refused, not carried out
            raise RateLimited("Kie answered HTTP 429", 429)
        if status == 401:
            raise AuthError("Kie answered HTTP 401", 401)
        kind = clean_text(headers.get("content-type") or "no content type", 60)
        raise MalformedAnswer(
            f"Kie answered HTTP {status} without its JSON envelope ({kind}); "
            "the request may have been carried out"
        )
    if code != 200:
        assert isinstance(body, dict)
        message = body.get("msg") or body.get("message") or ""
        error = error_for(code, str(message), create=create)
        raise gateway_error(status, error) if create and status >= 500 else error
    assert isinstance(body, dict)
    return body.get("data")


async def exchange(
    http: httpx.AsyncClient, who: str, max_answer: int, method: str, path: str, **kwargs: Any
) -> tuple[int, httpx.Headers, bytes]:
    """Send and read the answer of `who` (Kie's API, its upload host), streaming, with at
    most `max_answer` bytes kept; transport failures as our errors, ambiguous once sent.

    The answer is asked for uncompressed (`Accept-Encoding: identity`, see `connections`).
    One compressed anyway is inflated here step by step, never past `max_answer`: httpx
    would inflate each network chunk whole (a 64 KB gzip chunk is 64 MB of zeros; 20 calls
    in flight cost 821 MB before any cap was looked at)."""
    try:
        async with http.stream(method, path, **kwargs) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_answer:
                raise MalformedAnswer(f"{who}'s answer is too large ({declared} bytes)")
            inflater = _Inflater(who, response.headers.get("content-encoding", ""))
            chunks: list[bytes] = []
            size = 0
            async for raw in response.aiter_raw():
                for chunk in inflater.feed(raw, max_answer + 1 - size):
                    size += len(chunk)
                    if size > max_answer:
                        raise MalformedAnswer(f"{who}'s answer is larger than {max_answer} bytes")
                    chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransportError(f"cannot reach {who}: {type(exc).__name__}", ambiguous=False) from None
    except httpx.DecodingError:
        raise MalformedAnswer(f"{who}'s answer cannot be decompressed") from None
    except (httpx.LocalProtocolError, UnicodeEncodeError) as exc:
        # The request could not be written (a header value HTTP cannot carry): it never
        # left this machine, so it is "not sent", never ambiguous.
        raise Unsendable(
            f"the request to {who} could not be sent ({type(exc).__name__}); nothing left "
            "this machine: check the API key and the URL for characters HTTP cannot carry"
        ) from None
    except httpx.HTTPError as exc:
        # Sent, but no answer: the server may have acted on it.
        raise TransportError(
            f"no answer from {who}: {type(exc).__name__}", ambiguous=True
        ) from None


class _Inflater:
    """The raw body as the answer: as it is, or inflated (gzip, zlib, raw deflate) at most
    `room` bytes at a time, so that a bomb is cut at the cap having cost no more than it."""

    def __init__(self, who: str, encoding: str) -> None:
        self.who = who
        encoding = encoding.strip().lower()
        self.inflater: Any = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            self.inflater = zlib.decompressobj(47)  # a gzip or a zlib header, detected
            self.raw_deflate = encoding == "deflate"  # some servers send it headerless
        elif encoding not in ("", "identity"):
            raise MalformedAnswer(f"{who}'s answer is {clean_text(encoding, 20)}-encoded, unasked")

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        if self.inflater is None:
            yield data
            return
        while data and not self.inflater.eof:
            try:
                out = self.inflater.decompress(data, max(room, 1))
            except zlib.error:
                if self.raw_deflate:
                    self.inflater, self.raw_deflate = zlib.decompressobj(-15), False
                    continue
                raise MalformedAnswer(f"{self.who}'s answer cannot be decompressed") from None
            self.raw_deflate = False
            data = self.inflater.unconsumed_tail
            room -= len(out)
            if not out:
                return  # all taken in, nothing out yet (a header): wait for more
            yield out


def connections(
    base_url: str, api_key: str, *, timeout: float, max_connections: int
) -> tuple[httpx.AsyncClient, FileHosts]:
    """The two clients of one Kie host: `base_url` with the key, and the file hosts it
    points to (results, uploads) with no Authorization header: the key is for Kie alone."""
    limits = httpx.Limits(max_connections=max_connections)
    agent = f"run-pipeline/{__version__}"
    api = httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(timeout, connect=10.0),
        # Uncompressed answers: a compressed one is inflated under the cap (see exchange).
        headers={
            "User-Agent": agent,
            "Authorization": f"Bearer {api_key}",
            "Accept-Encoding": "identity",
        },
        limits=limits,
    )
    files = FileHosts(
        base_url, timeout=httpx.Timeout(timeout, connect=10.0), limits=limits, user_agent=agent
    )
    return api, files


class KieClient:
    """Async client for one endpoint and key. Use as `async with KieClient(...) as kie:`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_connections: int = 32,
        deadline: float = CALL_DEADLINE,
        max_answer: int = MAX_ANSWER,
    ) -> None:
        self.deadline = deadline
        self.max_answer = max_answer
        self._api, self._files = connections(
            base_url, api_key, timeout=timeout, max_connections=max_connections
        )

    async def __aenter__(self) -> KieClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._files.aclose()

    async def _call(self, method: str, path: str, *, create: bool = False, **kwargs: Any) -> Any:
        """One API call within `deadline` seconds in all; `data` of the answer, or an error.
        `create`: a createTask, whose 500 validation and "paused" answers are permanent."""
        try:
            async with asyncio.timeout(self.deadline):
                status, headers, raw = await self._exchange(method, path, **kwargs)
        except TimeoutError:
            raise TransportError(
                f"no complete answer from Kie within {self.deadline:g} s", ambiguous=True
            ) from None
        return _read_envelope(status, headers, raw, create=create)

    async def _exchange(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, httpx.Headers, bytes]:
        return await exchange(self._api, "Kie", self.max_answer, method, path, **kwargs)

    async def create_task(self, body: dict[str, Any]) -> str:
        """createTask (the family of every market model)."""
        return await self.create(None, body)

    async def record_info(self, task_id: str) -> TaskInfo:
        """recordInfo; 2026: an unknown task is `422 recordInfo is null` -> NotFound."""
        return await self.record(None, task_id)

    async def download_url(self, url: str) -> str:
        return await self.fresh_url(None, None, url)

    # --- family-aware calls: the engine passes the job's family through, never reads it ---

    async def _send(self, request: Request, *, create: bool = False) -> Any:
        kwargs: dict[str, Any] = {}
        if request.json is not None:
            kwargs["json"] = dict(request.json)
        if request.params is not None:
            kwargs["params"] = dict(request.params)
        return await self._call(request.method, request.path, create=create, **kwargs)

    async def create(
        self,
        family_name: str | None,
        body: dict[str, Any],
        *,
        sources: Mapping[str, str] | None = None,
    ) -> str:
        """Create a task of `body` (`Job.body`'s shape) on its family's endpoint; its id.
        `sources`: input field -> the model of the job whose task id the field holds."""
        kind = family(family_name)
        request = kind.create(body, sources or {})
        try:
            data = await self._send(request, create=True)
        except KieError as exc:
            raise kind.error(exc, "create") from None
        return kind.task_id(data, request)

    async def record(self, family_name: str | None, task_id: str) -> TaskInfo:
        """The task's record on its family's endpoint, as a TaskInfo."""
        kind = family(family_name)
        try:
            data = await self._send(kind.record(task_id))
        except KieError as exc:
            if exc.code in TASK_ENDED_CODES:  # 501 / 408: the task ended without a result
                return ended_task(task_id, exc)
            raise kind.error(exc, "record") from None
        info = kind.read(data, task_id)
        if info.task_id != task_id:  # a caching proxy mixed up its keys: never this task's
            raise MalformedAnswer(
                f"the record of task {task_id} answered with task {info.task_id}; "
                "ignored (a proxy or cache in between?)"
            )
        return info

    async def fresh_url(self, family_name: str | None, task_id: str | None, url: str) -> str:
        """A new link for an expired result URL: the family's own download-url where Kie
        documents one (GPT-4o Image), else the common one."""
        kind = family(family_name)
        try:
            data = await self._send(kind.refresh(task_id, url))
        except KieError as exc:
            raise kind.error(exc, "refresh") from None
        if isinstance(data, dict):  # some pages show {"url": ...}
            data = data.get("url") or data.get("downloadUrl")
        if not isinstance(data, str) or not data or len(data) > 8192:
            raise MalformedAnswer("download-url answered without a usable URL")
        return data

    async def credit(self) -> float:
        data = await self._call("GET", "/api/v1/chat/credit")
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise MalformedAnswer("credit answer is not a number")
        return float(data)

    @asynccontextmanager
    async def open_file(self, url: str, offset: int = 0) -> AsyncIterator[httpx.Response]:
        """Stream a result file from `offset` (Range). Raises on transport errors as httpx."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        async with self._files.stream("GET", url, headers=headers) as response:
            yield response

    # --- the model catalog (GET /api/v1/models...); callers pace these at 1 per second ---

    async def list_models(
        self, task_type: str | None = None, search: str | None = None
    ) -> list[dict[str, Any]]:
        """The catalog's models (`data.models`), optionally filtered by Kie."""
        params = {k: v for k, v in (("taskType", task_type), ("q", search)) if v}
        data = await self._call("GET", "/api/v1/models", params=params)
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
            raise ServerError("the model list answered without a list of models")
        return models

    async def model_schema(self, model: str) -> Any:
        """The model's OpenAPI document (`data.openapi`: an object, or None when not synced).
        The slash of a two-segment name stays a slash in the path, as Kie expects."""
        data = await self._call("GET", f"/api/v1/models/{model}/schema")
        if not isinstance(data, dict) or "openapi" not in data:
            raise ServerError(f"the schema of {model} answered without an `openapi` document")
        return data["openapi"]

    async def model_price(self, model: str) -> str | None:
        """The model's price prose (`data.pricingDesc`), None when Kie gives none."""
        data = await self._call("GET", f"/api/v1/models/{model}/price")
        if not isinstance(data, dict):
            raise ServerError(f"the price of {model} answered without data")
        prose = data.get("pricingDesc")
        return prose if isinstance(prose, str) and prose else None
