"""Model files of Kie's own-endpoint families (Veo 3.1, Runway, Flux Kontext, GPT-4o Image,
Suno), generated from the same docs snapshot as the createTask ones.

Each model names its family and the operation of the snapshot that documents it. Its job
fields are that operation's request fields (its body's, or for a GET its query
parameters') other than `callBackUrl` and `model`: the family puts `model` back (the
model's own name for Veo, Flux Kontext and Suno; for `veo/extend` the quality of its
source), and the runner's callback when there is one. The schema then goes through the very
conversion a createTask `input` does (`openapi.input_schema`: closed, `$ref`s inlined, file
fields marked, limits read from prose).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.models import openapi
from pipeline.models.docs import JSON, SnapshotError

DROPPED = ("model", "callBackUrl")


@dataclass(frozen=True)
class Spec:
    model: str
    family: str
    method: str
    path: str
    title: str
    task_types: tuple[str, ...]
    media: str
    results: int = 1  # the most results one task yields
    defaults: Mapping[str, Any] | None = None  # defaults Kie states in prose, not schema


_VEO_TYPES = ("Text to Video", "Image to Video")
_SUNO = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")
SPECS: tuple[Spec, ...] = (
    Spec("veo3", "veo", "POST", "/api/v1/veo/generate", "Veo 3.1 Quality", _VEO_TYPES, "video"),
    Spec("veo3_fast", "veo", "POST", "/api/v1/veo/generate", "Veo 3.1 Fast", _VEO_TYPES, "video"),
    Spec("veo3_lite", "veo", "POST", "/api/v1/veo/generate", "Veo 3.1 Lite", _VEO_TYPES, "video"),
    Spec("veo/extend", "veo", "POST", "/api/v1/veo/extend", "Veo 3.1 Extend", ("Video Extend",),
         "video"),
    Spec("veo/get-1080p-video", "veo", "GET", "/api/v1/veo/get-1080p-video",
         "Veo 3.1 1080P Video", ("Video Upscale",), "video", defaults={"index": 0}),
    Spec("veo/get-4k-video", "veo", "POST", "/api/v1/veo/get-4k-video", "Veo 3.1 4K Video",
         ("Video Upscale",), "video"),
    Spec("runway", "runway", "POST", "/api/v1/runway/generate", "Runway AI Video", _VEO_TYPES,
         "video"),
    Spec("runway/extend", "runway", "POST", "/api/v1/runway/extend", "Runway Extend Video",
         ("Video Extend",), "video"),
    Spec("flux-kontext-pro", "flux-kontext", "POST", "/api/v1/flux/kontext/generate",
         "Flux Kontext Pro", ("Text to Image", "Image to Image"), "image"),
    Spec("flux-kontext-max", "flux-kontext", "POST", "/api/v1/flux/kontext/generate",
         "Flux Kontext Max", ("Text to Image", "Image to Image"), "image"),
    Spec("gpt4o-image", "gpt4o-image", "POST", "/api/v1/gpt4o-image/generate", "GPT-4o Image",
         ("Text to Image", "Image to Image"), "image", results=4),
    *(
        Spec(v, "suno", "POST", "/api/v1/generate", f"Suno {v} Music", ("Text to Music",),
             "audio", results=2)
        for v in _SUNO
    ),
)  # fmt: skip


def _operation(catalog: Mapping[str, Any], spec: Spec) -> Mapping[str, Any]:
    for entry in catalog.get("endpoints") or ():
        if entry.get("method") == spec.method and entry.get("path") == spec.path:
            return dict(entry)
    raise SnapshotError(f"{spec.model}: the snapshot has no {spec.method} {spec.path}")


def _fields(entry: Mapping[str, Any], spec: Spec) -> tuple[dict[str, Any], dict[str, Any]]:
    """The operation's request fields as one object schema (and its example), without the
    fields the family fills in itself."""
    if spec.method == "GET":
        props: dict[str, Any] = {}
        required, example = [], {}
        for param in entry.get("parameters") or ():
            if param.get("in") != "query":
                continue
            field = {**(param.get("schema") or {}), "description": param.get("description", "")}
            props[param["name"]] = field
            required += [param["name"]] if param.get("required") else []
            if "example" in param:
                example[param["name"]] = param["example"]
        schema: dict[str, Any] = {"type": "object", "properties": props, "required": required}
    else:
        content = (entry.get("request") or {}).get(JSON) or {}
        schema = dict(content.get("schema") or {})
        example = dict(content.get("example") or {})
    props = {k: dict(v) for k, v in (schema.get("properties") or {}).items() if k not in DROPPED}
    for field in props.values():  # Kie asks to leave deprecated fields out: never fill them
        if field.get("deprecated"):
            field.pop("default", None)
    for name, value in (spec.defaults or {}).items():
        props[name].setdefault("default", value)
    required = [r for r in schema.get("required") or () if r not in DROPPED]
    schema = {**schema, "properties": props, "required": required}
    for key in ("x-apidog-orders", "examples"):
        schema.pop(key, None)
    example = {k: v for k, v in example.items() if k in props}
    return schema, example


def model_file(catalog: Mapping[str, Any], spec: Spec, *, fetched: str) -> dict[str, Any]:
    """The model file of one family model (MODEL_FORMAT.md, with `family`)."""
    entry = _operation(catalog, spec)
    schema, example = _fields(entry, spec)
    # The conversion reads an `input` object of a createTask body: wrap the fields so.
    body = {"type": "object", "properties": {"input": schema}}
    content = {"schema": body, "example": {"input": example}}
    document = {
        "openapi": "3.1.0",
        "info": {"title": entry.get("source_title") or "", "version": ""},
        "paths": {openapi.CREATE_TASK: {"post": {"requestBody": {"content": {JSON: content}}}}},
    }
    return {
        "model": spec.model,
        "family": spec.family,
        "title": spec.title,
        "task_types": list(spec.task_types),
        "output": {"media": spec.media, "max_results": spec.results},
        "status": {"state": "available"},
        "price": {"prose": None, "rule": None},
        "source": {
            "url": str(entry.get("source_url") or ""),
            "fetched": fetched,
            "digest": openapi.digest(document),
            "operation": f"{spec.method} {spec.path}",
        },
        "input": openapi.input_schema(spec.model, document),
    }


def model_files(catalog: Mapping[str, Any], *, fetched: str) -> dict[str, dict[str, Any]]:
    return {spec.model: model_file(catalog, spec, fetched=fetched) for spec in SPECS}
