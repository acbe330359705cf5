"""The upload endpoints on the service's books: who may upload, what is stored, and when.

A URL upload fetches its source outside the service lock (it may be slow, or this very
simulator), bounded in size and time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx

from pipeline.simulator.replies import UNAUTHORIZED, Reply
from pipeline.simulator.uploads import UploadError, decode_base64, json_body, parse_multipart

if TYPE_CHECKING:
    from pipeline.simulator.service import KieService

FETCH_TIMEOUT = 30.0


def handle_upload(service: KieService, kind: str, headers: Mapping[str, str], raw: bytes) -> Reply:
    """Store an upload (kind "stream", "base64" or "url"); Kie's answer as a Reply."""
    with service.lock:
        account = service.account_of(headers.get("authorization"))
    if account is None:
        return UNAUTHORIZED
    try:
        if kind == "stream":
            fields, (original, data) = parse_multipart(headers.get("content-type", ""), raw)
            upload_path, file_name = fields.get("uploadPath"), fields.get("fileName")
        else:
            body = json_body(raw)
            upload_path, file_name = body.get("uploadPath"), body.get("fileName")
            if kind == "base64":
                data, _ = decode_base64(body.get("base64Data"))
                original = None
            else:
                original = body.get("fileUrl")
                data = _fetch(original, service.config.upload_max_bytes)
        if len(data) > service.config.upload_max_bytes:
            raise UploadError(413, "the file is too large")
        if not data:
            raise UploadError(400, "the file is empty")
        with service.lock:
            now = service.wall()
            ttl = service.config.scaled(service.config.upload_ttl)
            upload = service.uploads.put(
                kind, account, upload_path, file_name, original or None, data, now, ttl
            )
            service.save_upload(upload, service.uploads.log[-1])
            service.stats.uploads += 1
            answer = upload.answer(service.base_url)
    except UploadError as exc:
        return Reply(exc.code, exc.msg, account=account)
    return Reply(200, "File uploaded successfully", answer, account=account)


def _fetch(url: object, limit: int) -> bytes:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise UploadError(400, "fileUrl must be an http(s) URL")
    chunks: list[bytes] = []
    size = 0
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT, follow_redirects=True) as answer:
            if answer.status_code != 200:
                raise UploadError(400, f"could not download fileUrl: HTTP {answer.status_code}")
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise UploadError(413, "the file at fileUrl is too large")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise UploadError(400, f"could not download fileUrl: {type(exc).__name__}") from None
    return b"".join(chunks)
