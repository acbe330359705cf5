"""Kie's file host: the three upload endpoints, the files they serve, and their retention.

Like Kie's host, a file is served with the Content-Type its NAME implies (whatever its bytes
are), the same path overwrites, and files vanish after a retention time. A create whose input
names an upload that is gone, or whose bytes are not what its name says, fails like Kie's
models do when they cannot use the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pipeline.simulator.results import sniff

UPLOADS_PREFIX = "/uploads/"
UPLOAD_ROUTES = {
    "/api/file-stream-upload": "stream",
    "/api/file-base64-upload": "base64",
    "/api/file-url-upload": "url",
}
_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "txt": "text/plain",
}
_SEGMENT = re.compile(r"^[A-Za-z0-9._ ()+-]+$")
_SNIFFED = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "mp4": "video/mp4"}
_SNIFFED["mp3"] = "audio/mpeg"


def mime_for(name: str) -> str:
    """The Content-Type of a file name, by its extension alone (as Kie's host does)."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class UploadError(Exception):
    """A refused upload: `code` and `msg` go into the answer."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass
class Upload:
    path: str  # uploadPath/fileName, the key; the same path overwrites
    data: bytes
    account: int
    uploaded_wall: float
    expires_wall: float

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def answer(self, base_url: str) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.uploaded_wall))
        millis = int(self.uploaded_wall * 1000) % 1000
        return {
            "fileName": self.name,
            "filePath": self.path,
            "downloadUrl": base_url + UPLOADS_PREFIX + quote(self.path),
            "fileSize": len(self.data),
            "mimeType": mime_for(self.name),
            "uploadedAt": f"{stamp}.{millis:03d}Z",
        }


def _clean_path(upload_path: object, file_name: str) -> str:
    if not isinstance(upload_path, str) or not upload_path:
        raise UploadError(400, "uploadPath is required")
    if upload_path.startswith("/") or upload_path.endswith("/"):
        raise UploadError(400, "uploadPath must not start or end with '/'")
    segments = [*upload_path.split("/"), file_name]
    if any(s in ("", ".", "..") or not _SEGMENT.match(s) for s in segments):
        raise UploadError(400, "uploadPath or fileName contains characters that are not allowed")
    return "/".join(segments)


def _name(given: object, fallback: str | None, data: bytes) -> str:
    if isinstance(given, str) and given:
        return given
    if fallback:
        return fallback.rsplit("/", 1)[-1]
    return f"{secrets.token_hex(8)}.{sniff(data) or 'bin'}"  # Kie names it when you do not


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], tuple[str, bytes]]:
    """(text fields, (file name, file bytes)) of a multipart/form-data body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.lower().startswith("multipart/form-data") or not match:
        raise UploadError(400, "the body must be multipart/form-data")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    upload: tuple[str, bytes] | None = None
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        content = content[:-2] if content.endswith(b"\r\n") else content
        disposition = next(
            (h for h in head.decode("utf-8", "replace").split("\r\n") if ":" in h and
             h.split(":", 1)[0].strip().lower() == "content-disposition"),
            "",
        )  # fmt: skip
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is None:
            continue
        if name.group(1) == "file":
            upload = (filename.group(1) if filename else "", content)
        else:
            fields[name.group(1)] = content.decode("utf-8", "replace")
    if upload is None:
        raise UploadError(400, "file is required")
    return fields, upload


def decode_base64(value: object) -> tuple[bytes, str | None]:
    """Bytes of `base64Data` (plain, or a data: URL), and the data URL's type if any."""
    if not isinstance(value, str) or not value:
        raise UploadError(400, "base64Data is required")
    declared = None
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        declared = header[5:].split(";")[0] or None
    try:
        return base64.b64decode(value, validate=True), declared
    except (binascii.Error, ValueError):
        raise UploadError(400, "base64Data is not valid base64") from None


def json_body(raw: bytes) -> Mapping[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise UploadError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise UploadError(400, "the body must be a JSON object")
    return body


class UploadStore:
    """Uploaded files by path, and a log of every upload (for /__sim/uploads)."""

    def __init__(self) -> None:
        self.files: dict[str, Upload] = {}
        self.log: list[dict[str, Any]] = []

    def put(
        self,
        endpoint: str,
        account: int,
        upload_path: object,
        file_name: object,
        fallback: str | None,
        data: bytes,
        now_wall: float,
        ttl: float,
    ) -> Upload:
        path = _clean_path(upload_path, _name(file_name, fallback, data))
        upload = Upload(path, data, account, now_wall, now_wall + ttl)
        overwrote = path in self.files
        self.files[path] = upload
        self.log.append(
            {
                "time": now_wall,
                "endpoint": endpoint,
                "account": account,
                "filePath": path,
                "fileName": upload.name,
                "fileSize": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "overwrote": overwrote,
            }
        )
        return upload

    def live(self, path: str, now_wall: float) -> Upload | None:
        upload = self.files.get(path)
        return upload if upload is not None and now_wall < upload.expires_wall else None

    def path_of(self, url: str, base_url: str) -> str | None:
        """The stored path a URL names, when it points at this host's uploads."""
        if not url.startswith(base_url + UPLOADS_PREFIX):
            return None
        return unquote(urlsplit(url).path[len(UPLOADS_PREFIX) :])

    def check_input(
        self, task_input: Any, base_url: str, now_wall: float
    ) -> tuple[str, str] | None:
        """(failCode, failMsg) when an input URL names an upload a model could not use."""
        for url in _strings(task_input):
            path = self.path_of(url, base_url)
            if path is None:
                continue
            upload = self.live(path, now_wall)
            if upload is None:
                return "422", f"Failed to fetch the file {url}: it does not exist or has expired"
            real = sniff(upload.data)
            declared = mime_for(upload.name)
            if real is not None and _SNIFFED[real] != declared:
                return (
                    "422",
                    f"The file {upload.name} is served as {declared} but is {_SNIFFED[real]}",
                )
        return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
