"""Prompt files: UTF-8 text beside the manifest, never outside its folder."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.manifest.errors import short

MAX_PROMPT_FILE_BYTES = 1024 * 1024


class PromptFiles:
    """Reads prompt files relative to one folder, each at most once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self._texts: dict[Path, str] = {}

    def read(self, rel: str) -> tuple[str | None, str | None]:
        """(text, None), or (None, why not) as a one-line message."""
        name = f"prompt_file {short(rel)}"
        if "\0" in rel:
            return None, f"{name} contains a NUL character"
        if Path(rel).is_absolute() or rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel):
            return None, f"{name} must be a path relative to the manifest"
        try:
            # resolve() follows symbolic links, so a link pointing outside is caught too.
            target = (self.folder / rel).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            return None, f"{name} cannot be resolved: {getattr(exc, 'strerror', None) or exc}"
        if not target.is_relative_to(self.folder):
            return None, (
                f"{name} points outside the manifest's folder (through '..' or a "
                "symbolic link); refused"
            )
        if target in self._texts:
            return self._texts[target], None
        try:
            if not target.exists():
                return None, f"{name} not found (looked in {self.folder})"
            if not target.is_file():
                return None, f"{name} is not a regular file"
            if target.stat().st_size > MAX_PROMPT_FILE_BYTES:
                return None, f"{name} is larger than 1 MB"
            text = target.read_text(encoding="utf-8-sig").strip()
        except UnicodeDecodeError:
            return None, f"{name} is not valid UTF-8 text"
        except OSError as exc:
            return None, f"{name} cannot be read: {exc.strerror or exc}"
        self._texts[target] = text
        return text, None
