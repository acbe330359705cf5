"""Prompt files: UTF-8 text beside the manifest, never outside its folder."""

from __future__ import annotations

from pathlib import Path

from pipeline.manifest.errors import short
from pipeline.manifest.files import inside

MAX_PROMPT_FILE_BYTES = 1024 * 1024


class PromptFiles:
    """Reads prompt files relative to one folder, each at most once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self._texts: dict[Path, str] = {}

    def read(self, rel: str) -> tuple[str | None, str | None]:
        """(text, None), or (None, why not) as a one-line message."""
        name = f"prompt_file {short(rel)}"
        target, problem = inside(self.folder, rel, name)
        if target is None:
            return None, problem
        if target in self._texts:
            return self._texts[target], None
        try:
            if not target.exists():
                return None, f"{name} not found (looked in {self.folder})"
            if not target.is_file():
                return None, f"{name} is not a regular file"
            if target.stat().st_size > MAX_PROMPT_FILE_BYTES:
                return None, f"{name} is larger than 1 MB"
            raw = target.read_bytes()
        except OSError as exc:
            return None, f"{name} cannot be read: {exc.strerror or exc}"
        try:
            text = raw.decode("utf-8-sig").strip()
        except UnicodeDecodeError as exc:
            return None, f"{name} is not valid UTF-8 text{_legacy_hint(raw, exc.start)}"
        self._texts[target] = text
        return text, None


def _legacy_hint(raw: bytes, start: int) -> str:
    """Name the likely encoding (editors on Windows still save Latin-1) and the fix."""
    line = raw[:start].count(b"\n") + 1
    byte = raw[start]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return " (it is UTF-16); save it as UTF-8"
    if byte >= 0x80:
        char = bytes([byte]).decode("cp1252", errors="replace")
        return (
            f" (byte 0x{byte:02x} on line {line}, {char!r} in Latin-1: the file looks like "
            "Latin-1 or Windows-1252 text); save it as UTF-8"
        )
    return "; save it as UTF-8"
