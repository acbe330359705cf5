"""What a downloaded result is: its MIME type, the file extension we give it, and whether its
first bytes are what the type says (magic numbers, where that check is cheap).

A result is named after the type its host serves (Content-Type), else what its bytes are,
else its URL's extension; a type with a known signature whose bytes do not match is an error,
never a misnamed file. A text page (HTML, JSON, plain text) is not a result of a media model.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

HEAD = 16  # bytes of a file's start that the signatures below need

# MIME type -> (extension, kind). The first type listed for an extension is its canonical one.
TYPES: dict[str, tuple[str, str]] = {
    "image/png": (".png", "image"),
    "image/jpeg": (".jpg", "image"),
    "image/jpg": (".jpg", "image"),
    "image/pjpeg": (".jpg", "image"),
    "image/webp": (".webp", "image"),
    "image/gif": (".gif", "image"),
    "image/avif": (".avif", "image"),
    "image/heic": (".heic", "image"),
    "image/bmp": (".bmp", "image"),
    "image/tiff": (".tiff", "image"),
    "video/mp4": (".mp4", "video"),
    "video/quicktime": (".mov", "video"),
    "video/webm": (".webm", "video"),
    "video/x-matroska": (".mkv", "video"),
    "video/mpeg": (".mpeg", "video"),
    "audio/mpeg": (".mp3", "audio"),
    "audio/mp3": (".mp3", "audio"),
    "audio/wav": (".wav", "audio"),
    "audio/x-wav": (".wav", "audio"),
    "audio/wave": (".wav", "audio"),
    "audio/vnd.wave": (".wav", "audio"),
    "audio/mp4": (".m4a", "audio"),
    "audio/x-m4a": (".m4a", "audio"),
    "audio/aac": (".aac", "audio"),
    "audio/ogg": (".ogg", "audio"),
    "audio/flac": (".flac", "audio"),
    "audio/x-flac": (".flac", "audio"),
    "audio/webm": (".webm", "audio"),
}
BY_EXTENSION: dict[str, str] = {}
for _mime, (_ext, _kind) in TYPES.items():
    BY_EXTENSION.setdefault(_ext, _mime)
BY_EXTENSION.update({".jpeg": "image/jpeg", ".tif": "image/tiff", ".m4v": "video/mp4"})

# Served types that say nothing about the content.
GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/binary"}
# ISO base media (MP4, MOV, M4A, AVIF, HEIC): a box type at bytes 4..8.
_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


_Check = Callable[[bytes], bool]


def _iso_box(head: bytes) -> bool:
    return head[4:8] in _BOXES


def _mp3(head: bytes) -> bool:
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] >= 0xE0)


def _riff(form: bytes) -> _Check:
    return lambda head: head.startswith(b"RIFF") and head[8:12] == form


def _prefix(*prefixes: bytes) -> _Check:
    return lambda head: head.startswith(prefixes)


SIGNATURES: dict[str, _Check] = {
    "image/png": _prefix(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": _prefix(b"\xff\xd8\xff"),
    "image/webp": _riff(b"WEBP"),
    "image/gif": _prefix(b"GIF87a", b"GIF89a"),
    "image/avif": _iso_box,
    "image/heic": _iso_box,
    "video/mp4": _iso_box,
    "video/quicktime": _iso_box,
    "video/webm": _prefix(b"\x1a\x45\xdf\xa3"),
    "video/x-matroska": _prefix(b"\x1a\x45\xdf\xa3"),
    "audio/mpeg": _mp3,
    "audio/wav": _riff(b"WAVE"),
    "audio/mp4": _iso_box,
    "audio/ogg": _prefix(b"OggS"),
    "audio/flac": _prefix(b"fLaC"),
    "audio/webm": _prefix(b"\x1a\x45\xdf\xa3"),
}
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-m4a": "audio/mp4",
    "audio/x-flac": "audio/flac",
}
# Sniffing order: specific signatures first; the loose ones (ISO box, MP3 sync) last.
_SNIFF = ["image/png", "image/jpeg", "image/gif", "image/webp", "audio/wav", "audio/ogg"]
_SNIFF += ["audio/flac", "video/webm", "video/mp4", "audio/mpeg"]


class MediaMismatch(Exception):
    """The bytes are not what the type says, or not the kind of media expected."""


@dataclass(frozen=True)
class MediaType:
    mime: str  # "application/octet-stream" when unknown
    extension: str  # with the dot; ".bin" when unknown
    warning: str | None = None

    @property
    def kind(self) -> str | None:
        known = TYPES.get(self.mime)
        return known[1] if known else None


def canonical(mime: str) -> str:
    return _ALIASES.get(mime, mime)


def served_type(content_type: str | None) -> str:
    """The MIME type of a Content-Type header, lower case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def url_type(url: str) -> str | None:
    ext = posixpath.splitext(unquote(urlsplit(url).path))[1].lower()
    return BY_EXTENSION.get(ext)


def sniff(head: bytes) -> str | None:
    return next((mime for mime in _SNIFF if SIGNATURES[mime](head)), None)


def _is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in {
        "application/json",
        "application/xml",
        "application/xhtml+xml",
        "application/javascript",
    }


# Active content: opened from the gallery or a file manager, a browser runs its scripts with
# the folder's origin (the red team's SVG ran the host's script). Never stored as a result.
ACTIVE = {"image/svg+xml", "text/html", "application/xhtml+xml", "application/xml", "text/xml"}
_ACTIVE_EXTENSIONS = {".svg", ".svgz", ".html", ".htm", ".xhtml", ".xml"}


def _active(served: str, url: str, head: bytes) -> str | None:
    """What active content the result is (by its type, its URL or its first bytes), or None."""
    if served in ACTIVE:
        return served
    ext = posixpath.splitext(unquote(urlsplit(url).path))[1].lower()
    if ext in _ACTIVE_EXTENSIONS:
        return f"a {ext} file"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "markup (SVG, HTML or XML)"
    return None


def resolve(
    content_type: str | None,
    url: str,
    head: bytes,
    *,
    expected: str | None = None,
) -> MediaType:
    """The type of a result from what was served, the URL and the first bytes (at least
    `HEAD` of them, or the whole file when shorter). Raises MediaMismatch.

    `expected` ("image", "video", "audio" or None): the kind the model produces. A type
    known only from the URL's extension is checked against the bytes too. SVG, HTML and
    XML are active content and never a result; for a media model, neither is a type we do
    not know (kept as an inert .bin only when the model's media is unknown)."""
    served = canonical(served_type(content_type))
    active = _active(served, url, head)
    if active is not None:
        raise MediaMismatch(
            f"{active} is active content (a browser would run its scripts); not stored"
        )
    mime: str | None = None
    if served in TYPES:
        mime = served
        check = SIGNATURES.get(mime)
        if check is not None and not check(head):
            raise MediaMismatch(f"served as {mime} but the bytes are not {mime}")
    elif _is_text(served) and expected is not None:
        raise MediaMismatch(f"served as {served} ({len(head)}+ bytes), not {expected} media")
    else:
        mime = sniff(head)
        if mime is None:
            mime = url_type(url)
            check = SIGNATURES.get(canonical(mime or ""))
            if mime is not None and check is not None and not check(head):
                raise MediaMismatch(f"the URL names a {mime} file but the bytes are not one")
    if mime is None:
        what = served or "no Content-Type"
        if expected is not None:
            raise MediaMismatch(f"an unknown type ({what}) where the model makes {expected}")
        return MediaType(
            "application/octet-stream", ".bin", f"unknown media type ({what}); saved as .bin"
        )
    result = MediaType(mime, TYPES[mime][0] if mime in TYPES else ".bin")
    if expected is not None and result.kind not in (None, expected):
        raise MediaMismatch(f"a {result.kind} ({mime}) where the model makes {expected}")
    return result
