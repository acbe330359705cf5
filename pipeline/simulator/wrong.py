"""Answers that look valid but are wrong (issue 26), played by the simulator on request.

What a caching proxy or a confused backend does: a recordInfo answer that carries another
task (`foreign_record`), and results of another media than the model's (`wrong_media`: a
video where an image was due). The runner must refuse both rather than record them. Their
draws come from a stream of their own (`Streams.answers`), so older replays stay unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.simulator.replies import Reply

if TYPE_CHECKING:
    from pipeline.simulator.service import KieService


def result_extension(service: KieService, ext: str) -> str:
    """The extension of a new task's results: `ext`, or under `wrong_media` (drawn for every
    task, to stay aligned) another media's: a PNG for a video, an MP4 for anything else."""
    if service.rng.answers.random() >= service.config.rates.wrong_media:
        return ext
    service.stats.faults["wrong_media"] += 1
    return "png" if ext == "mp4" else "mp4"


def foreign_record(service: KieService, reply: Reply) -> Reply:
    """`reply` to a recordInfo, or under `foreign_record` the record of another task of the
    same account (the newest one), when there is another."""
    asked = reply.data.get("taskId") if isinstance(reply.data, dict) else None
    if reply.code != 200 or asked is None:
        return reply
    others = (t for t in reversed(service.tasks.values()) if t.account == reply.account)
    other = next((t for t in others if t.task_id != asked), None)
    if other is None:
        return reply
    return Reply(200, "success", service.record_of(other), reply.account)
