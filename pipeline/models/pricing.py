"""Price rules (format v2): how many credits one task of a model costs, from its input.

Credits are decimals (Kie bills 24.8 credits per second, 5.5 per image); 1 credit = 0.005 USD.
A model file's `price.rule` is null (price unknown) or one of:
  {"flat": C}                                C credits per task
  {"per_second": C, "field": F}              C x number(input[F])  ("5" or 5)
  {"per_result": C, "field": F}              C x number(input[F]), 1 when F is absent
  {"per_1000_chars": C, "field": F}          C x len(input[F]) / 1000, pro rata
  {"table": [ROW, ...], "default": D}        the first ROW whose conditions all hold, else D
ROW = {"when": {FIELD: VALUE | [VALUE, ...]}, "present": [FIELD], "absent": [FIELD]} plus
exactly one of "credits": C or a per_* rule body; D is a number (flat), a non-table rule or
null. `when` compares as JSON does ("5" != 5, true != 1; a list means "any of these").
Rules written by earlier releases (integers, tables of `credits`) are valid as they are.

C is an int or a float in the JSON file and is computed with `Decimal` from its shortest
decimal form, so 24.8 x 5 is exactly 124 and a budget sums without float drift. `check_rule`
refuses a malformed rule when the file is loaded, so `credits` can trust its shape and only
has to cope with inputs (a missing or non-numeric field means "unknown": None).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CREDIT_USD = Decimal("0.005")  # 1 credit = 0.005 USD (Kie's pricing page)
RULE_KINDS = ("flat", "per_second", "per_result", "per_1000_chars", "table")
_PER = ("per_second", "per_result", "per_1000_chars")  # rule bodies that read a field
_BODIES = ("credits", *_PER)  # what a table row charges
_ROW_KEYS = frozenset({"when", "present", "absent", "field", *_BODIES})
_NUMERAL = re.compile(r"\s*\d+(?:\.\d+)?\s*")
_CENT = Decimal("0.01")


# --- credits as numbers -------------------------------------------------------------------


def as_credits(value: int | float | Decimal) -> Decimal:
    """A credit figure as an exact Decimal: a float by its shortest form (24.8, not
    24.800000000000000710...), as it was written in the JSON it came from."""
    if isinstance(value, bool):
        raise TypeError("a credit figure is a number, not a boolean")
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def credits_text(value: Decimal | int | float) -> str:
    """Credits for people: at most two decimals, thousands grouped: 124, 24.8, 1.75, 6,300."""
    rounded = as_credits(value).quantize(_CENT, rounding=ROUND_HALF_UP)
    text = f"{rounded:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def credits_json(value: Decimal) -> int | float:
    """Credits for JSON: an integer when whole (124, not 124.0), else the nearest float,
    whose shortest form is the decimal itself for any figure a price list holds."""
    return int(value) if value == value.to_integral_value() else float(value)


def usd(value: Decimal) -> Decimal:
    return value * CREDIT_USD


def usd_text(value: Decimal) -> str:
    """Dollars for people, rounded half up to the cent: 105 credits -> $0.53."""
    return f"${value.quantize(_CENT, rounding=ROUND_HALF_UP):,.2f}"


# --- checking a rule ------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, Decimal) and value.is_finite()


def _check_amount(value: Any, where: str) -> str | None:
    if isinstance(value, str):
        return f"{where} must be a number of credits, not the string {value!r}"
    if not _is_number(value):
        return f"{where} must be a number of credits (an integer or a decimal)"
    if value < 0:
        return f"{where} must not be negative"
    return None


def _check_field(value: Any, where: str, fields: Collection[str] | None) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{where} must name an input field"
    if fields and value not in fields:
        return f"{where} names {value!r}, which is not an input field of this model"
    return None


def _check_body(
    rule: Mapping[str, Any], where: str, fields: Collection[str] | None, allowed: tuple[str, ...]
) -> str | None:
    """A charge: exactly one of `allowed`, its amount, and the field of a per_* kind."""
    kinds = [k for k in allowed if k in rule]
    if len(kinds) != 1:
        return f"{where} must have exactly one of {', '.join(allowed)}"
    kind = kinds[0]
    problem = _check_amount(rule[kind], f"{where}.{kind}")
    if problem:
        return problem
    if kind in _PER:
        if not isinstance(rule.get("field"), str) or not rule["field"]:
            return f"{where}: {kind} needs a `field` naming an input field"
        return _check_field(rule["field"], f"{where}.field", fields)
    if "field" in rule:
        return f"{where}.field means nothing to {kind}: only the per_* kinds read a field"
    return None


def _check_plain(rule: Mapping[str, Any], where: str, fields: Collection[str] | None) -> str | None:
    """A non-table rule (a whole rule, or a table's default)."""
    unknown = sorted(set(rule) - {*RULE_KINDS, "field"})
    if unknown:
        return f"{where} has an unknown key {unknown[0]!r}"
    if "table" in rule:
        return f"{where} must be a number, a non-table rule or null, not a table"
    return _check_body(rule, where, fields, RULE_KINDS[:-1])


def _check_names(value: Any, where: str, fields: Collection[str] | None) -> str | None:
    if not isinstance(value, list):
        return f"{where} must be a list of input field names"
    for i, name in enumerate(value):
        problem = _check_field(name, f"{where}[{i}]", fields)
        if problem:
            return problem
    return None


def _check_row(row: Any, where: str, fields: Collection[str] | None) -> str | None:
    if not isinstance(row, dict):
        return f"{where} must be an object"
    unknown = sorted(set(row) - _ROW_KEYS)
    if unknown:
        return f"{where} has an unknown key {unknown[0]!r}"
    when = row.get("when")
    if not isinstance(when, dict):
        return f"{where}.when must be an object {{field: value}}"
    for name, value in when.items():
        problem = _check_field(name, f"{where}.when key", fields)
        if problem:
            return problem
        if value == []:
            return f"{where}.when.{name} is an empty list, so the row could never match"
    for key in ("present", "absent"):
        if key in row and (problem := _check_names(row[key], f"{where}.{key}", fields)):
            return problem
    return _check_body(row, where, fields, _BODIES)


def check_rule(rule: Any, fields: Collection[str] | None = None) -> str | None:
    """Why `rule` is not a valid price rule, or None when it is (null counts as valid).

    With `fields` (the model's input field names), a field the rule reads must be one of
    them: a misspelt field would make every price "unknown" without a word."""
    if rule is None:
        return None
    if not isinstance(rule, dict):
        return "price.rule must be an object or null"
    kinds = [k for k in RULE_KINDS if k in rule]
    if len(kinds) != 1:
        return f"price.rule must have exactly one of {', '.join(RULE_KINDS)}"
    if kinds[0] != "table":
        return _check_plain(rule, "price.rule", fields)
    unknown = sorted(set(rule) - {"table", "default"})
    if unknown:
        return f"price.rule has an unknown key {unknown[0]!r}"
    rows = rule["table"]
    if not isinstance(rows, list):
        return "price.rule.table must be a list of rows"
    for i, row in enumerate(rows):
        problem = _check_row(row, f"price.rule.table[{i}]", fields)
        if problem:
            return problem
    default = rule.get("default")
    if default is None:
        return None
    if isinstance(default, dict):
        return _check_plain(default, "price.rule.default", fields)
    return _check_amount(default, "price.rule.default")


# --- evaluating a rule ----------------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
    """A count or a length from an input value: 5, 5.5 or "5"; None when not a number."""
    if _is_number(value) and value >= 0:
        return as_credits(value)
    if isinstance(value, str) and _NUMERAL.fullmatch(value):
        return Decimal(value.strip())
    return None


def _same(a: Any, b: Any) -> bool:
    """JSON equality: "5" is not 5 and true is not 1 (Kie is strict about types, so are
    we), but 5 is 5.0, since JSON has one kind of number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list) and not value)


def _holds(row: Mapping[str, Any], task_input: Mapping[str, Any]) -> bool:
    for name, wanted in row["when"].items():
        if name not in task_input:
            return False
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same(task_input[name], option) for option in options):
            return False
    if any(_empty(task_input.get(name)) for name in row.get("present", ())):
        return False
    return all(_empty(task_input.get(name)) for name in row.get("absent", ()))


def _charge(rule: Mapping[str, Any], task_input: Mapping[str, Any]) -> Decimal | None:
    """The credits of a non-table rule or a table row's body."""
    for key in ("flat", "credits"):
        if key in rule:
            return as_credits(rule[key])
    value = task_input.get(rule["field"])
    if "per_second" in rule:
        seconds = _number(value)
        return None if seconds is None else as_credits(rule["per_second"]) * seconds
    if "per_result" in rule:
        results = Decimal(1) if value is None else _number(value)
        return None if results is None else as_credits(rule["per_result"]) * results
    if not isinstance(value, str):
        return None  # no text, or a reference resolved only at submit time
    return as_credits(rule["per_1000_chars"]) * len(value) / 1000


def credits(rule: Mapping[str, Any] | None, task_input: Mapping[str, Any]) -> Decimal | None:
    """Credits of one task with `task_input` (defaults already filled in); None: unknown."""
    if rule is None:
        return None
    if "table" not in rule:
        return _charge(rule, task_input)
    for row in rule["table"]:
        if _holds(row, task_input):
            return _charge(row, task_input)
    default = rule.get("default")
    if isinstance(default, Mapping):
        return _charge(default, task_input)
    return None if default is None else as_credits(default)


# --- describing a rule ----------------------------------------------------------------------


def _body_text(rule: Mapping[str, Any]) -> str:
    for key in ("flat", "credits"):
        if key in rule:
            return f"{credits_text(rule[key])} credits per task"
    if "per_second" in rule:
        return f"{credits_text(rule['per_second'])} credits per second of `{rule['field']}`"
    if "per_result" in rule:
        return f"{credits_text(rule['per_result'])} credits per result (`{rule['field']}`)"
    amount = credits_text(rule["per_1000_chars"])
    return f"{amount} credits per 1000 characters of `{rule['field']}`"


def describe(rule: Mapping[str, Any] | None) -> str:
    """One line for `models show`: what the rule charges."""
    if rule is None:
        return "price unknown (no rule)"
    if "table" not in rule:
        return _body_text(rule)
    rows = rule["table"]
    fields = {k for row in rows for k in row["when"]}
    fields |= {k for row in rows for key in ("present", "absent") for k in row.get(key, ())}
    by = ", ".join(sorted(fields)) or "nothing"
    default = rule.get("default")
    if default is None:
        otherwise = "else unknown"
    elif isinstance(default, Mapping):
        otherwise = f"else {_body_text(default)}"
    else:
        otherwise = f"else {credits_text(default)} credits per task"
    return f"a table of {len(rows)} prices by {by} ({otherwise})"
