"""PyYAML's errors, translated: where the problem really is and the edit that fixes it."""

from __future__ import annotations

import re

import yaml

from pipeline.manifest.errors import Issue, ManifestError, short
from pipeline.manifest.hints import mapping_values_hint, unclosed_quote

LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as one


def text_end(text: str) -> tuple[int, int]:
    """Line and column just after the last character of `text`."""
    breaks = [m.end() for m in LINE_BREAK.finditer(text)]
    return len(breaks) + 1, len(text) - (breaks[-1] if breaks else 0) + 1


def clamp(end: tuple[int, int], line: int, col: int) -> tuple[int, int]:
    """Keep a position inside the file: libyaml reports the end of a file that does not end
    with a newline as the start of the (missing) next line."""
    return (line, col) if line <= end[0] else end


def yaml_error(path: str, text: str, exc: yaml.MarkedYAMLError) -> ManifestError:
    opened = exc.context_mark
    if exc.context == "while scanning a quoted scalar" and opened is not None:
        # Reported at the end of the file by YAML; the user needs the quote itself.
        line, col = opened.line + 1, opened.column + 1
        quote = text[opened.index : opened.index + 1] if opened.index < len(text) else '"'
        return ManifestError(
            [Issue(path, line, col, unclosed_quote(line, col, quote if quote in "'\"" else '"'))]
        )
    mark = exc.problem_mark or exc.context_mark
    line, col = clamp(text_end(text), mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    if exc.context == "expected a single document in the stream":
        return ManifestError(
            [
                Issue(
                    path,
                    line,
                    col,
                    "a second YAML document starts here: a "
                    "manifest is one document (remove the '---' line and "
                    "what follows, or split it into two files)",
                )
            ]
        )
    rest = text[mark.index :] if mark and 0 <= mark.index <= len(text) else ""
    lines = LINE_BREAK.split(text)
    here = lines[line - 1] if line <= len(lines) else ""
    if "undefined alias" in problem and rest.startswith("*"):
        name = re.match(r"\*([^\s,\[\]{}]*)", rest)
        problem = f"found undefined alias {short(name.group(1) if name else rest[:20])}"
    if rest.startswith("\t") or "\t" in here[: len(here) - len(here.lstrip())] or "tab" in problem:
        problem += " (YAML does not allow tabs for indentation: use spaces)"
    if "mapping values are not allowed" in problem:
        problem += mapping_values_hint(here)
    context = f" ({exc.context})" if exc.context and "tabs" not in problem else ""
    return ManifestError(
        [Issue(path, line, col, f"YAML syntax error: {problem}{context}{_open_quote(lines, line)}")]
    )


_OPENING = re.compile(r"^(\s*(?:-\s+)?(?:[^\s#'\"][^:#]*:\s+)?)([\"'])")


def _open_quote(lines: list[str], before: int) -> str:
    """A hint when a line above the error opens a quoted value and does not close it: the
    string then runs on into the following lines and YAML trips over them later."""
    for number, text in enumerate(lines[: before - 1], start=1):
        match = _OPENING.match(text)
        if not match:
            continue
        quote, rest = match.group(2), text[match.end() :]
        closed = re.search(r'(?<!\\)"' if quote == '"' else r"'(?!')", rest.replace("''", ""))
        if not closed:
            return f" (the quote opened at {number}:{match.end()} is never closed on its line)"
    return ""


def reader_error(path: str, text: str, exc: yaml.reader.ReaderError) -> ManifestError:
    """A character YAML refuses anywhere (control characters such as U+0007)."""
    char = exc.character if isinstance(exc.character, int) else 0
    # The reader stops at the first such character; its `position` is in bytes for libyaml
    # and in characters for the Python reader, so find the character itself.
    position = max(text.find(chr(char)), 0)
    breaks = [m.end() for m in LINE_BREAK.finditer(text, 0, position)]
    line, col = len(breaks) + 1, position - (breaks[-1] if breaks else 0) + 1
    return ManifestError(
        [
            Issue(
                path,
                line,
                col,
                f"character U+{char:04X} is not allowed in "
                "YAML; remove it (or write it as an escape in a "
                "double-quoted string)",
            )
        ]
    )
