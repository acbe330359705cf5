"""What the manifest reads of a model, and where it finds one (the pinned model API).

The loader codes against the model API pinned in MODEL_FORMAT.md (`Model.media`, `paused`,
`max_results`, `price_for`; `ModelRegistry.for_manifest`). Until `pipeline.models` offers
all of it, this module fills the gaps: it reads pinned model files from the `kie-models/`
folders itself and falls back to the older attributes. Once the catalog has landed every
function here is a one-line pass-through and the fallbacks can be deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jsonschema import Draft202012Validator

from pipeline.models import ModelRegistry, load_prices


class ModelLike(Protocol):
    """The part of `pipeline.models.Model` every version offers."""

    @property
    def name(self) -> str: ...
    @property
    def schema(self) -> Mapping[str, Any]: ...
    @property
    def validator(self) -> Draft202012Validator: ...
    @property
    def fields(self) -> tuple[str, ...]: ...
    def defaults(self) -> dict[str, Any]: ...


class Registry(Protocol):
    def get(self, name: str) -> Any: ...
    def names(self) -> list[str]: ...


def registry_for(manifest: Path) -> Registry:
    """`ModelRegistry.for_manifest(manifest)`: kie-models/ folders nearest first, then bundled."""
    for_manifest = getattr(ModelRegistry, "for_manifest", None)
    if for_manifest is not None:
        registry: Registry = for_manifest(manifest)
        return registry
    folders = [p / "kie-models" for p in Path(manifest).resolve().parent.parents]
    folders.insert(0, Path(manifest).resolve().parent / "kie-models")
    return _Layered([f for f in folders if f.is_dir()], ModelRegistry())


def media(model: Any) -> str | None:
    value = getattr(model, "media", None)
    return value if isinstance(value, str) else None


def paused(model: Any) -> str | None:
    value = getattr(model, "paused", None)
    return value if isinstance(value, str) else None


def max_results(model: Any, task_input: Mapping[str, Any]) -> int | None:
    method = getattr(model, "max_results", None)
    value = method(task_input) if callable(method) else None
    return value if isinstance(value, int) else None


def price(model: Any, task_input: Mapping[str, Any]) -> int | None:
    method = getattr(model, "price_for", None)
    if callable(method):
        value = method(task_input)
        return value if isinstance(value, int) else None
    return load_prices().credits_for(str(model.name), task_input)


@dataclass(frozen=True)
class PinnedModel:
    """A model file of the pinned format, read by the fallback registry below."""

    name: str
    schema: Mapping[str, Any] = field(repr=False)
    validator: Draft202012Validator = field(repr=False, compare=False)
    output: Mapping[str, Any] = field(default_factory=dict)
    status: Mapping[str, Any] = field(default_factory=dict)
    rule: Mapping[str, Any] | None = None
    path: Path | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.schema.get("properties", {}))

    def defaults(self) -> dict[str, Any]:
        props = self.schema.get("properties", {})
        return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}

    @property
    def media(self) -> str | None:
        value = self.output.get("media")
        return value if isinstance(value, str) else None

    @property
    def paused(self) -> str | None:
        if self.status.get("state") != "paused":
            return None
        return str(self.status.get("message") or f"{self.name} is paused on Kie")

    def max_results(self, task_input: Mapping[str, Any]) -> int | None:
        rule = self.output.get("max_results")
        if isinstance(rule, dict):
            rule = task_input.get(str(rule.get("field")), rule.get("default"))
        return rule if isinstance(rule, int) and not isinstance(rule, bool) else None

    def price_for(self, task_input: Mapping[str, Any]) -> int | None:
        rule = self.rule or {}
        try:
            if "flat" in rule:
                return int(rule["flat"])
            if "per_second" in rule:
                return int(rule["per_second"]) * int(task_input[rule["field"]])
            if "per_result" in rule:
                return int(rule["per_result"]) * int(task_input.get(rule["field"], 1))
            for row in rule.get("table", ()):
                if all(str(task_input.get(k)) == str(v) for k, v in row["when"].items()):
                    return int(row["credits"])
        except (KeyError, TypeError, ValueError):
            return None
        default = rule.get("default")
        return default if isinstance(default, int) else None


class _Layered:
    """kie-models/ folders (pinned files), nearest first, then the bundled registry."""

    def __init__(self, folders: Sequence[Path], bundled: ModelRegistry) -> None:
        self.folders = folders
        self.bundled = bundled
        self._cache: dict[str, Any] = {}

    def names(self) -> list[str]:
        local = {
            p.relative_to(f).with_suffix("").as_posix()
            for f in self.folders
            for p in f.rglob("*.json")
        }
        return sorted(local | set(self.bundled.names()))

    def get(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = self._find(name)
        return self._cache[name]

    def _find(self, name: str) -> Any:
        for folder in self.folders:
            path = folder / f"{name}.json"
            if path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
                schema = data["input"]
                price = data.get("price") or {}
                return PinnedModel(
                    name=str(data.get("model", name)),
                    schema=schema,
                    validator=Draft202012Validator(schema),
                    output=data.get("output") or {},
                    status=data.get("status") or {},
                    rule=price.get("rule"),
                    path=path,
                )
        return None if "/" in name else self.bundled.get(name)
