"""The simulator's model catalog: `GET /api/v1/models`, `.../models/<model>/schema`, `.../price`.

It serves every model of the bundled catalog, with OpenAPI documents shaped like Kie's own
(see kie-market.md): the request body and the input are `$ref`s into `components`, the input's
key ends in a space and its ref is percent-encoded, nullable fields use OpenAPI 3.0's
`nullable`, Kie's `additionalProperties` and our `x-media` marks are absent (a pull must infer
them, as it must from the real documents), and a model whose input is a `oneOf` keeps it.
Besides, one model is listed whose schema is not synced (`openapi: null`) and one chat model
(not on createTask), so clients can be tested on both refusals. The four calls share a budget
of 1 request per second per account (scaled by the time scale); over it: body code 429.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipeline.models.registry import Model, ModelRegistry
from pipeline.simulator.ratelimit import SlidingWindow
from pipeline.simulator.replies import MAINTENANCE, UNAUTHORIZED, Reply

if TYPE_CHECKING:
    from pipeline.simulator.service import KieService

PREFIX = "/api/v1/models"
BUDGET = (1, 1.0)  # catalog calls per seconds, per account
CREATE_TASK = "/api/v1/jobs/createTask"
PROVIDERS = (
    ("kling", "Kuaishou"),
    ("bytedance", "ByteDance"),
    ("seedream", "ByteDance"),
    ("wan", "Alibaba"),
    ("hailuo", "MiniMax"),
    ("grok", "xAI"),
    ("nano-banana", "Google"),
    ("gpt-image", "OpenAI"),
    ("sora", "OpenAI"),
    ("flux", "Black Forest Labs"),
    ("topaz", "Topaz Labs"),
)
NOT_SYNCED = {
    "model": "suno/v5-music",
    "title": "Suno V5 Music",
    "provider": "Suno",
    "taskType": ["Text to Music"],
    "description": None,
    "pricingDesc": "12 credits per song",
}
CHAT = {
    "model": "gemini-3-pro",
    "title": "Gemini 3 Pro",
    "provider": "Google",
    "taskType": ["Chat"],
    "description": "A chat model, answered synchronously (not a createTask job).",
    "pricingDesc": "Billed per token",
}
_ERROR = {
    "type": "object",
    "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
}


def _provider(name: str) -> str:
    return next((who for prefix, who in PROVIDERS if name.startswith(prefix)), "Kie")


def to_openapi(schema: Any, closed_level: bool = False) -> Any:
    """A JSON Schema of ours as Kie would publish it (OpenAPI 3.0 flavour)."""
    if isinstance(schema, list):
        return [to_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("x-media", "x-max-bytes"):
            continue
        if key == "additionalProperties" and value is False and closed_level:
            continue  # Kie's documents leave inputs open (and ignore unknown fields)
        if key == "properties":
            out[key] = {k: to_openapi(v) for k, v in value.items()}
        elif key in ("oneOf", "anyOf"):
            out[key] = [to_openapi(v, closed_level) for v in value]
        elif key in ("items", "not", "additionalProperties", "allOf"):
            out[key] = to_openapi(value)
        else:
            out[key] = copy.deepcopy(value)
    kind = out.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        out["type"] = rest[0] if len(rest) == 1 else rest
        out["nullable"] = True
    if isinstance(out.get("enum"), list) and None in out["enum"]:
        out["enum"] = [v for v in out["enum"] if v is not None]
        out["nullable"] = True
    return out


def _ref(key: str) -> str:
    return "#/components/schemas/" + quote(key.replace("~", "~0").replace("/", "~1"), safe="")


def openapi_document(model: Model) -> dict[str, Any]:
    """The catalog document of one bundled model."""
    # A family model's document names its own endpoint, as Kie's would: not a createTask job.
    path = CREATE_TASK
    if model.family != "createTask":
        path = str(model.source.get("operation") or "").split(" ")[-1] or model.family
    input_key = f"{model.title} Input "  # a trailing space, as some of Kie's keys have
    request_key = f"{model.title} Request"
    answer_key = "response not with recordId"
    request = {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string", "enum": [model.name], "default": model.name},
            "callBackUrl": {"type": "string", "format": "uri"},
            "input": {"$ref": _ref(input_key)},
        },
    }
    answer = {
        "type": "object",
        "properties": {
            "code": {"type": "integer"},
            "msg": {"type": "string"},
            "data": {"type": "object", "properties": {"taskId": {"type": "string"}}},
        },
    }
    return {
        "openapi": "3.0.1",
        "info": {"title": "", "description": "", "version": "1.0.0"},
        "paths": {
            path: {
                "post": {
                    "summary": model.title,
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": _ref(request_key)}}}
                    },
                    "responses": {
                        "200": {
                            "description": "",
                            "content": {"application/json": {"schema": {"$ref": _ref(answer_key)}}},
                        },
                        "500": {
                            "description": "",
                            "content": {"application/json": {"schema": {"$ref": _ref("Error ")}}},
                        },
                    },
                }
            }
        },
        "components": {
            "schemas": {
                request_key: request,
                input_key: to_openapi(model.schema, closed_level=True),
                answer_key: answer,
                "Error ": _ERROR,
            }
        },
    }


def _chat_document() -> dict[str, Any]:
    path = f"/{CHAT['model']}/v1/chat/completions"
    body = {"type": "object", "properties": {"messages": {"type": "array"}}}
    return {
        "openapi": "3.0.1",
        "info": {"title": "", "version": "1.0.0"},
        "paths": {
            path: {"post": {"requestBody": {"content": {"application/json": {"schema": body}}}}}
        },
    }


class Catalog:
    """The listing, documents and prices, built once from the bundled model files."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.listing: list[dict[str, Any]] = []
        self.documents: dict[str, dict[str, Any] | None] = {}
        for name in registry.names():
            model = registry.get(name)
            if model is None:
                continue
            self.listing.append(
                {
                    "model": name,
                    "slug": name.replace("/", "-").replace(".", "-"),
                    "title": model.title,
                    "provider": _provider(name),
                    "taskType": list(model.task_types),
                    "description": None,
                    "pricingDesc": model.price_prose,
                }
            )
            self.documents[name] = openapi_document(model)
        for extra, document in ((NOT_SYNCED, None), (CHAT, _chat_document())):
            slug = str(extra["model"]).replace("/", "-")
            self.listing.append({**extra, "slug": slug})
            self.documents[str(extra["model"])] = document
        self._windows: dict[int, SlidingWindow] = {}

    def models(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        def first(key: str) -> str:
            return (query.get(key) or [""])[0].strip().casefold()

        task_type, provider, text = first("taskType"), first("provider"), first("q")
        found = [
            m
            for m in self.listing
            if (not task_type or task_type in (t.casefold() for t in m["taskType"]))
            and (not provider or provider == str(m["provider"]).casefold())
            and (
                not text or any(text in str(m.get(k) or "").casefold() for k in ("model", "title"))
            )
        ]
        return {"total": len(found), "models": found}

    def answer(
        self,
        service: KieService,
        authorization: str | None,
        path: str,
        query: Mapping[str, list[str]],
    ) -> Reply:
        """One catalog call (the caller holds the service lock)."""

        if service.config.maintenance:
            return MAINTENANCE
        account = service.account_of(authorization)
        if account is None:
            return UNAUTHORIZED
        window = self._windows.setdefault(account, SlidingWindow())
        count, seconds = BUDGET
        if not window.try_acquire(service.clock(), count, service.config.scaled(seconds)):
            service.stats.rate_limited["catalog"] += 1
            return Reply(429, "Rate limited: at most 1 catalog request per second", account=account)
        if path == PREFIX:
            return Reply(200, "success", self.models(query), account)
        name, _, what = path[len(PREFIX) + 1 :].rpartition("/")
        if what not in ("schema", "price") or name not in self.documents:
            return Reply(404, f"Model not found: {name or path}", account=account)
        if what == "schema":
            return Reply(200, "success", {"model": name, "openapi": self.documents[name]}, account)
        entry = next(m for m in self.listing if m["model"] == name)
        return Reply(200, "success", {"model": name, "pricingDesc": entry["pricingDesc"]}, account)


def is_catalog_call(method: str, path: str) -> bool:
    return method == "GET" and (path == PREFIX or path.startswith(PREFIX + "/"))
