"""JSON Schema validation that speaks the user's language and points at the YAML node at fault."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pipeline.manifest.errors import Issue, short, shown
from pipeline.manifest.yamlsource import Located, Path_
from pipeline.paths import schemas_dir

# Job keys the runner itself reads; every other job key is an input field of the model.
RUNNER_KEYS = frozenset({"id", "model", "prompt", "prompt_file", "callback_url", "matrix"})

# The manifest schema's id pattern, checked again with fullmatch: Python's `$` (which the
# jsonschema package uses) also matches before a final newline, so "abc\n" would pass it.
SAFE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}

Where = Callable[[Path_], Path_]


def inline_refs(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """The schema with every local `#/$defs/...` reference replaced by its definition.

    jsonschema resolves a $ref on every use; with 10,000 jobs that was half the time of
    `validate`. The manifest schema has no recursive references, so inlining is exact
    (sibling keywords of a $ref, e.g. descriptions and defaults, are kept beside it).
    """
    if defs is None:
        defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}
    if isinstance(schema, list):
        return [inline_refs(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        siblings = {k: inline_refs(v, defs) for k, v in schema.items() if k != "$ref"}
        return (
            {**target, **siblings}
            if not set(target) & set(siblings) - _ANNOTATIONS
            else {"allOf": [target], **siblings}
        )
    return _merge_all_of({k: inline_refs(v, defs) for k, v in schema.items()})


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    """Fold `allOf: [{type, properties}]` into its parent when nothing conflicts: the same
    constraints, one pass less per value (a job is validated once instead of twice)."""
    parts = schema.get("allOf")
    if not isinstance(parts, list) or len(parts) != 1 or not isinstance(parts[0], dict):
        return schema
    part = parts[0]
    if not set(part) <= {"type", "properties", *_ANNOTATIONS}:
        return schema
    if part.get("type", schema.get("type")) != schema.get("type"):
        return schema
    props, extra = schema.get("properties", {}), part.get("properties", {})
    if set(props) & set(extra):
        return schema
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    merged["properties"] = {**extra, **props}
    return merged


_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})


@cache
def manifest_validator() -> Draft202012Validator:
    path = schemas_dir() / "manifest.schema.json"
    schema = inline_refs(json.loads(path.read_text(encoding="utf-8")))
    # Model input fields are the model file's to check (with better context); should the
    # editor schema list any on jobs or defaults, they are not checked twice here.
    props = schema.get("properties", {})
    for holder in (props.get("defaults"), props.get("jobs", {}).get("items")):
        if isinstance(holder, dict) and isinstance(holder.get("properties"), dict):
            holder["properties"] = {
                k: v for k, v in holder["properties"].items() if k in RUNNER_KEYS
            }
    return Draft202012Validator(schema)


def label(path: Sequence[str | int], job: str | None = None) -> str:
    """`jobs[2] (hero-film).n_frames` style name of a path (`job`: the id of jobs[N])."""
    out = ""
    for i, part in enumerate(path):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        if i == 1 and job and path[0] == "jobs":
            out += f" ({job})"
    return out or "manifest"


def job_id_at(located: Located, path: Path_) -> str | None:
    """The id written on the job that `path` lies in, if any."""
    if len(path) < 2 or path[0] != "jobs" or not isinstance(path[1], int):
        return None
    jobs = located.data.get("jobs") if isinstance(located.data, dict) else None
    job = jobs[path[1]] if isinstance(jobs, list) and path[1] < len(jobs) else None
    value = job.get("id") if isinstance(job, dict) else None
    return value if isinstance(value, str) and SAFE_ID.fullmatch(value) else None


def kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    options = sorted(choices)
    # Case-insensitive first: `Portrait` is surely `portrait`.
    same = [c for c in options if c.lower() == word.lower()]
    close = same or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unsafe_id(job_id: str) -> str | None:
    """Why `job_id` is not usable as a file name, or None when it is."""
    if SAFE_ID.fullmatch(job_id):
        return None
    return (
        f"job id {short(job_id)} is not a safe file name: use lowercase letters, digits, "
        "'.', '_' and '-', starting with a letter or digit, at most 64 characters"
    )


def describe(error: ValidationError, name: str, field: str) -> str:
    """A one-line, human message for one schema error about `field`, shown as `name`."""
    v, inst, schema = error.validator, error.instance, error.schema
    # The keyword's value (the enum list, the limit...); typed with jsonschema's Unset sentinel.
    rule: Any = error.validator_value
    if v == "enum":
        options = ", ".join(json.dumps(o) for o in rule)
        if (
            isinstance(inst, int | float)
            and not isinstance(inst, bool)
            and any(str(inst) == o for o in rule)
        ):
            return f'{name} must be a string: write {field}: "{inst}" (quoted); allowed: {options}'
        hint = did_you_mean(inst, map(str, rule)) if isinstance(inst, str) else ""
        return f"{name} is {shown(inst)}, expected one of {options}{hint}"
    if v == "const":
        return f"{name} must be {json.dumps(rule)}, not {shown(inst)}"
    if v == "type":
        names = [rule] if isinstance(rule, str) else list(rule)
        want = " or ".join(_TYPE_NAMES.get(t, t) for t in names)
        return f"{name} must be {want}, not {kind(inst)}{_retype(inst, names, field)}"
    if v in {"oneOf", "anyOf"}:
        return _closest(error, name)
    if v == "additionalProperties" and isinstance(inst, dict) and isinstance(schema, dict):
        known = set(schema.get("properties", {}))
        extra = sorted(set(inst) - known)
        if extra:
            return f"unknown key {short(extra[0])}" + (
                did_you_mean(extra[0], known) or f" (this form takes: {', '.join(sorted(known))})"
            )
    if v == "pattern" and field == "id" and isinstance(inst, str):
        return unsafe_id(inst) or f"job id {short(inst)} is not a safe file name"
    if v == "pattern" and field.endswith("_rate"):
        return f'{name} {short(inst)} is not a rate: write COUNT/SECONDS, e.g. "20/10"'
    if v == "format" and rule == "uri" and isinstance(inst, str):
        return _not_a_url(name, inst)
    if v == "pattern" and field == "callback_url":
        return f"{name} {short(inst)} must be an http:// or https:// URL"
    if v == "pattern" and field == "prompt":
        # Same wording as minLength for "", so the two errors of one empty prompt merge.
        return f"{name} is empty" if inst == "" else f"{name} is only whitespace"
    if v == "minLength" and isinstance(inst, str) and not inst:
        return f"{name} is empty"
    if v == "maxLength" and isinstance(inst, str):
        return f"{name} is {len(inst)} characters, over the limit of {rule}"
    if v in {"minItems", "minProperties"} and not inst:
        return f"{name} must not be empty"
    if v == "maxItems" and isinstance(inst, list):
        return f"{name} has {len(inst)} values, over the limit of {rule}"
    if v in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        return f"{name}: {error.message}"
    title = schema.get("title") if isinstance(schema, dict) else None
    return f"{name}: {error.message}" + (f" ({title})" if title else "")


def _not_a_url(name: str, text: str) -> str:
    """A URL field (`format: uri`) holding a path or a quoted reference: Kie would get text."""
    inner = text.strip()
    if inner.startswith("{") and inner.endswith("}"):
        return (
            f"{name} is the text {short(text)}, not a reference: remove the quotes "
            f"(a reference is a mapping, {inner})"
        )
    path = inner.removeprefix("./") or "assets/x.png"
    return (
        f"{name} {short(text)} is not an http(s) URL Kie can fetch: write "
        f"`{{file: {path[:80]}}}` to upload a local file"
    )


def _retype(value: Any, want: Sequence[str], field: str) -> str:
    """How to write `value` as the type the model wants: 5 vs "5" is the usual slip."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if "string" in want and (number or isinstance(value, bool)):
        return f': write {field}: "{shown(value)}" (quoted)'
    if isinstance(value, str) and {"integer", "number"} & set(want):
        try:
            parsed = float(value)
        except ValueError:
            return ""
        if "integer" in want and not parsed.is_integer():
            return ""
        return f": write {field}: {value.strip()} (without quotes)"
    if isinstance(value, str) and "boolean" in want and value.lower() in {"true", "false"}:
        return f": write {field}: {value.lower()} (without quotes)"
    return ""


def _closest(error: ValidationError, name: str) -> str:
    """For `oneOf`/`anyOf`: the form the value came closest to, and what it lacks there."""
    rule: Any = error.validator_value
    branches: list[Any] = list(rule)
    if not error.context:
        return (
            f"{name} matches more than one of the model's {len(branches)} input forms; "
            "remove the fields of all but one"
        )
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        by_branch.setdefault(int(index), []).append(sub)
    best = min(by_branch, key=lambda i: (len(by_branch[i]), i))
    branch = branches[best] if best < len(branches) else {}
    title = branch.get("title") if isinstance(branch, dict) else None
    required = branch.get("required") if isinstance(branch, dict) else None
    called = repr(title) if title else f"form {best + 1}"
    if not title and required:
        called += " (with " + ", ".join(map(str, required)) + ")"
    sub = by_branch[best][0]
    field = next((str(p) for p in reversed(sub.absolute_path) if isinstance(p, str)), "")
    inner = describe(sub, field or name, field)
    return (
        f"{name} matches none of the model's {len(branches)} input forms; "
        f"closest is {called}: {inner}"
    )


def schema_issues(
    located: Located,
    validator: Draft202012Validator,
    instance: Any,
    base: Path_ = (),
    *,
    skip_model_fields: bool = False,
    where: Where | None = None,
    model: str | None = None,
    job: str | None = None,
    known_missing: frozenset[str] = frozenset(),
) -> list[Issue]:
    """Every schema error of `instance` (found at `base` in the document) as an Issue.

    `where(path) -> Path_` may redirect a path to the node that really set the value (for a
    job merged from defaults and matrix values). `model` names the model whose input schema
    `validator` is, for messages about keys it does not know; `job` is the (expanded) id of
    the job, named in messages beside `jobs[N]`. Required keys in `known_missing` were
    already reported in other words.
    """
    issues: list[Issue] = []
    errors = list(validator.iter_errors(instance))
    # One message per value: a wrong type makes its enum and pattern errors noise.
    typed = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    for error in errors:
        if error.validator != "type" and tuple(error.absolute_path) in typed:
            continue
        path: Path_ = (*base, *error.absolute_path)
        if skip_model_fields and _is_model_field(path):
            continue

        def name_of(p: Path_) -> str:
            return label(p, job or job_id_at(located, p))

        at = where(path) if where else path
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            issues += _unknown_keys(located, error, path, where, model, name_of)
            continue
        if error.validator == "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else "?"
            if missing in known_missing:
                continue
            hint = " (start the file with 'version: 1')" if missing == "version" else ""
            issues.append(
                located.issue(at, f"{name_of(path)} is missing required key {missing!r}{hint}")
            )
            continue
        field = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
        # Name the node at fault; say where the value came from when that is elsewhere.
        if at == path or not at or at[-1] == field or isinstance(at[-1], int):
            name = name_of(at)
        else:
            name = f"{field} (from {name_of(at)})"
        issues.append(located.issue(at, describe(error, name, field)))
    return issues


def _is_model_field(path: Path_) -> bool:
    """Paths that the model's own schema checks (with better context), not the manifest's."""
    if len(path) >= 3 and path[0] == "jobs":
        return path[2] not in RUNNER_KEYS
    return len(path) >= 2 and path[0] == "defaults" and path[1] not in RUNNER_KEYS


def _unknown_keys(
    located: Located,
    error: ValidationError,
    path: Path_,
    where: Where | None,
    model: str | None,
    name_of: Callable[[Path_], str],
) -> list[Issue]:
    """Kie ignores keys a model does not know and still bills the task: refuse them here."""
    schema: Any = error.schema
    instance: Any = error.instance
    allowed = set(schema.get("properties", {}))
    if model is not None or (len(path) in (2, 3) and path[0] == "jobs"):
        allowed |= RUNNER_KEYS  # a job (or its input) may also hold the runner's keys
    issues = []
    for extra in sorted(set(instance) - allowed):
        at = where((*path, extra)) if where else (*path, extra)
        # `at` may be a matrix value (…, "matrix", key, index): point at the key itself.
        cut = max(i for i, part in enumerate(at) if part == extra) if extra in at else len(at)
        message = f"unknown key {short(extra)} in {name_of(at[:cut])}"
        hint = did_you_mean(extra, allowed)
        if not hint and model is not None:
            hint = (
                f": not a job key, nor an input of model {model!r} "
                "(Kie would ignore it and still bill the task)"
            )
        issues.append(located.issue(at[: cut + 1], message + hint, key=True))
    return issues
