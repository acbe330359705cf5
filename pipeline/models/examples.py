"""The request examples of Kie's createTask documents. Pure functions.

An operation documents its request as `example` (a JSON object), as OpenAPI's `examples` map
(`{"name": {"value": {...}}}`, often empty), or, in the docs snapshot, as the page's code
block kept as text, which is not always JSON: trailing commas (`"seed": 123456,\n}`) and,
once, a stray word (`"input": {image`). The text is read with trailing commas forgiven and
nothing else: a block that is still not JSON has no example, rather than a repaired guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def from_text(text: str) -> dict[str, Any] | None:
    """A request example written as text, or None when it is empty or not JSON."""
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


def request_example(post: Mapping[str, Any]) -> dict[str, Any] | None:
    """The request example a createTask operation documents (`example`, else the first of
    `examples` that holds an object), or None."""
    content = post.get("requestBody", {}).get("content", {}).get("application/json", {})
    example = content.get("example")
    if isinstance(example, str):
        example = from_text(example)
    if isinstance(example, dict):
        return example
    named = content.get("examples")
    values = [e.get("value") for e in (named or {}).values() if isinstance(e, dict)]
    return next((v for v in values if isinstance(v, dict)), None)


def type_from_example(schema: dict[str, Any], example: Any) -> None:
    """A field whose definition the document lost (`x-unresolved-ref`) is typed boolean only
    when the document's own example sends it a boolean: any other value, or none, says too
    little, and the field stays untyped (any value passes) rather than typed by a guess."""
    if not isinstance(example, dict):
        return
    for name, field in (schema.get("properties") or {}).items():
        lost = isinstance(field, dict) and "x-unresolved-ref" in field and "type" not in field
        if lost and isinstance(example.get(name), bool):
            field["type"] = "boolean"
