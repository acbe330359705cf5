"""Manifest problems, each tied to a place in a file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.errors import UsageError

# A message is printed as one line of `path:line:column: message`; scripts split on lines.
MAX_MESSAGE = 400
_LINE_BREAKS = re.compile(r"[\r\n\u0085\u2028\u2029]+")


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line and at most `limit` characters (a 10 MB value must not flood a log)."""
    flat = _LINE_BREAKS.sub(" ", text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def short(value: Any, limit: int = 60) -> str:
    """repr() of a value from the manifest, cut to about `limit` characters.

    Never builds the full repr of a big list or mapping: those can hold a million values.
    """
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, list):
        text = "[" + ", ".join(short(v, limit) for v in value[:4]) + (", …]" if value[4:] else "]")
    elif isinstance(value, dict):
        items = list(value.items())[:4]
        text = "{" + ", ".join(f"{short(k, limit)}: {short(v, limit)}" for k, v in items)
        text += ", …}" if len(value) > 4 else "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: Any) -> str:
    """A value as the user would write it in YAML/JSON: "text", 10, true, null, [...]."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, str) and len(value) <= 60:
        return json.dumps(value, ensure_ascii=False)
    return short(value)


@dataclass(frozen=True, order=True)
class Issue:
    """One problem, printed as `path:line:column: message` (1-based line and column).

    A warning (`severity="warning"`) prints as `path:line:column: warning: message` and
    does not stop a run: the manifest is valid, but probably not what its author meant.
    """

    path: str
    line: int
    column: int
    message: str
    severity: str = "error"

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", one_line(self.message))

    def __str__(self) -> str:
        tag = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}:{self.column}: {tag}{self.message}"

    def as_warning(self) -> Issue:
        return Issue(self.path, self.line, self.column, self.message, "warning")


class ManifestError(UsageError):
    """A manifest was rejected (exit 2); `issues` holds every problem found, in file order.

    `warnings` holds what would only have been warned about, so `validate` can show both.
    """

    def __init__(self, issues: Iterable[Issue], warnings: Iterable[Issue] = ()) -> None:
        self.issues = sorted(set(issues))
        self.warnings = sorted(set(warnings))
        super().__init__("\n".join(str(i) for i in self.issues))
