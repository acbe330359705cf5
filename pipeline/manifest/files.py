"""Local files a manifest names: one rule for where they may be, and what input files are.

Prompt files and `{file: PATH}` inputs follow the same rule: PATH is relative to the
manifest's folder and stays inside it (no absolute path, no `..` escape, no symbolic link
out), so a manifest shared in a repository cannot read (or upload) anything beside it.

An input file's type is read from its first bytes, not its name: Kie's file host serves a
file with the Content-Type of its name and models fail on a mismatch, so a JPEG named
`.png` is refused here rather than billed there.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.manifest.errors import short
from pipeline.safefiles import NotRegular, open_regular

# Limits when the model file states none: what Kie's upload pages give for images, and a
# generous bound for video and audio.
DEFAULT_MAX_BYTES = {"image": 10 * 1024 * 1024, "video": 100 * 1024 * 1024}
DEFAULT_MAX_BYTES["audio"] = DEFAULT_MAX_BYTES["video"]
# The extensions each detected type may carry.
EXTENSIONS = {
    "png": ("png",),
    "jpg": ("jpg", "jpeg"),
    "webp": ("webp",),
    "gif": ("gif",),
    "mp4": ("mp4", "m4v", "mov"),  # MP4 and QuickTime are one container family
    "mov": ("mov", "mp4"),
    "mp3": ("mp3",),
    "wav": ("wav",),
}
KIND_NAMES = {
    "png": "PNG",
    "jpg": "JPEG",
    "webp": "WebP",
    "gif": "GIF",
    "mp4": "MP4",
    "mov": "QuickTime",
    "mp3": "MP3",
    "wav": "WAV",
}


def inside(folder: Path, rel: str, name: str) -> tuple[Path | None, str | None]:
    """(resolved path, None) when `rel` names a place inside `folder`, else (None, why not)."""
    if "\0" in rel:
        return None, f"{name} contains a NUL character"
    if Path(rel).is_absolute() or rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel):
        return None, f"{name} must be a path relative to the manifest"
    try:
        # resolve() follows symbolic links, so a link pointing outside is caught too.
        target = (folder / rel).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        return None, f"{name} cannot be resolved: {getattr(exc, 'strerror', None) or exc}"
    if not target.is_relative_to(folder):
        return None, (
            f"{name} points outside the manifest's folder (through '..' or a "
            "symbolic link); refused"
        )
    return target, None


def sniff(head: bytes) -> tuple[str, str] | None:
    """(media, type) from a file's first bytes, e.g. ("image", "png"); None: not known."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "gif"
    if head[4:8] == b"ftyp":
        return "video", "mov" if head[8:12] == b"qt  " else "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio", "wav"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio", "mp3"
    return None


@dataclass(frozen=True)
class InputFile:
    path: Path
    sha256: str  # "" until `InputFiles.hashed`
    media: str
    kind: str  # the detected type, also the true extension: "png", "jpg", "mp4"...
    size: int


class InputFiles:
    """Checks and hashes `{file: PATH}` inputs relative to one folder, each file once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self._seen: dict[Path, InputFile | str] = {}

    def read(self, rel: str) -> InputFile | str:
        """The file's facts, or why it cannot be used (one line)."""
        name = f"file {short(rel)}"
        target, problem = inside(self.folder, rel, name)
        if target is None:
            return str(problem)
        if target not in self._seen:
            self._seen[target] = self._read(target, name)
        return self._seen[target]

    def _read(self, target: Path, name: str) -> InputFile | str:
        """The file's type and size from its first bytes and `fstat`; not yet its hash
        (`hashed`, once the size is known to be within the limit: an 8 GB file is refused
        at once, not after reading it all)."""
        try:
            fd = open_regular(target)
        except FileNotFoundError:
            return f"{name} not found (looked in {self.folder})"
        except NotRegular as exc:
            return f"{name} is not a regular file ({exc.strerror})"
        except OSError as exc:
            return f"{name} cannot be read: {exc.strerror or exc}"
        with os.fdopen(fd, "rb") as handle:
            try:
                size = os.fstat(fd).st_size
                head = handle.read(64)
            except OSError as exc:
                return f"{name} cannot be read: {exc.strerror or exc}"
        found = sniff(head)
        if found is None:
            return (
                f"{name} is not a PNG, JPEG, WebP, GIF, MP4/MOV, MP3 or WAV file "
                "(judged by its content, not its name)"
            )
        media, kind = found
        extension = target.suffix.lower().lstrip(".")
        if extension not in EXTENSIONS[kind]:
            return (
                f"{name} is a {KIND_NAMES[kind]} file but its name ends in "
                f"'.{extension or '(nothing)'}': rename it to .{kind} (Kie's file host serves "
                "a file by its name's type, and models fail on a mismatch)"
            )
        return InputFile(target, "", media, kind, size)

    def hashed(self, found: InputFile, rel: str) -> InputFile | str:
        """`found` with its sha256, read up to the size `fstat` gave (a file that grew or
        was swapped meanwhile is reported, not read without end)."""
        if found.sha256:
            return found
        name = f"file {short(rel)}"
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(open_regular(found.path), "rb") as handle:
                while size <= found.size and (chunk := handle.read(1024 * 1024)):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            return f"{name} cannot be read: {exc.strerror or exc}"
        if size != found.size:
            return f"{name} changed while it was read; validate again"
        done = replace(found, sha256=digest.hexdigest())
        self._seen[found.path] = done
        return done


def size_text(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"
