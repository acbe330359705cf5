"""Models are data: one JSON file per model, read from kie-models/ folders and the bundled catalog.

A model file (format pinned in MODEL_FORMAT.md) holds the slug sent as createTask's `model`,
its endpoint family (createTask unless it says otherwise), the JSON Schema of its `input`, its
output media, whether Kie has paused it, its price rule and where it was written from. The
bundled catalog lives in `schemas/models/<slug>.json` (a slash in the slug makes a subfolder);
`run-pipeline models pull` writes the same format under `kie-models/`. A manifest's models are
looked up in the `kie-models/` folders of the manifest's folder and each parent, nearest first,
then in the bundled catalog, so a project can pin or add models without touching run-pipeline.

A job's price is decided once, by the manifest loader from the model file the manifest
resolves (`Job.credits`, read through `planner.price_of`): the dry run, the budget, the
summary and the gallery all read that figure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from pipeline.errors import EXIT_USAGE, PipelineError
from pipeline.kie.families import NAMES as FAMILY_NAMES
from pipeline.models import keywords, pricing
from pipeline.models.formats import input_validator
from pipeline.models.pricing import CREDIT_USD
from pipeline.paths import KIE_MODELS, schemas_dir
from pipeline.safefiles import read_bounded

MAX_MODEL_FILE = 8 * 1024 * 1024  # far above any model file: a bound on what is read
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?")
MEDIA = ("image", "video", "audio")

__all__ = [
    "CREDIT_USD",
    "Model",
    "ModelFileError",
    "ModelRegistry",
]


class ModelFileError(PipelineError):
    """A model file that is not valid JSON, not a valid JSON Schema or not a model file."""

    exit_code = EXIT_USAGE


def bundled_dir() -> Path:
    return schemas_dir() / "models"


@dataclass(frozen=True)
class Model:
    name: str
    schema: Mapping[str, Any] = field(repr=False)  # the JSON Schema of createTask's `input`
    validator: Draft202012Validator = field(repr=False, compare=False)
    title: str = ""
    task_types: tuple[str, ...] = ()
    media: str | None = None
    paused: str | None = None  # Kie's pause, as a message for the user; None: available
    price_prose: str | None = None
    price_rule: Mapping[str, Any] | None = field(default=None, repr=False)
    output_rule: int | Mapping[str, Any] | None = field(default=None, repr=False)
    max_download_mb: int | None = None  # output.max_download_mb: the largest result, MB
    source: Mapping[str, Any] = field(default_factory=dict, repr=False)
    path: Path | None = None
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    family: str = "createTask"  # Kie's endpoint family (pipeline.kie.families)

    def _branches(self) -> list[Mapping[str, Any]]:
        """The object schemas an input may match: the schema, or each branch of its oneOf."""
        branches = self.schema.get("oneOf") or self.schema.get("anyOf")
        if isinstance(branches, list) and branches:
            return [b for b in branches if isinstance(b, dict)]
        return [self.schema]

    @property
    def fields(self) -> tuple[str, ...]:
        """Every input field the model knows (for a oneOf input: of any branch)."""
        names: dict[str, None] = dict.fromkeys(self.schema.get("properties", {}))
        for branch in self._branches():
            names.update(dict.fromkeys(branch.get("properties", {})))
        return tuple(names)

    def defaults(self) -> dict[str, Any]:
        """Property defaults the schema declares (filled into every request explicitly).

        For a oneOf input only the defaults every branch agrees on: filling in a field that
        one branch lacks would make that branch's inputs invalid."""
        out = _defaults(self.schema)
        branches = self._branches()
        if branches != [self.schema]:
            common = _defaults(branches[0])
            for branch in branches[1:]:
                theirs = _defaults(branch)
                common = {k: v for k, v in common.items() if k in theirs and theirs[k] == v}
            out.update(common)
        return out

    def max_results(self, task_input: Mapping[str, Any]) -> int | None:
        """How many results (images) one task returns at most; None when unknown."""
        rule = self.output_rule
        if isinstance(rule, int):
            return rule
        if isinstance(rule, Mapping):
            value = task_input.get(str(rule["field"]), rule.get("default", 1))
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and value.isdigit():
                return int(value)
        return None

    def price_for(self, task_input: Mapping[str, Any]) -> Decimal | None:
        """Credits one task costs (schema defaults filled in first), or None when unknown."""
        return pricing.credits(self.price_rule, {**self.defaults(), **task_input})


def _defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    props = schema.get("properties", {})
    return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


def _fail(path: Path, why: str) -> ModelFileError:
    return ModelFileError(f"model file {path}: {why}")


def load_model_file(path: Path, name: str | None = None) -> Model:
    """Read and check one model file; ModelFileError (naming the file) when it is broken."""
    try:
        # A regular file of bounded size only: a FIFO or a device would block or never end.
        data = json.loads(read_bounded(path, MAX_MODEL_FILE).decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise _fail(
            path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read ({exc})") from None
    return model_from_data(data, path, name)


def model_from_data(data: Any, path: Path, name: str | None = None) -> Model:
    if not isinstance(data, dict):
        raise _fail(path, "not a JSON object")
    slug = data.get("model")
    if not isinstance(slug, str) or not MODEL_NAME.fullmatch(slug):
        raise _fail(path, "`model` must be a model name such as kling-2.6/text-to-video")
    if name is not None and slug != name:
        raise _fail(path, f"declares model {slug!r} but is the file of {name!r}")
    schema = data.get("input")
    if not isinstance(schema, dict):
        raise _fail(path, "`input` must be the JSON Schema of the model's input (an object)")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise _fail(path, f"`input` is not a valid JSON Schema at {where}: {exc.message}") from None
    problem = keywords.unsafe(schema)
    if problem:
        raise _fail(path, problem)
    output = data.get("output") or {}
    media = output.get("media") if isinstance(output, dict) else None
    if media is not None and media not in MEDIA:
        raise _fail(path, f"output.media must be one of {', '.join(MEDIA)}")
    results = output.get("max_results") if isinstance(output, dict) else None
    if results is not None and not (
        (isinstance(results, int) and not isinstance(results, bool) and results > 0)
        or (isinstance(results, dict) and isinstance(results.get("field"), str))
    ):
        raise _fail(path, 'output.max_results must be a positive integer or {"field": ...}')
    cap = output.get("max_download_mb") if isinstance(output, dict) else None
    if cap is not None and not (isinstance(cap, int) and not isinstance(cap, bool) and cap > 0):
        raise _fail(path, "output.max_download_mb must be a positive integer (MB)")
    price = data.get("price") or {}
    if not isinstance(price, dict):
        raise _fail(path, "`price` must be an object")
    status = data.get("status") or {"state": "available"}
    if not isinstance(status, dict) or status.get("state") not in ("available", "paused"):
        raise _fail(path, 'status.state must be "available" or "paused"')
    paused = None
    if status["state"] == "paused":
        since = f" since {status['since']}" if status.get("since") else ""
        paused = str(status.get("message") or f"Kie paused {slug}{since}")
    types = data.get("task_types") or []
    kind = data.get("family", "createTask")
    if kind not in FAMILY_NAMES:
        raise _fail(path, f"`family` must be one of {', '.join(FAMILY_NAMES)}, not {kind!r}")
    model = Model(
        name=slug,
        schema=schema,
        validator=input_validator(schema),
        title=str(data.get("title") or slug),
        task_types=tuple(str(t) for t in types) if isinstance(types, list) else (),
        media=media,
        paused=paused,
        price_prose=price.get("prose") if isinstance(price.get("prose"), str) else None,
        price_rule=price.get("rule"),
        output_rule=results,
        max_download_mb=cap,
        source=source if isinstance(source := data.get("source"), dict) else {},
        path=path,
        data=data,
        family=kind,
    )
    problem = pricing.check_rule(model.price_rule, model.fields)
    if problem:
        raise _fail(path, problem)
    return model


def kie_model_folders(folder: Path) -> list[Path]:
    """`kie-models/` of `folder` and of each parent that has one, nearest first."""
    folder = folder.resolve()
    return [p / KIE_MODELS for p in (folder, *folder.parents) if (p / KIE_MODELS).is_dir()]


class ModelRegistry:
    """The models found in `search` folders (first wins), then in the bundled catalog."""

    def __init__(self, search: Sequence[Path] = (), bundled: Path | None = None) -> None:
        self.search = tuple(search)
        self.bundled = bundled or bundled_dir()
        self._cache: dict[str, Model | None] = {}

    @classmethod
    def for_folder(cls, folder: Path) -> ModelRegistry:
        return cls(kie_model_folders(folder))

    @classmethod
    def for_manifest(cls, manifest_path: Path | str) -> ModelRegistry:
        return cls.for_folder(Path(manifest_path).resolve().parent)

    @property
    def folders(self) -> tuple[Path, ...]:
        return (*self.search, self.bundled)

    def file_of(self, name: str) -> Path | None:
        """The file `get(name)` reads, or None. Names are checked first: a name becomes a path,
        and the pattern admits nothing that could leave the folder."""
        if not MODEL_NAME.fullmatch(name):
            return None
        for folder in self.folders:
            path = folder / f"{name}.json"
            if path.is_file():
                return path
        return None

    def get(self, name: str) -> Model | None:
        if name not in self._cache:
            path = self.file_of(name)
            self._cache[name] = None if path is None else load_model_file(path, name)
        return self._cache[name]

    def names(self) -> list[str]:
        found: set[str] = set()
        for folder in self.folders:
            for path in folder.rglob("*.json"):
                name = path.relative_to(folder).with_suffix("").as_posix()
                if MODEL_NAME.fullmatch(name):
                    found.add(name)
        return sorted(found)
