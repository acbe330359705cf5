"""Kie's docs snapshot (schemas/kie-docs/en-*/) -> model files, through `openapi.model_file`.

The snapshot's `openapi_endpoint_catalog.json` holds, for each documented operation, its
request body per content type (`request["application/json"]`: `schema`, `example`,
`examples`), not the page's whole OpenAPI document. `endpoint_document` puts an entry back
into the shape of the document `GET /api/v1/models/<model>/schema` answers (one createTask
path, no `components`: the snapshot did not keep them, hence its dangling `$ref`s), so that
the bundled catalog and `models pull` go through the one conversion. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipeline.models import examples, openapi

JSON = "application/json"
# The docs' sections ("docs/en/Market/Video Models/Kling") say what a model makes.
_SECTIONS = {"video models": "video", "image models": "image", "music models": "audio"}


class SnapshotError(openapi.CatalogError):
    """The snapshot holds something the generator cannot turn into a model file."""


def is_job(entry: Mapping[str, Any]) -> bool:
    return entry.get("method") == "POST" and entry.get("path") == openapi.CREATE_TASK


def language(entry: Mapping[str, Any]) -> str:
    """ "en", "zh-CN", ...: the docs tree the page belongs to (its first tag)."""
    tags = entry.get("tags") or [""]
    parts = str(tags[0]).split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "docs" else ""


def declared_model(entry: Mapping[str, Any]) -> str:
    """The model the page's request schema declares (`properties.model.enum`, one value)."""
    try:
        values = entry["request"][JSON]["schema"]["properties"]["model"]["enum"]
    except (KeyError, TypeError):
        raise SnapshotError(f"{entry.get('source_url')}: no properties.model.enum") from None
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
        raise SnapshotError(f"{entry.get('source_url')}: model.enum is not one name: {values}")
    return values[0]


def section(entry: Mapping[str, Any]) -> str | None:
    """The docs section of the page: "Video Models", "Image Models" or "Music Models"."""
    for tag in entry.get("tags") or ():
        for part in str(tag).split("/"):
            name = " ".join(part.split())
            if name.lower() in _SECTIONS:
                return name
    return None


def task_types(model: str, entry: Mapping[str, Any]) -> list[str]:
    """Kie's task types as its slugs spell them ("image-to-video" -> "Image to Video"), else
    the page's docs section ("Video Models"): the snapshot has no listing to read them from."""
    found = re.findall(r"([a-z]+)-to-([a-z]+)", model.split("/")[-1])
    if found:
        return [f"{a.title()} to {b.title()}" for a, b in dict.fromkeys(found)]
    where = section(entry)
    return [where] if where else []


def output_media(entry: Mapping[str, Any]) -> str | None:
    where = section(entry)
    return _SECTIONS[where.lower()] if where else None


def endpoint_document(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAPI document of one createTask entry, as Kie's schema endpoint shapes it."""
    request = entry.get("request") or {}
    if not isinstance(request.get(JSON), dict):
        raise SnapshotError(f"{entry.get('source_url')}: no {JSON} request body")
    content = dict(request[JSON])
    if isinstance(content.get("example"), str):  # a page's code block kept as text
        content["example"] = examples.from_text(content["example"])
    content = {k: v for k, v in content.items() if v is not None}
    post = {
        "summary": entry.get("summary") or "",
        "operationId": entry.get("operationId") or "",
        "requestBody": {"content": {JSON: content}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": entry.get("source_title") or "", "version": ""},
        "paths": {openapi.CREATE_TASK: {"post": post}},
    }


def model_file(
    entry: Mapping[str, Any], *, fetched: str, model: str | None = None
) -> dict[str, Any]:
    """The model file of one createTask entry. `model` overrides the slug the schema declares
    (the overlay's fix for a page that copies another model's enum); the schema's `model`
    enum is then corrected to match, since it is the request we send."""
    document = endpoint_document(entry)
    name = model or declared_model(entry)
    if model is not None:
        schema = document["paths"][openapi.CREATE_TASK]["post"]["requestBody"]["content"][JSON]
        schema["schema"] = _with_model(schema["schema"], model)
    data = openapi.model_file(
        name,
        document,
        listing={"title": entry.get("summary") or name, "taskType": task_types(name, entry)},
        pricing_desc=None,
        source_url=str(entry.get("source_url") or ""),
        fetched=fetched,
    )
    data["output"] = openapi.output_of(data["input"], output_media(entry))
    return data


def _with_model(schema: Mapping[str, Any], model: str) -> dict[str, Any]:
    props = dict(schema.get("properties") or {})
    props["model"] = {**props.get("model", {}), "enum": [model], "default": model}
    return {**schema, "properties": props}
