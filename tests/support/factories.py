"""Factories of jobs and state rows for unit tests (no manifest file, no state file)."""

from __future__ import annotations

from itertools import count
from typing import Any

from pipeline.fingerprint import fingerprint
from pipeline.manifest import Job
from pipeline.models import load_prices
from pipeline.state import Attempt, Phase

_ids = count(1)


def make_job(
    job_id: str, prompt: str = "A paper boat", model: str = "sora-2-text-to-video", **fields: Any
) -> Job:
    task_input = {"prompt": prompt, "aspect_ratio": "landscape", "n_frames": "10", **fields}
    credits = load_prices().credits_for(model, task_input)  # as the manifest loader fills it
    return Job(job_id, model, task_input, None, fingerprint(model, task_input), 1, credits)


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
        "video_url": None,
        "error_code": None,
        "error_message": None,
        "permanent": False,
        "file": None,
        "sha256": None,
        "bytes": None,
    }
    if phase == "succeeded":
        values.update(
            completed_at=1.0e9 + 90,
            video_url=f"https://files.example/{job.id}.mp4",
            file=f"videos/{job.id}.mp4",
            sha256="0" * 64,
            bytes=40_000,
        )
    if phase == "intent":
        values["task_id"] = None
    values.update(fields)
    return Attempt(**values)
