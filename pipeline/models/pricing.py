"""Price rules: how many credits one task of a model costs, from its input.

A model file's `price.rule` is one of (see MODEL_FORMAT.md):
  {"flat": 12}                                  credits per task
  {"per_second": 14, "field": "duration"}      credits x int(input[field])
  {"table": [{"when": {...}, "credits": N}, ...], "default": N | null}   first match wins
      (a row may add "present": [FIELD...] / "absent": [FIELD...], as in RULES.md)
  {"per_result": 18, "field": "max_images"}    credits x input[field] (default 1)
`check_rule` refuses a malformed rule when the file is loaded, so `credits` can trust its
shape and only has to cope with inputs (a missing or non-numeric field means "unknown": None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CREDIT_USD = 0.005  # 1 credit = 0.005 USD (Kie's pricing page)
RULE_KINDS = ("flat", "per_second", "table", "per_result")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_rule(rule: Any) -> str | None:
    """Why `rule` is not a valid price rule, or None when it is (null counts as valid)."""
    if rule is None:
        return None
    if not isinstance(rule, dict):
        return "price.rule must be an object or null"
    kinds = [k for k in RULE_KINDS if k in rule]
    if len(kinds) != 1:
        return f"price.rule must have exactly one of {', '.join(RULE_KINDS)}"
    kind = kinds[0]
    if kind == "table":
        rows = rule["table"]
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("when"), dict) and _is_int(r.get("credits"))
            for r in rows
        ):
            return "price.rule.table must be a list of {when: {...}, credits: integer}"
        if rule.get("default") is not None and not _is_int(rule["default"]):
            return "price.rule.default must be an integer or null"
        return None
    if not _is_int(rule[kind]) or rule[kind] < 0:
        return f"price.rule.{kind} must be a non-negative integer"
    if kind in ("per_second", "per_result") and not isinstance(rule.get("field"), str):
        return f"price.rule of kind {kind} needs a `field` naming an input field"
    return None


def _same(a: Any, b: Any) -> bool:
    """JSON equality: True is not 1, "5" is not 5 (Kie is strict about types, so are we)."""
    return type(a) is type(b) and a == b


def _count(value: Any) -> int | None:
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _given(row: Mapping[str, Any], task_input: Mapping[str, Any]) -> bool:
    """A row's optional `present` / `absent` conditions (a field given and non-empty, or
    missing, null or empty): how the price list tells image-to-video from text-to-video."""
    present = row.get("present") or ()
    absent = row.get("absent") or ()
    return all(not _empty(task_input.get(f)) for f in present) and all(
        _empty(task_input.get(f)) for f in absent
    )


def credits(rule: Mapping[str, Any] | None, task_input: Mapping[str, Any]) -> int | None:
    """Credits of one task with `task_input` (defaults already filled in); None: unknown."""
    if rule is None:
        return None
    if "flat" in rule:
        return int(rule["flat"])
    if "per_second" in rule:
        seconds = _count(task_input.get(rule["field"]))
        return None if seconds is None else int(rule["per_second"]) * seconds
    if "per_result" in rule:
        raw = task_input.get(rule["field"], 1)
        results = _count(raw)
        return None if results is None else int(rule["per_result"]) * results
    for row in rule["table"]:
        when = row["when"]
        if all(k in task_input and _same(task_input[k], v) for k, v in when.items()) and _given(
            row, task_input
        ):
            return int(row["credits"])
    default = rule.get("default")
    return None if default is None else int(default)


def describe(rule: Mapping[str, Any] | None) -> str:
    """One line for `models show`: what the rule charges."""
    if rule is None:
        return "price unknown (no rule)"
    if "flat" in rule:
        return f"{rule['flat']} credits per task"
    if "per_second" in rule:
        return f"{rule['per_second']} credits per second of `{rule['field']}`"
    if "per_result" in rule:
        return f"{rule['per_result']} credits per result (`{rule['field']}`)"
    fields = sorted({k for row in rule["table"] for k in row["when"]})
    return f"a table of {len(rule['table'])} prices by {', '.join(fields) or 'nothing'}"
