"""What the simulator knows of each model on Kie's market, read from the model files.

The simulator reads the files as plain JSON (the pinned format of `schemas/models/`, see
MODEL_FORMAT), so it depends on no loader of the product: what it must reproduce is Kie, not
the runner's reading of it. A price rule is the one thing it evaluates as the runner does
(pricing.credits, a pure function of the rule format): Kie charges what its price list says,
decimals included (24.8 credits per second), and the rules are that list.

Files of the older format (the file *is* the input schema, prices
in `schemas/prices.json`) are still understood: a video model, one result per task, and the
Sora 2 ones paused, as on Kie since 2026-06-11.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from pipeline.models import pricing
from pipeline.models.formats import input_validator
from pipeline.paths import schemas_dir

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
SORA_PAUSED = "Kie paused all Sora 2 models on 2026-06-11; OpenAI shut Sora 2 down on 2026-09-24"
MAX_RESULTS = 16  # more images than any model offers; bounds what a bad input can ask for


@dataclass(frozen=True)
class SimModel:
    name: str
    schema: Mapping[str, Any] = field(repr=False)
    validator: Draft202012Validator = field(repr=False, compare=False)
    media: str = "video"  # "image" | "video" | "audio"
    max_results: Any = 1  # an int, or {"field": name, "default": n}
    paused: str | None = None  # the paused message, when the model file says paused
    price: Any = None  # the price rule of the model file, or None
    family: str = "createTask"  # the endpoints that run it

    def defaults(self) -> dict[str, Any]:
        props = self.schema.get("properties", {})
        return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}

    def result_count(self, task_input: Mapping[str, Any]) -> int:
        rule = self.max_results
        if isinstance(rule, Mapping):
            value = task_input.get(str(rule.get("field")), rule.get("default", 1))
            count = _int(value)
            count = count if count is not None else _int(rule.get("default", 1)) or 1
        else:
            count = _int(rule) or 1
        return min(max(count, 1), MAX_RESULTS)

    def credits(self, task_input: Mapping[str, Any], fallback: int) -> Decimal:
        """Credits one task costs by the model's rule (a decimal: 24.8 x 5 s = 124);
        `fallback` when there is none, or when it gives no price for this input."""
        rule = self.price
        if not isinstance(rule, Mapping):
            return Decimal(fallback)
        price = pricing.credits(rule, task_input)
        return Decimal(fallback) if price is None else price

    def seconds(self, task_input: Mapping[str, Any]) -> int | None:
        """The video length the input asks for, when it names one."""
        for name in ("duration", "n_frames"):
            value = _int(task_input.get(name))
            if value is not None:
                return value
        return None


def _rule(rule: Any) -> Any:
    """The rule when it is well formed; else None (the fallback price), not a crash."""
    return rule if pricing.check_rule(rule) is None else None


def _int(value: object) -> int | None:
    """An int from an int or a numeric string ("10", "10s"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = re.match(r"^\s*(\d+)", value)
        return int(match.group(1)) if match else None
    return None


class Market:
    """Model files found in `dirs` (nearest first), then the bundled catalog; cached."""

    def __init__(self, dirs: Sequence[str | Path] = ()) -> None:
        self._dirs = [Path(d) for d in dirs] + [schemas_dir() / "models"]
        self._lock = threading.Lock()
        self._cache: dict[str, SimModel | None] = {}
        self._old_prices: Mapping[str, Any] | None = None

    def get(self, name: str) -> SimModel | None:
        if not NAME.match(name):
            return None
        with self._lock:
            if name not in self._cache:
                self._cache[name] = self._load(name)
            return self._cache[name]

    def _load(self, name: str) -> SimModel | None:
        for folder in self._dirs:
            path = folder / f"{name}.json"
            if path.is_file():
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    return None  # an unreadable file: Kie would not know the model either
                return self._from_file(name, data) if isinstance(data, dict) else None
        return None

    def _from_file(self, name: str, data: Mapping[str, Any]) -> SimModel:
        if isinstance(data.get("input"), Mapping) and "model" in data:
            schema = data["input"]
            output = data.get("output") or {}
            status = data.get("status") or {}
            paused = None
            if status.get("state") == "paused":
                paused = str(status.get("message") or "paused")
            return SimModel(
                name=name,
                schema=schema,
                validator=input_validator(schema),
                media=str(output.get("media") or "video"),
                max_results=output.get("max_results", 1),
                paused=paused,
                price=_rule((data.get("price") or {}).get("rule")),
                family=str(data.get("family") or "createTask"),
            )
        # The older format: the file is the input schema; prices in schemas/prices.json.
        return SimModel(
            name=name,
            schema=data,
            validator=input_validator(data),
            paused=SORA_PAUSED if name.startswith("sora-2") else None,
            price=self._old_price(name),
        )

    def _old_price(self, name: str) -> Any:
        if self._old_prices is None:
            try:
                path = schemas_dir() / "prices.json"
                self._old_prices = json.loads(path.read_text(encoding="utf-8"))["models"]
            except (OSError, ValueError, KeyError, TypeError):
                self._old_prices = {}
        rows = self._old_prices.get(name) if self._old_prices else None
        return {"table": rows, "default": None} if rows else None


def refusal(
    model: SimModel, task_input: Mapping[str, Any], code_500: bool
) -> tuple[int, str] | None:
    """Kie's (code, msg) for an input the model's schema refuses, or None when it is valid.

    Kie ignores input fields it does not know (and still bills), so they are dropped before
    the check. Missing fields and values outside an enum get Kie's wording, with code 500
    when `code_500` (as Kie answers them) else 422; anything else is 422.
    """
    props = model.schema.get("properties")
    if isinstance(props, Mapping) and model.schema.get("additionalProperties") is False:
        task_input = {k: v for k, v in task_input.items() if k in props}
    error = best_match(model.validator.iter_errors(task_input))
    if error is None:
        return None
    where = ".".join(["input", *(str(p) for p in error.absolute_path)])
    code = 500 if code_500 else 422
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next((f for f in error.validator_value if f not in error.instance), "")
        return code, f"{where}.{missing}: This field is required"
    if error.validator == "enum":
        return code, f"{where}: {error.instance!r} is not within the range of allowed options"
    return 422, f"{where}: {error.message}"
