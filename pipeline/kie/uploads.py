"""Kie's file host: uploading a local file, and asking whether an upload is still served.

Uploads go to the upload host (`https://kieai.redpandaai.co` by default, not the API host)
with the same Bearer key; its answers use Kie's envelope plus a `success` flag, so they are
read, bounded and mapped onto the error tree exactly like API answers (`answers.py`). An
upload is idempotent here by construction: the runner names every file by its content, and
the same path overwrites, so repeating one after an unclear answer is harmless.

The liveness check of a stored upload is a one-byte ranged GET on the file's URL, through
`FileHosts`: no key, checked hosts, and not on the API's query budget. A ranged GET rather
than a HEAD, because signed file URLs are often signed for GET alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipeline.kie.answers import (
    MAX_URL,
    MalformedAnswer,
    PermanentError,
    Redirected,
    TransportError,
    clean_text,
)
from pipeline.kie.client import CALL_DEADLINE, MAX_ANSWER, _read_envelope, connections, exchange
from pipeline.kie.filehosts import FileURLRefused

DEFAULT_UPLOAD_URL = "https://kieai.redpandaai.co"
UPLOAD_ENDPOINT = "/api/file-stream-upload"
# An upload's deadline grows with its size: CALL_DEADLINE plus one second per this many bytes
# (a slow 100 KB/s uplink still gets a 100 MB video through).
BYTES_PER_SECOND = 100_000
LIVENESS_DEADLINE = 30.0


class UploadURLRefused(PermanentError):
    """The upload host answered with a URL on a host results may not live on (link-local,
    or private when the host is public): it is never sent to Kie in a create."""


@dataclass(frozen=True)
class UploadInfo:
    """What the file host answered for an upload. `url` is where models fetch the file."""

    url: str
    file_name: str | None = None
    file_path: str | None = None
    size: int | None = None
    mime_type: str | None = None


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return clean_text(value, 300) if isinstance(value, str) and value else None


def parse_upload_answer(data: Any) -> UploadInfo:
    """`data` of an upload answer: `downloadUrl`, falling back to the older `fileUrl`."""
    if not isinstance(data, dict):
        raise MalformedAnswer("the upload answer holds no file")
    url = data.get("downloadUrl") or data.get("fileUrl")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise MalformedAnswer("the upload answer holds no usable downloadUrl or fileUrl")
    if len(url) > MAX_URL or any(ch <= " " or ch == "\x7f" for ch in url):
        raise MalformedAnswer("the upload answer's URL is too long or not printable")
    size = data.get("fileSize")
    return UploadInfo(
        url=url,
        file_name=_text(data, "fileName"),
        file_path=_text(data, "filePath"),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        mime_type=_text(data, "mimeType"),
    )


class UploadClient:
    """Async client for one upload host and key. `async with UploadClient(...) as up:`."""

    def __init__(
        self,
        upload_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_connections: int = 8,
        max_answer: int = MAX_ANSWER,
    ) -> None:
        self.max_answer = max_answer
        # Uploaded files are served from the upload host's side: no key goes there.
        self._host, self._files = connections(
            upload_url, api_key, timeout=timeout, max_connections=max_connections
        )

    async def __aenter__(self) -> UploadClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._host.aclose()
        await self._files.aclose()

    async def upload_file(self, path: Path, upload_path: str, file_name: str) -> UploadInfo:
        """Upload the file at `path` as `upload_path/file_name`."""
        data = await asyncio.to_thread(path.read_bytes)
        return await self.upload_bytes(data, upload_path, file_name)

    async def upload_bytes(self, data: bytes, upload_path: str, file_name: str) -> UploadInfo:
        """Upload `data` (multipart, as `file-stream-upload` expects) as
        `upload_path/file_name`; the same name overwrites."""
        deadline = CALL_DEADLINE + len(data) / BYTES_PER_SECOND
        form = {"uploadPath": upload_path, "fileName": file_name}
        files = {"file": (file_name, data, "application/octet-stream")}
        try:
            async with asyncio.timeout(deadline):
                status, headers, raw = await exchange(
                    self._host,
                    "the upload host",
                    self.max_answer,
                    "POST",
                    UPLOAD_ENDPOINT,
                    data=form,
                    files=files,
                )
        except TimeoutError:
            raise TransportError(
                f"no complete answer from the upload host within {deadline:g} s", ambiguous=True
            ) from None
        try:
            data = _read_envelope(status, headers, raw, create=False)
        except Redirected as exc:
            raise Redirected(exc.message.replace("--base-url", "--upload-url"), exc.code) from None
        info = parse_upload_answer(data)
        try:  # checked like a result URL: Kie would fetch it, and we would pay for the task
            await self._files.check(httpx.URL(info.url))
        except (FileURLRefused, httpx.InvalidURL) as exc:
            raise UploadURLRefused(f"the upload host answered with a refused URL: {exc}") from None
        return info

    async def alive(self, url: str) -> bool:
        """Whether the file host still serves `url` (a one-byte ranged GET, no key). Any
        doubt (a refusal, a transport error, a refused host) counts as gone: uploading again
        is free, sending a dead URL to a create is a failed task."""
        try:
            async with asyncio.timeout(LIVENESS_DEADLINE):
                async with self._files.stream(
                    "GET", url, headers={"Range": "bytes=0-0"}
                ) as response:
                    return response.status_code in (200, 206)
        except (TimeoutError, httpx.HTTPError, FileURLRefused, httpx.InvalidURL):
            return False
