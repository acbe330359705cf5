"""The createTask family: `POST /api/v1/jobs/createTask` + `GET /api/v1/jobs/recordInfo`."""

from __future__ import annotations

from pipeline.kie.families.base import Family


class CreateTask(Family):
    """Every market model: `{"model", "callBackUrl"?, "input"}` as the job builds it."""


FAMILY = CreateTask()
