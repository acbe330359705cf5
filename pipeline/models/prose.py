"""What Kie's field descriptions say that the schema beside them does not. Pure functions.

Kie's documents often state a limit only in a field's description ("Max size: 10.0MB",
"(Min length: 3, Max length: 20000 characters)", "Min: 1 Max: 10 Step: 1", "Optional range
4-12 s"), or what a URL field takes ("Accepted types: image/jpeg, image/png"). We read such
text only in the few fixed phrasings Kie uses, only for a field of the matching type, and never
over a keyword the schema sets itself (where both say something, the schema wins: it is what
Kie's validator reads). A range is not read when a condition follows it ("range is 1-12 when
`enable_sequential=true`"): a limit that holds only sometimes would refuse valid inputs.
Every keyword read from text is listed in the field's `x-limits-from-text`, so a reader (and
the test against Kie's registry) can tell Kie's schema from our reading of its prose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MB = 1024 * 1024
FROM_TEXT = "x-limits-from-text"
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SIZE = re.compile(
    r"(?:max(?:imum)?(?: file)? size:?|must not exceed|not exceeding|no (?:more|larger) than)"
    r"\s*(\d+(?:\.\d+)?)\s*MB",
    re.IGNORECASE,
)
_ACCEPTED = re.compile(r"accepted types?:?\s*((?:[a-z]+/[\w.+-]+[,;\s]*(?:and\s+)?)+)", re.I)
_MIN_LENGTH = re.compile(r"\bmin(?:imum)? length:?\s*(\d+)\b", re.IGNORECASE)
_MAX_LENGTH = re.compile(r"\bmax(?:imum)? length:?\s*(\d+)\s*characters", re.IGNORECASE)
_MIN_MAX_STEP = re.compile(
    rf"\bmin(?:imum)?:\s*{_NUMBER}\s*,?\s*max(?:imum)?:\s*{_NUMBER}(?:\s*,?\s*step:\s*{_NUMBER})?",
    re.IGNORECASE,
)
# "range 4-12 s", "range is 0-2147483647", "range is 3 to 15 seconds": the range must end the
# clause (a stop, a comma, a bracket or the end), so "range is 1-12 when ..." is not read.
_RANGE = re.compile(
    rf"\brange(?: is)?:?\s*{_NUMBER}\s*(?:-|–|to)\s*{_NUMBER}\s*(?:s|seconds?)?\s*(?=[.,;)\]]|$)",
    re.IGNORECASE,
)


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()


def _num(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def max_bytes(description: str) -> int | None:
    """The file size limit a description states ("Max size: 10.0MB"), in bytes."""
    found = {_num(m) for m in _SIZE.findall(description)}
    if len(found) != 1:  # none, or two different limits: not ours to choose
        return None
    return int(float(found.pop()) * MB)


def accepted_media(description: str) -> str | None:
    """ "image", "video" or "audio" when the accepted MIME types are all of one kind."""
    match = _ACCEPTED.search(description)
    if not match:
        return None
    kinds = {t.split("/")[0].lower() for t in re.findall(r"[a-z]+/[\w.+-]+", match.group(1), re.I)}
    return kinds.pop() if len(kinds) == 1 and kinds <= {"image", "video", "audio"} else None


def limits(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Keywords a field's description states and its schema lacks (see the module's doc)."""
    text = str(schema.get("description") or "")
    types = _types(schema)
    if not text or "enum" in schema or "const" in schema:
        return {}
    found: dict[str, Any] = {}
    if types == {"string"}:
        if len(mins := set(_MIN_LENGTH.findall(text))) == 1:
            found["minLength"] = int(mins.pop())
        if len(maxes := set(_MAX_LENGTH.findall(text))) == 1:
            found["maxLength"] = int(maxes.pop())
    elif types and types <= {"integer", "number"}:
        steps = _MIN_MAX_STEP.findall(text)
        ranges = _RANGE.findall(text)
        if len(steps) == 1 and not ranges:
            low, high, step = steps[0]
            found["minimum"], found["maximum"] = _num(low), _num(high)
            # A fractional step would be read as multipleOf, which floats cannot check
            # exactly (0.3 is not a multiple of 0.1 in binary): only whole steps are kept.
            if step and float(step).is_integer() and float(step) > 1:
                found["multipleOf"] = int(float(step))
        elif len(ranges) == 1 and not steps:
            low, high = ranges[0]
            found["minimum"], found["maximum"] = _num(low), _num(high)
        if "minimum" in found and found["minimum"] > found["maximum"]:
            return {}
    return {k: v for k, v in found.items() if k not in schema}


def apply_limits(schema: dict[str, Any]) -> None:
    """Add what `limits` reads to `schema` (in place), naming each keyword in FROM_TEXT."""
    read = limits(schema)
    if read:
        schema.update(read)
        schema[FROM_TEXT] = sorted({*schema.get(FROM_TEXT, ()), *read})
