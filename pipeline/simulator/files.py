"""Result file URLs (expiring, signed-looking) and HTTP Range parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.simulator.results import video_bytes as video_bytes  # re-exported

FILES_PREFIX = "/files/"
# /files/<token>/<taskId>[-<n>][-wm].<ext>: the n-th result (from 2) of a task.
_FILE_PATH = re.compile(
    r"^/files/([0-9a-f]{32})/([0-9a-f]{32})(?:-([2-9]|1[0-6]))?(-wm)?\.(png|jpg|webp|mp4|mp3)$"
)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Grant:
    """What one file URL gives access to, and until when (monotonic seconds)."""

    task_id: str
    account: int
    expires: float


def file_path(
    token: str, task_id: str, watermark: bool = False, index: int = 0, ext: str = "mp4"
) -> str:
    number = f"-{index + 1}" if index else ""
    return f"{FILES_PREFIX}{token}/{task_id}{number}{'-wm' if watermark else ''}.{ext}"


@dataclass(frozen=True)
class FilePath:
    token: str
    task_id: str
    index: int  # 0-based position in the task's results
    watermark: bool
    ext: str


def parse_file_path(path: str) -> FilePath | None:
    """The parts of a file path (or a full URL), None when it is not one of ours."""
    match = _FILE_PATH.match(urlsplit(path).path)
    if not match:
        return None
    token, task_id, number, watermark, ext = match.groups()
    return FilePath(token, task_id, int(number) - 1 if number else 0, bool(watermark), ext)


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
