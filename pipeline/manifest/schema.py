"""JSON Schema validation that speaks the user's language and points at the YAML node at fault."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pipeline.manifest.errors import Issue
from pipeline.manifest.yamlsource import Located, Path_
from pipeline.models import schemas_dir

# Job keys the runner itself reads; every other job key is an input field of the model.
RUNNER_KEYS = frozenset({"id", "model", "prompt", "prompt_file", "callback_url", "matrix"})

_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "true or false", "object": "a mapping", "array": "a list", "null": "empty",
}


@cache
def manifest_validator() -> Draft202012Validator:
    path = schemas_dir() / "manifest.schema.json"
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def label(path: Sequence[str | int]) -> str:
    """`jobs[2].n_frames` style name of a path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "manifest"


def kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _is_model_field(path: Path_) -> bool:
    """Paths that the model's own schema checks (with better context), not the manifest's."""
    if len(path) >= 3 and path[0] == "jobs":
        return path[2] not in RUNNER_KEYS
    return len(path) >= 2 and path[0] == "defaults" and path[1] not in RUNNER_KEYS


def describe(error: ValidationError, name: str, field: str) -> str:
    """A one-line, human message for one schema error about `field`, shown as `name`."""
    v, inst, schema = error.validator, error.instance, error.schema
    allowed: Any = error.validator_value
    if v == "enum":
        options = ", ".join(json.dumps(o) for o in allowed)
        if isinstance(inst, int | float) and not isinstance(inst, bool) and any(
            str(inst) == o for o in allowed
        ):
            return (f"{name} must be a string: write {field}: \"{inst}\" "
                    f"(quoted); allowed: {options}")
        return f"{name} is {json.dumps(inst, default=str)}, expected one of {options}"
    if v == "const":
        return f"{name} must be {json.dumps(allowed)}"
    if v == "type":
        names = [allowed] if isinstance(allowed, str) else list(allowed)
        want = " or ".join(_TYPE_NAMES.get(t, t) for t in names)
        return f"{name} must be {want}, not {kind(inst)}"
    if v == "pattern" and field == "id":
        return (f"job id {inst!r} is not a safe file name: use lowercase letters, digits, "
                "'.', '_' and '-', starting with a letter or digit, at most 64 characters")
    if v == "pattern" and field.endswith("_rate"):
        return f"{name} {inst!r} is not a rate: write COUNT/SECONDS, e.g. \"20/10\""
    if v == "pattern" and field == "prompt":
        return f"{name} is empty or only whitespace"
    if v == "minLength" and field == "prompt":
        return f"{name} is empty"
    if v == "maxLength" and isinstance(inst, str):
        return f"{name} is {len(inst)} characters, over the limit of {allowed}"
    if v == "minItems" and isinstance(inst, list) and not inst:
        return f"{name} must not be empty"
    if v in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        return f"{name}: {error.message}"
    title = schema.get("title") if isinstance(schema, dict) else None
    return f"{name}: {error.message}" + (f" ({title})" if title else "")


def schema_issues(
    located: Located,
    validator: Draft202012Validator,
    instance: Any,
    base: Path_ = (),
    *,
    skip_model_fields: bool = False,
    where: Any = None,
) -> list[Issue]:
    """Every schema error of `instance` (found at `base` in the document) as an Issue.

    `where(path) -> Path_` may redirect a path to the node that really set the value (for a
    job merged from defaults and matrix values).
    """
    issues: list[Issue] = []
    for error in validator.iter_errors(instance):
        path: Path_ = (*base, *error.absolute_path)
        if skip_model_fields and _is_model_field(path):
            continue
        at = where(path) if where else path
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            if base == () and len(path) in (2, 3) and path[0] == "jobs":
                allowed |= RUNNER_KEYS
            for extra in sorted(set(error.instance) - allowed):
                at_key = where((*path, extra)) if where else (*path, extra)
                issues.append(located.issue(
                    at_key, f"unknown key {extra!r} in {label(path)}"
                    + did_you_mean(extra, allowed), key=True))
            continue
        if error.validator == "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else "?"
            issues.append(located.issue(at, f"{label(path)}: missing required key {missing!r}"))
            continue
        field = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
        name = label(at) if not at or at[-1] == field else f"{field} (from {label(at)})"
        issues.append(located.issue(at, describe(error, name, field)))
    return issues
