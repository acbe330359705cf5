"""Conditions in Kie's input schemas that no input can meet, and what we keep of them.

apidog (the tool Kie's docs are written in) exports a field's "one of these is required" and
"if ... then ..." rules as `allOf` members, and the docs snapshot kept only part of them:
- bare `{"type": "string"}` members under an object input (Kling 3.0 Omni, 3 pages): no
  object is also a string, so as written the model would refuse every input. They are
  dropped: the rule they stood for is lost, and we do not guess it.
- `anyOf: [{required: [a], properties: {a: {type: string}}}, ...]` (MiniMax H3 reference):
  "a or b is required", with each field restated as a string where the input declares an
  array. The `required` part is kept; the restated type, which contradicts the field's own,
  is dropped.
Each drop is noted in the input's `$comment`. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()


def _restatement(member: Any, fields: Mapping[str, Any]) -> Any:
    """`member` without property types that contradict the object's own fields."""
    if not isinstance(member, dict):
        return member
    out = dict(member)
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [_restatement(m, fields) for m in out[key]]
    props = out.get("properties")
    if isinstance(props, dict):
        kept = {
            name: prop
            for name, prop in props.items()
            if not (
                isinstance(prop, dict)
                and isinstance(fields.get(name), dict)
                and _types(prop)
                and _types(fields[name])
                and not _types(prop) & _types(fields[name])
            )
        }
        if kept != props:
            out["properties"] = kept
    return out


def drop_impossible(schema: dict[str, Any]) -> None:
    """Clean the `allOf` of one object input (in place), noting what was dropped."""
    members = schema.get("allOf")
    if not isinstance(members, list) or "object" not in (_types(schema) or {"object"}):
        return
    fields = schema.get("properties") or {}
    kept: list[Any] = []
    notes: list[str] = []
    for member in members:
        if isinstance(member, dict) and set(member) == {"type"} and "object" not in _types(member):
            notes.append(f"a condition that the input be a {member['type']}")
            continue
        cleaned = _restatement(member, fields)
        if cleaned != member:
            notes.append("field types restated by a condition against the fields' own")
        kept.append(cleaned)
    if kept:
        schema["allOf"] = kept
    else:
        schema.pop("allOf")
    if notes:
        dropped = "; ".join(dict.fromkeys(notes))
        schema["$comment"] = f"Kie's document also holds conditions no input can meet: {dropped}"
