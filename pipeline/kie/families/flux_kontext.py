"""Flux Kontext: `POST /api/v1/flux/kontext/generate` (a flat body with `model`:
`flux-kontext-pro` or `flux-kontext-max`; `inputImage` makes it an edit), read from
`GET /api/v1/flux/kontext/record-info`: `successFlag` 0 generating, 1 success, 2 create
failed, 3 generation failed; the image in `response.resultImageUrl`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.kie.answers import TaskInfo
from pipeline.kie.families.base import (
    OwnEndpoint,
    Request,
    flat,
    read_flagged,
)


class FluxKontext(OwnEndpoint):
    name = "flux-kontext"
    create_path = "/api/v1/flux/kontext/generate"
    record_path = "/api/v1/flux/kontext/record-info"

    def create(self, body: Mapping[str, Any], sources: Mapping[str, str]) -> Request:
        return Request("POST", self.create_path, json=flat(body, model=str(body.get("model"))))

    def read(self, data: Any, task_id: str) -> TaskInfo:
        return read_flagged(data, task_id, "Flux Kontext record-info", "resultImageUrl")


FAMILY = FluxKontext()
