"""Models are data: each model is a name plus a JSON Schema for its `input`, plus prices.

Adding a model means dropping `schemas/models/<model>.json` (and a line in
`schemas/prices.json`); no code changes. The schemas folder sits at the top of the
repository and is copied into the wheel as `pipeline/_schemas`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

DEFAULT_MODEL = "sora-2-text-to-video"


def schemas_dir() -> Path:
    """The folder holding manifest.schema.json, models/ and prices.json."""
    here = Path(__file__).resolve().parent
    packaged = here / "_schemas"
    if packaged.is_dir():
        return packaged
    return here.parent / "schemas"


@dataclass(frozen=True)
class Model:
    name: str
    schema: Mapping[str, Any] = field(repr=False)
    validator: Draft202012Validator = field(repr=False, compare=False)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.schema.get("properties", {}))

    def defaults(self) -> dict[str, Any]:
        """Property defaults the schema declares (filled into every request explicitly)."""
        props = self.schema.get("properties", {})
        return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


class ModelRegistry:
    """The models known in a schemas folder, loaded lazily and cached."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or schemas_dir() / "models"
        self._cache: dict[str, Model | None] = {}

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.json"))

    def get(self, name: str) -> Model | None:
        if name not in self._cache:
            path = self.directory / f"{name}.json"
            # A model name is used as a file name: refuse anything that could leave the folder.
            if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
                self._cache[name] = None
            else:
                schema = json.loads(path.read_text(encoding="utf-8"))
                self._cache[name] = Model(name, schema, Draft202012Validator(schema))
        return self._cache[name]


@dataclass(frozen=True)
class PriceTable:
    credit_usd: float
    rules: Mapping[str, tuple[tuple[Mapping[str, Any], int], ...]]

    def credits_for(self, model: str, task_input: Mapping[str, Any]) -> int | None:
        """Credits one task of `model` with `task_input` costs, or None when unknown."""
        for when, credits in self.rules.get(model, ()):
            if all(task_input.get(k) == v for k, v in when.items()):
                return credits
        return None


@cache
def load_prices(path: Path | None = None) -> PriceTable:
    data = json.loads((path or schemas_dir() / "prices.json").read_text(encoding="utf-8"))
    rules = {
        model: tuple((dict(r.get("when", {})), int(r["credits"])) for r in entries)
        for model, entries in data["models"].items()
    }
    return PriceTable(credit_usd=float(data["credit_usd"]), rules=rules)
