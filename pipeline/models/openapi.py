"""Kie's OpenAPI documents -> model files. Pure functions: no I/O, no clock.

`GET /api/v1/models/<model>/schema` answers a whole OpenAPI document (3.0.1 or 3.1) for one
model. What those documents really contain, and what we do about it:
- `$ref`s into the document's own `components`, not inlined, with percent-encoded segments
  (`#/components/schemas/response%20not%20with%20recordId`), and component keys that end in a
  space (`Error `): each segment is percent-decoded and then JSON-pointer-unescaped, never
  trimmed.
- OpenAPI 3.0's `nullable: true` (and boolean `exclusiveMinimum`): turned into JSON Schema
  2020-12 (`type: [t, "null"]`, numeric `exclusiveMinimum`).
- `input` declared as a `oneOf`: kept, each branch closed like a plain input.
- `openapi: null` (Kie has not synced the model yet) and a `paths` key other than createTask
  (a chat model, or an API of its own): refused, since we cannot run them.
The `input` we write is closed (`additionalProperties: false`): Kie ignores unknown fields and
still bills the task, so an unknown field is an error here. URL fields that take files are
marked `x-media` (from the field's name) and `x-max-bytes` (from "Maximum file size: N MB").

What the English docs snapshot (schemas/kie-docs/) showed besides, all read here so that the
bundled catalog and `models pull` share one conversion:
- A `$ref` whose target the document does not hold (58 pages lost `nsfw_checker`): the field
  is kept, untyped (any value passes), marked `x-unresolved-ref`; we do not invent a type. Only
  when the document's own request example gives the field a boolean is it typed boolean.
- apidog's `x-apidog-refs` (a map of `$ref`s whose targets' properties join the object's): the
  properties are merged in; a dangling one adds the field its component is named after, as
  above. Other `x-` keys, `example` and `examples` are documentation and are dropped.
- Property names with a trailing space (`"reference_video_urls "`, 3 pages): trimmed (unless
  that would clash with another field), as the examples of two of those pages send them.
- URL fields: by name, or by `format: uri` (on the field or its items); what they take is the
  MIME types the description accepts, else the name. Limits stated only in descriptions are
  read by `prose.py`, in Kie's fixed phrasings only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from pipeline.errors import EXIT_USAGE, PipelineError
from pipeline.models import conditions, examples, keywords, pricetext, pricing, prose

CREATE_TASK = "/api/v1/jobs/createTask"
_RESULT_FIELDS = ("max_images", "num_images", "n")


class CatalogError(PipelineError):
    """Kie's catalog answered something we did not expect; nothing is written."""


class Refused(PipelineError):
    """The model cannot be pulled: its schema is not synced, or it is not a createTask model."""

    exit_code = EXIT_USAGE


def digest(document: Any) -> str:
    """sha256 of the canonical JSON of `document` (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve(document: Mapping[str, Any], ref: str) -> Any:
    """The node a local `$ref` points at. Segments are percent-decoded, then `~1` -> `/` and
    `~0` -> `~`; a key's trailing space is part of the key."""
    if not ref.startswith("#/"):
        raise CatalogError(f"$ref {ref!r} does not point into the same document")
    node: Any = document
    for raw in ref[2:].split("/"):
        key = unquote(raw).replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            raise CatalogError(f"$ref {ref!r} points at nothing (no key {key!r})")
        node = node[key]
    return node


def _convert(
    document: Mapping[str, Any],
    node: Any,
    refs: tuple[str, ...],
    budget: keywords.Budget,
    depth: int = 0,
) -> Any:
    """One OpenAPI schema object as JSON Schema 2020-12, every $ref inlined, only the
    keywords validation can evaluate safely kept (see `keywords`)."""
    if isinstance(node, list):
        inner = budget.enter(depth)
        return [_convert(document, item, refs, budget, inner) for item in node]
    if not isinstance(node, dict):
        return node
    depth = budget.enter(depth)
    if isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in refs:
            raise CatalogError(f"$ref {ref!r} refers to itself; a model input cannot recurse")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if _dangling(document, ref):
            return {**_convert(document, siblings, refs, budget, depth), **_unresolved(ref)}
        target = resolve(document, ref)
        if not isinstance(target, dict):
            raise CatalogError(f"$ref {ref!r} is not a schema")
        return _convert(document, {**target, **siblings}, (*refs, ref), budget, depth)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if not keywords.kept(key, value):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {
                _trim(k, value): _convert(document, v, refs, budget, depth)
                for k, v in value.items()
            }
        elif key == "required" and isinstance(value, list):
            out[key] = [_trim(k, node.get("properties") or {}) for k in value]
        elif key in keywords.SUBSCHEMA and isinstance(value, dict | list):
            out[key] = _convert(document, value, refs, budget, depth)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
            bound = node.get("minimum" if key == "exclusiveMinimum" else "maximum")
            if value and bound is not None:  # 3.0: a flag on minimum/maximum
                out[key] = bound
        else:
            out[key] = value
    if "pattern" in node and "pattern" not in out:
        out["$comment"] = keywords.PATTERN_DROPPED
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if node.get(key) is True:
            out.pop("minimum" if key == "exclusiveMinimum" else "maximum", None)
    if node.get("nullable") is True:
        _allow_null(out)
    if isinstance(node.get("x-apidog-refs"), dict) and isinstance(out.get("properties"), dict):
        _merge_apidog_refs(document, node["x-apidog-refs"], out, refs, budget, depth)
    return out


def _dangling(document: Mapping[str, Any], ref: str) -> bool:
    """A local $ref whose target the document does not hold (the snapshot lost some)."""
    if not ref.startswith("#/"):
        return False
    try:
        resolve(document, ref)
    except CatalogError:
        return True
    return False


def _unresolved(ref: str) -> dict[str, Any]:
    return {"x-unresolved-ref": ref}


def _trim(name: str, siblings: Mapping[str, Any]) -> str:
    """A property name without its stray outer spaces, unless another field has that name."""
    bare = name.strip()
    return bare if bare == name or bare not in siblings else name


def _merge_apidog_refs(
    document: Mapping[str, Any],
    extra: Mapping[str, Any],
    out: dict[str, Any],
    refs: tuple[str, ...],
    budget: keywords.Budget,
    depth: int,
) -> None:
    """apidog's `x-apidog-refs`: each target's properties join the object's (those it already
    has win: apidog inlines most of them). A dangling target adds the one field its component
    is named after (`#/components/schemas/nsfw_checker` -> `nsfw_checker`), untyped."""
    props: dict[str, Any] = out["properties"]
    for entry in extra.values():
        ref = entry.get("$ref") if isinstance(entry, dict) else None
        if not isinstance(ref, str):
            continue
        if _dangling(document, ref):
            name = unquote(ref.rsplit("/", 1)[-1])
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name not in props:
                props[name] = _unresolved(ref)
            continue
        target = _convert(document, {"$ref": ref}, refs, budget, depth)
        for name, field in (target.get("properties") or {}).items():
            props.setdefault(name, field)


def _allow_null(schema: dict[str, Any]) -> None:
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "null":
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]


def media_of(name: str, schema: Mapping[str, Any]) -> str | None:
    """What a URL field takes, judged by its description's accepted MIME types, else by its
    name: "image", "video", "audio", or None (not a URL field, or a `format: uri` field whose
    name and text say nothing)."""
    items = schema.get("items")
    named = name.endswith(("_url", "_urls")) or name in (
        "url",
        "urls",
        "image_input",
        "input_urls",
        "image",
        "images",
    )
    uri = "uri" in (schema.get("format"), items.get("format") if isinstance(items, dict) else None)
    if not (named or uri):
        return None
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    item_type = items.get("type") if isinstance(items, dict) else None
    if "string" not in kinds and not ("array" in kinds and item_type == "string"):
        return None
    stated = prose.accepted_media(str(schema.get("description") or ""))
    if stated:
        return stated
    if "video" in name or "clip" in name:
        return "video"
    if "audio" in name or "voice" in name:
        return "audio"
    return "image" if named or any(w in name for w in ("image", "frame", "mask")) else None


def _close(schema: dict[str, Any]) -> None:
    """Close one input object and mark its file fields (top level and each oneOf branch)."""
    if schema.get("type") == "object" or "properties" in schema:
        schema.setdefault("additionalProperties", False)
    for name, field in schema.get("properties", {}).items():
        if not isinstance(field, dict):
            continue
        media = media_of(name, field)
        if media and "x-media" not in field:
            field["x-media"] = media
        size = prose.max_bytes(str(field.get("description") or ""))
        if media and size and "x-max-bytes" not in field:
            field["x-max-bytes"] = size
        prose.apply_limits(field)


def input_schema(model: str, document: Any) -> dict[str, Any]:
    """The JSON Schema of createTask's `input` for `model`, from its catalog document.
    Whatever the document holds, the outcome is a schema, Refused or CatalogError."""
    try:
        return _input_schema(model, document)
    except keywords.Overgrown as exc:
        raise CatalogError(f"{model}: {exc}") from None
    except RecursionError:  # a nesting the budget did not foresee (in an example, say)
        raise CatalogError(f"{model}: the document nests too deeply to be read") from None


def _input_schema(model: str, document: Any) -> dict[str, Any]:
    if document is None:
        raise Refused(
            f"{model}: Kie's catalog has no schema for this model yet (openapi: null, not "
            "synced); try again later, or write its kie-models/ file by hand"
        )
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise CatalogError(f"{model}: the catalog's schema is not an OpenAPI document")
    paths = list(document["paths"])
    if paths != [CREATE_TASK]:
        others = ", ".join(p for p in paths if p != CREATE_TASK) or "none"
        raise Refused(
            f"{model} is not a job model (its endpoint is {others}, not {CREATE_TASK}); models of "
            "Kie's own-endpoint families (Veo 3.1, Runway, Flux Kontext, GPT-4o Image, Suno) "
            "are bundled with run-pipeline: see `run-pipeline models show`"
        )
    try:
        post = document["paths"][CREATE_TASK]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
    except (KeyError, TypeError):
        raise CatalogError(
            f"{model}: the document has no JSON request body for createTask"
        ) from None
    body = _convert(document, body, (), keywords.Budget())
    raw = body.get("properties", {}).get("input") if isinstance(body, dict) else None
    if not isinstance(raw, dict):
        raise CatalogError(f"{model}: createTask's request body declares no `input` object")
    if "x-unresolved-ref" in raw and not ({"properties", "oneOf", "anyOf"} & set(raw)):
        raise CatalogError(f"{model}: `input` is a $ref that points at nothing")
    schema: dict[str, Any] = raw
    branches = schema.get("oneOf") or schema.get("anyOf")
    for part in (schema, *(b for b in branches or () if isinstance(b, dict))):
        conditions.drop_impossible(part)
        _close(part)
    if branches:
        schema.pop("additionalProperties", None)  # the branches are closed; the union is not
    example = examples.request_example(post)
    for part in (schema, *(b for b in branches or () if isinstance(b, dict))):
        examples.type_from_example(part, example.get("input") if example else None)
    return schema


def _digest(model: str, document: Any) -> str:
    try:
        return digest(document)
    except (RecursionError, ValueError, TypeError):
        raise CatalogError(f"{model}: the document cannot be written as JSON") from None


def media_from_task_types(task_types: list[str]) -> str | None:
    """ "Text to Video" -> video, "Image Upscale" -> image, "Text to Speech" -> audio."""
    for task in task_types:
        words = task.lower().replace("-", " ").split()
        target = words[words.index("to") + 1 :] if "to" in words else words[:1]
        for word in target:
            if word in ("video", "image", "audio"):
                return word
            if word in ("music", "speech", "sound", "voice", "dialogue"):
                return "audio"
    return None


def output_of(schema: Mapping[str, Any], media: str | None) -> dict[str, Any]:
    props = schema.get("properties", {})
    for name in _RESULT_FIELDS:
        field = props.get(name)
        counts = isinstance(field, dict) and (
            field.get("type") in ("integer", "number")  # Kie types some counts as number
            or all(str(v).isdigit() for v in field.get("enum") or ["x"])  # or "1".."4"
        )
        if isinstance(field, dict) and counts:
            default = field.get("default", 1)
            return {"media": media, "max_results": {"field": name, "default": default}}
    return {"media": media, "max_results": 1}


def rule_from_prose(prose: str | None, schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The price rule Kie's `pricingDesc` prose states, or None (price unknown): see
    pricetext, which reads the forms Kie writes and never guesses a number."""
    return pricetext.rule_from_prose(prose, _fields(schema))


def model_file(
    model: str,
    document: Any,
    *,
    listing: Mapping[str, Any] | None,
    pricing_desc: str | None,
    source_url: str,
    fetched: str,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The model file for `model` (MODEL_FORMAT.md). `previous` is the file we had, whose
    price rule is kept while Kie's price prose is unchanged (prose is not always parseable)
    and whose "paused" status is kept (the catalog does not say)."""
    schema = input_schema(model, document)
    listing = listing or {}
    task_types = [str(t) for t in listing.get("taskType") or [] if isinstance(t, str)]
    post = document["paths"][CREATE_TASK]["post"]
    title = listing.get("title") or post.get("summary") or model
    media = media_from_task_types(task_types)
    if media is None and previous:
        media = (previous.get("output") or {}).get("media")
    prose = pricing_desc if pricing_desc is not None else listing.get("pricingDesc")
    old_price = (previous or {}).get("price") or {}
    kept = old_price.get("rule")
    if (
        previous
        and old_price.get("prose") == prose
        and "rule" in old_price
        # a rule on fields the new schema no longer has would price nothing: read it again
        and pricing.check_rule(kept, _fields(schema)) is None
    ):
        rule = kept
    else:
        rule = rule_from_prose(prose, schema)
    status = (previous or {}).get("status") or {}
    return {
        "model": model,
        "title": str(title),
        "task_types": task_types,
        "output": output_of(schema, media),
        "status": status if status.get("state") == "paused" else {"state": "available"},
        "price": {"prose": prose, "rule": rule},
        "source": {"url": source_url, "fetched": fetched, "digest": _digest(model, document)},
        "input": schema,
    }


def _fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(schema.get("properties", {}))
    for branch in schema.get("oneOf") or schema.get("anyOf") or ():
        if isinstance(branch, dict):
            out.update(branch.get("properties", {}))
    return out


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What a re-pull changed, one line each: fields added or removed, enum and type
    changes, price; "other changes" when only something else moved."""
    lines: list[str] = []
    before, after = _fields(old.get("input") or {}), _fields(new.get("input") or {})
    lines += [f"field added: {name}" for name in after if name not in before]
    lines += [f"field removed: {name}" for name in before if name not in after]
    for name in (n for n in after if n in before):
        a, b = before[name] or {}, after[name] or {}
        old_enum, new_enum = a.get("enum") or [], b.get("enum") or []
        added = [v for v in new_enum if v not in old_enum]
        removed = [v for v in old_enum if v not in new_enum]
        if added and old_enum:
            lines.append(f"{name}: enum gained {', '.join(json.dumps(v) for v in added)}")
        if removed and new_enum:
            lines.append(f"{name}: enum lost {', '.join(json.dumps(v) for v in removed)}")
        if a.get("type") != b.get("type"):
            lines.append(f"{name}: type {json.dumps(a.get('type'))} -> {json.dumps(b.get('type'))}")
    if (old.get("price") or {}).get("prose") != (new.get("price") or {}).get("prose"):
        lines.append(f"price: {(new.get('price') or {}).get('prose')}")
    if not lines:
        lines.append("other changes (descriptions, limits or metadata)")
    return lines
