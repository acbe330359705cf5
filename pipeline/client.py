"""The only module that speaks HTTP to Kie. Turns every answer into data or one of our errors.

Kie answers most errors as HTTP 200 with the code in the body, rate limiting sometimes as a
real HTTP 429, and 5xx sometimes as HTML; we check the status and the body code. The API key
is sent only to the Kie endpoint (never to file hosts) and never appears in an error message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from pipeline import __version__


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
    pass


class TransportError(RetryableError):
    """No usable answer: connection refused or reset, timeout, or a body that is not JSON."""

    def __init__(self, message: str, *, ambiguous: bool) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class PermanentError(KieError):
    """Trying again unchanged will not help."""


class AuthError(PermanentError):
    pass


class InsufficientCredits(PermanentError):
    pass


class NotFound(PermanentError):
    pass


class Rejected(PermanentError):
    """422: the request failed validation or moderation."""


class ModelDisabled(PermanentError):
    pass


_BY_CODE: dict[int, type[KieError]] = {
    401: AuthError,
    402: InsufficientCredits,
    404: NotFound,
    422: Rejected,
    429: RateLimited,
    455: Maintenance,
    500: ServerError,
    505: ModelDisabled,
}


@dataclass(frozen=True)
class TaskInfo:
    """The parts of a recordInfo answer the runner needs."""

    task_id: str
    state: str  # waiting | queuing | generating | success | fail
    result_urls: tuple[str, ...]
    fail_code: str | None
    fail_msg: str | None

    @property
    def finished(self) -> bool:
        return self.state in {"success", "fail"}


def _error_for(code: int, message: str) -> KieError:
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = ServerError if code >= 500 else PermanentError
    return cls(f"Kie answered {code}: {message}", code)


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def parse_task_info(data: Any) -> TaskInfo:
    """Read recordInfo's `data`, whose `resultJson` is a JSON *string* (or null, or "")."""
    if not isinstance(data, dict) or not isinstance(data.get("taskId"), str):
        raise ServerError("recordInfo answer without a task")
    raw = data.get("resultJson")
    result: Any = {}
    if isinstance(raw, str) and raw.strip():
        try:
            result = json.loads(raw)
        except json.JSONDecodeError:
            raise ServerError("recordInfo resultJson is not valid JSON") from None
    elif isinstance(raw, dict):
        result = raw
    urls = result.get("resultUrls") if isinstance(result, dict) else None
    return TaskInfo(
        task_id=data["taskId"],
        state=str(data.get("state") or "waiting"),
        result_urls=tuple(u for u in urls or () if isinstance(u, str)),
        fail_code=_text(data.get("failCode")),
        fail_msg=_text(data.get("failMsg")),
    )


class KieClient:
    """Async client for one endpoint and key. Use as `async with KieClient(...) as kie:`."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, max_connections: int = 32
    ) -> None:
        limits = httpx.Limits(max_connections=max_connections)
        headers = {"User-Agent": f"run-pipeline/{__version__}"}
        self._api = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={**headers, "Authorization": f"Bearer {api_key}"},
            limits=limits,
        )
        # File hosts get no Authorization header: the key is for Kie alone.
        self._files = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers=headers,
            limits=limits,
            follow_redirects=True,
        )

    async def __aenter__(self) -> KieClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._files.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._api.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportError(
                f"cannot reach Kie: {type(exc).__name__}", ambiguous=False
            ) from None
        except httpx.HTTPError as exc:
            # Sent, but no answer: the server may have acted on it.
            raise TransportError(
                f"no answer from Kie: {type(exc).__name__}", ambiguous=True
            ) from None
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            if response.status_code == 200:
                raise TransportError("Kie's answer is not a JSON envelope", ambiguous=True)
            raise _error_for(response.status_code, f"HTTP {response.status_code}")
        code = body.get("code")
        message = str(body.get("msg") or body.get("message") or "")
        if response.status_code != 200 and (not isinstance(code, int) or code == 200):
            code = response.status_code
        if not isinstance(code, int):
            raise TransportError("Kie's answer has no code", ambiguous=True)
        if code != 200:
            raise _error_for(code, message or "no message")
        return body.get("data")

    async def create_task(self, body: dict[str, Any]) -> str:
        data = await self._call("POST", "/api/v1/jobs/createTask", json=body)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise TransportError("createTask answered without a taskId", ambiguous=True)
        return task_id

    async def record_info(self, task_id: str) -> TaskInfo:
        data = await self._call("GET", "/api/v1/jobs/recordInfo", params={"taskId": task_id})
        return parse_task_info(data)

    async def download_url(self, url: str) -> str:
        data = await self._call("POST", "/api/v1/common/download-url", json={"url": url})
        if isinstance(data, dict):  # some pages show {"url": ...}
            data = data.get("url") or data.get("downloadUrl")
        if not isinstance(data, str) or not data:
            raise ServerError("download-url answered without a URL")
        return data

    async def credit(self) -> float:
        data = await self._call("GET", "/api/v1/chat/credit")
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise ServerError("credit answer is not a number")
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
