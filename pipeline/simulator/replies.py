"""The envelopes the simulated service answers, before any transport fault is applied.

Shared by the service, its catalog and the file host (kept apart from the service so that the
catalog and the host do not import it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.simulator.tasks import Task


@dataclass(frozen=True)
class Reply:
    """One envelope Kie would send, before any transport fault is applied."""

    code: int
    msg: str
    data: Any = None
    account: int | None = None  # who asked (None: not authenticated)
    created: Task | None = None  # createTask: the task this call created

    def envelope(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg, "data": self.data}


MAINTENANCE = Reply(455, "Service unavailable: the system is under maintenance")
UNAUTHORIZED = Reply(401, "Unauthorized: missing or invalid API key")
# Kie's own words (late 2026), body code 500 both.
NOT_SUPPORTED = "The model name you specified is not supported"
PAUSED = "This interface is temporarily paused"
