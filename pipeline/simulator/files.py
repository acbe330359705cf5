"""Result files: the bundled videos, expiring signed-looking URLs, and HTTP Range parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

FILES_PREFIX = "/files/"
_FILE_PATH = re.compile(r"^/files/([0-9a-f]{32})/([0-9a-f]{32})(-wm)?\.mp4$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@cache
def video_bytes(aspect_ratio: str) -> bytes:
    """The bundled MP4 for an aspect ratio (anything but "portrait" is landscape)."""
    name = "portrait.mp4" if aspect_ratio == "portrait" else "landscape.mp4"
    return (resources.files("pipeline.simulator") / "media" / name).read_bytes()


@dataclass(frozen=True)
class Grant:
    """What one file URL gives access to, and until when (monotonic seconds)."""

    task_id: str
    account: int
    expires: float


def file_path(token: str, task_id: str, watermark: bool = False) -> str:
    return f"{FILES_PREFIX}{token}/{task_id}{'-wm' if watermark else ''}.mp4"


def parse_file_path(path: str) -> tuple[str, str] | None:
    """(token, taskId) of a file path (or a full URL), None when it is not one of ours."""
    match = _FILE_PATH.match(urlsplit(path).path)
    return (match.group(1), match.group(2)) if match else None


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) byte positions of a single `Range: bytes=...` header.

    None means "send the whole file": no header, or one we do not understand (multiple
    ranges, other units), which RFC 9110 allows a server to ignore.
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first_text, last_text = match.groups()
    if first_text == "":  # suffix range: the last N bytes
        suffix = int(last_text)
        if suffix == 0:
            raise RangeNotSatisfiable
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size:
        raise RangeNotSatisfiable
    if last < first:
        return None  # syntactically invalid range: ignored, per RFC 9110
    return first, last


ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)
NO_SUCH_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    b"<Message>The specified key does not exist.</Message></Error>"
)
