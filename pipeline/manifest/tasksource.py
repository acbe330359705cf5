"""What a `{task: JOB}` field takes: the task of a model making which media.

A model file says it in the field's `x-media`, else in the field's description, in Kie's
words ("Task ID from a previously successful video generation task"). Where it says, a
`{task: JOB}` naming a job whose model makes something else (a Nano Banana image given to
`grok-imagine/upscale`) is refused at validation: Kie would refuse it only after the upstream
job was paid for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipeline.models.registry import MEDIA, Model

_SAID = re.compile(r"\b(image|video|audio|music)\s+generation\b", re.IGNORECASE)


def task_media(model: Model, field: str) -> str | None:
    """The media of the task `field` of `model` takes, where its model file says."""
    prop: Any = (model.schema.get("properties") or {}).get(field)
    if not isinstance(prop, Mapping):
        return None
    stated = prop.get("x-media")
    if stated in MEDIA:
        return str(stated)
    found = _SAID.search(str(prop.get("description") or ""))
    if found is None:
        return None
    said = found[1].lower()
    return "audio" if said == "music" else said
