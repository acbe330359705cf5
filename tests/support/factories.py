"""Factories of jobs and state rows for unit tests (no manifest file, no state file)."""

from __future__ import annotations

from itertools import count
from typing import Any

from pipeline.manifest import Job
from pipeline.manifest.fingerprint import fingerprint
from pipeline.models.registry import ModelRegistry
from pipeline.state.store import Attempt, Phase, StoredResult

_ids = count(1)
_BUNDLED = ModelRegistry()


def make_job(
    job_id: str, prompt: str = "A paper boat", model: str = "sora-2-text-to-video", **fields: Any
) -> Job:
    task_input = {"prompt": prompt, "aspect_ratio": "landscape", "n_frames": "10", **fields}
    found = _BUNDLED.get(model)  # the price as the manifest loader fills it in
    credits = None if found is None else found.price_for(task_input)
    return Job(job_id, model, task_input, None, fingerprint(model, task_input), 1, credits)


def result(
    job_id: str,
    index: int = 1,
    *,
    downloaded: bool = True,
    ext: str = "mp4",
    media_type: str = "video/mp4",
    url: str | None = None,
) -> StoredResult:
    """Result `index` of a task of `job_id`, on disk under media/ unless not `downloaded`."""
    stem = job_id if index == 1 else f"{job_id}-{index}"
    return StoredResult(
        index,
        url or f"https://files.example/{stem}.{ext}",
        f"media/{stem}.{ext}" if downloaded else None,
        f"{index:02d}" * 32 if downloaded else None,
        40_000 if downloaded else None,
        media_type if downloaded else None,
    )


def attempt(job: Job, phase: Phase, **fields: Any) -> Attempt:
    values: dict[str, Any] = {
        "id": next(_ids),
        "job_id": job.id,
        "fingerprint": job.fingerprint,
        "attempt": 1,
        "model": job.model,
        "phase": phase,
        "task_id": f"task{next(_ids):04d}",
        "possible_duplicate": False,
        "creates": 1,
        "intent_at": 1.0e9,
        "submitted_at": 1.0e9,
        "completed_at": None,
        "remote_state": None,
        "polls": 0,
        "error_code": None,
        "error_message": None,
        "permanent": False,
        "credits": None,
        "results": (),
    }
    if phase == "succeeded":
        values.update(completed_at=1.0e9 + 90, credits=20.0, results=(result(job.id),))
    if phase == "intent":
        values["task_id"] = None
    values.update(fields)
    return Attempt(**values)
