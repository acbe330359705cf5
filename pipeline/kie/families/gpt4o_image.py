"""GPT-4o Image: `POST /api/v1/gpt4o-image/generate` (a flat body, no `model`), read from
`GET /api/v1/gpt4o-image/record-info` (`successFlag` 0 generating, 1 success, 2 failed;
several images in `response.resultUrls`); an expired image link is renewed by its own
`POST /api/v1/gpt4o-image/download-url` (`taskId`, `url`)."""

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


class Gpt4oImage(OwnEndpoint):
    name = "gpt4o-image"
    create_path = "/api/v1/gpt4o-image/generate"
    record_path = "/api/v1/gpt4o-image/record-info"

    def create(self, body: Mapping[str, Any], sources: Mapping[str, str]) -> Request:
        return Request("POST", self.create_path, json=flat(body, model=None))

    def read(self, data: Any, task_id: str) -> TaskInfo:
        return read_flagged(data, task_id, "GPT-4o Image record-info", "resultUrls")

    def refresh(self, task_id: str | None, url: str) -> Request:
        if task_id is None:
            return super().refresh(task_id, url)
        return Request(
            "POST", "/api/v1/gpt4o-image/download-url", json={"taskId": task_id, "url": url}
        )


FAMILY = Gpt4oImage()
