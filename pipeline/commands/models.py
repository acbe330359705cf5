"""`run-pipeline models list|pull|show`: Kie's catalog from the command line.

`list` and `pull` call the catalog with the key from KIE_API_KEY (1 call per second at most);
without a key, `list` lists the bundled catalog (generated from Kie's docs snapshot) instead;
`show` reads the model files through the same lookup a manifest in the current folder would
use (kie-models/ folders up from here, then the bundled catalog) and makes no call.
"""

from __future__ import annotations

import asyncio
import datetime
import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from pipeline.cli.requests import ModelsRequest
from pipeline.errors import EXIT_OK, ServiceStop, UsageError
from pipeline.kie.client import AuthError, KieClient, KieError
from pipeline.kie.target import resolve_target
from pipeline.models import pricing
from pipeline.models.generate import SNAPSHOT, snapshot_date
from pipeline.models.pull import CatalogSession, pull
from pipeline.models.registry import MODEL_NAME, Model, ModelFileError, ModelRegistry
from pipeline.outputs.runlog import printable
from pipeline.paths import KIE_MODELS


def run(
    request: ModelsRequest, *, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> int:
    if request.action == "show":
        return _show(request.names[0], as_json=request.json, stdout=stdout)
    for name in request.names:
        if not MODEL_NAME.fullmatch(name):
            raise UsageError(f"not a model name: {name!r} (e.g. kling-2.6/text-to-video)")
    if request.action == "list" and not environ.get("KIE_API_KEY", "").strip():
        # No key yet: a newcomer can still browse, from the catalog bundled with us.
        return bundled_list(request, stdout)
    target = resolve_target(request.base_url, environ)
    try:
        return asyncio.run(_remote(request, target.base_url, target.api_key, stdout, stderr))
    except AuthError as exc:
        raise ServiceStop(f"Kie refused the API key: {exc.message}") from None
    except KieError as exc:
        raise ServiceStop(f"Kie's catalog did not answer as expected: {exc.message}") from None


async def _remote(
    request: ModelsRequest, base_url: str, key: str, stdout: TextIO, stderr: TextIO
) -> int:
    async with KieClient(base_url, key) as client:
        session = CatalogSession(client)
        if request.action == "list":
            # Kie's taskType filter is exact ("Text to Video"): types are matched here, as
            # users write them.
            found = await session.list_models(None, request.search)
            models = [m for m in found if type_matches(request.type, m.get("taskType"))]
            if request.json:
                stdout.write(json.dumps({"total": len(models), "models": models}, indent=2) + "\n")
            else:
                _table(models, stdout)
            return EXIT_OK
        dest = request.dir or Path.cwd() / KIE_MODELS
        registry = ModelRegistry([dest.resolve(), *ModelRegistry.for_folder(Path.cwd()).search])

        def previous(name: str) -> dict[str, Any] | None:
            try:
                model = registry.get(name)
            except ModelFileError:
                return None  # a broken file of ours is simply replaced
            return dict(model.data) if model else None

        today = datetime.datetime.now(datetime.UTC).date().isoformat()
        report = await pull(
            session, list(request.names), dest, base_url=base_url, fetched=today, previous=previous
        )
    for line in report.lines:
        print(printable(line), file=stdout)
    for line in report.errors:
        print(f"run-pipeline models pull: {printable(line)}", file=stderr)
    return report.exit_code


def _table(models: list[dict[str, Any]], out: TextIO) -> None:
    # Every cell is the catalog's text: shown with its control characters escaped.
    rows = [
        (
            printable(str(m.get("model") or "")),
            printable(", ".join(str(t) for t in m.get("taskType") or [])),
            printable(str(m.get("pricingDesc") or "price unknown")),
        )
        for m in models
    ]
    header = ("MODEL", "TYPE", "PRICE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip(), file=out)
    print(f"{len(rows)} model{'' if len(rows) == 1 else 's'}", file=out)


def type_matches(wanted: str | None, types: Any) -> bool:
    """`--type` as users write it: case does not matter, nor `-` or `_` for a space, and
    every word must be in one of the model's types ("video" is "Text to Video" and
    "Image to Video"; "text to video" only the first)."""
    if not wanted:
        return True
    words = wanted.replace("-", " ").replace("_", " ").casefold().split()
    names = [str(t).casefold() for t in types or ()] if isinstance(types, list) else []
    return any(all(word in name.split() for word in words) for name in names)


def close_names(name: str, known: list[str], limit: int = 5) -> list[str]:
    """Names like `name`: spelled alike, or holding it (or its last part) as a whole."""
    close = difflib.get_close_matches(name, known, n=limit, cutoff=0.6)
    tail = name.casefold().rsplit("/", 1)[-1]
    holding = [k for k in known if tail and tail in k.casefold() and k not in close]
    return (close + holding)[:limit]


def bundled_list(request: ModelsRequest, stdout: TextIO) -> int:
    """`models list` without a key: the bundled catalog, marked as such, with its date."""
    registry = ModelRegistry([])
    text = (request.search or "").casefold()
    models = []
    for name in registry.names():
        model = registry.get(name)
        if model is None or not type_matches(request.type, list(model.task_types)):
            continue
        if text and text not in name.casefold() and text not in model.title.casefold():
            continue
        models.append(
            {
                "model": name,
                "title": model.title,
                "taskType": list(model.task_types),
                "pricingDesc": model.price_prose,
                "status": "paused" if model.paused else "available",
            }
        )
    date = snapshot_date(Path(SNAPSHOT))
    if request.json:
        listing = {"source": "bundled", "snapshot": date, "total": len(models), "models": models}
        stdout.write(json.dumps(listing, indent=2) + "\n")
        return EXIT_OK
    print(
        f"The catalog bundled with run-pipeline (Kie's docs of {date}); KIE_API_KEY is not "
        "set, so this is not Kie's live catalog.",
        file=stdout,
    )
    _table(models, stdout)
    return EXIT_OK


def _show(name: str, *, as_json: bool, stdout: TextIO) -> int:
    registry = ModelRegistry.for_folder(Path.cwd())
    model = registry.get(name)
    if model is None:
        close = close_names(name, registry.names())
        hint = f"; close names: {', '.join(close)}" if close else ""
        where = " nor ".join(str(f) for f in registry.folders)
        raise UsageError(f"unknown model {name!r}{hint} (not in {where})")
    if as_json:
        stdout.write(json.dumps({**model.data, "path": str(model.path)}, indent=2) + "\n")
        return EXIT_OK
    for line in describe(model, bundled=registry.bundled):
        print(printable(line), file=stdout)  # a pulled file holds the catalog's text
    return EXIT_OK


def describe(model: Model, *, bundled: Path) -> list[str]:
    """`models show`: the model in a few lines, then one line per input field."""
    where = "bundled" if model.path and model.path.is_relative_to(bundled) else "kie-models"
    results = model.output_rule
    if isinstance(results, Mapping):
        count = f"up to `{results['field']}` results (default {results.get('default', 1)})"
    else:
        count = f"{results or 1} result{'' if results in (None, 1) else 's'}"
    source = model.source or {}
    lines = [
        f"{model.name}: {model.title}",
        f"  file:    {model.path} ({where})",
        f"  types:   {', '.join(model.task_types) or 'unknown'}",
        f"  output:  {model.media or 'unknown media'}, {count}",
        f"  status:  {'PAUSED: ' + model.paused if model.paused else 'available'}",
        f"  price:   {model.price_prose or 'no price given'}",
        f"           rule: {pricing.describe(model.price_rule)}",
        f"  source:  {source.get('url', 'unknown')} (fetched {source.get('fetched', '?')})",
        "  input:",
    ]
    if model.family != "createTask":  # its own endpoints, not createTask
        operation = source.get("operation") or "its own endpoints"
        lines.insert(2, f"  family:  {model.family} ({operation})")
    branches = model.schema.get("oneOf") or [model.schema]
    for index, branch in enumerate(branches, 1):
        if len(branches) > 1:
            lines.append(f"    one of {index}/{len(branches)}: {branch.get('title', '')}".rstrip())
        required = set(branch.get("required", ()))
        props = branch.get("properties", {})
        width = max((len(k) for k in props), default=0)
        for key, spec in props.items():
            lines.append(f"    {key:<{width}}  {_field(spec, key in required)}")
    return lines


def _field(spec: Mapping[str, Any], required: bool) -> str:
    parts: list[str] = []
    if "enum" in spec:
        parts.append(" | ".join(json.dumps(v) for v in spec["enum"]))
    else:
        kind = spec.get("type", "any")
        kind = "/".join(kind) if isinstance(kind, list) else str(kind)
        if kind == "array" and isinstance(spec.get("items"), dict):
            kind = f"list of {spec['items'].get('type', 'any')}"
        parts.append(kind)
    limits = [
        f"{label} {spec[key]}"
        for key, label in (
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minimum", "min"),
            ("maximum", "max"),
            ("minItems", "min items"),
            ("maxItems", "max items"),
        )
        if key in spec
    ]
    parts += limits
    if spec.get("x-media"):
        parts.append(f"{spec['x-media']} URL")
    if required:
        parts.append("required")
    elif "default" in spec:
        parts.append(f"default {json.dumps(spec['default'])}")
    return ", ".join(parts)


__all__ = ["run"]
