"""The rows of the state file, as the rest of the product reads them: frozen, typed, no SQL.

`state.py` builds them from its queries; the planner, journal and outputs read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

Phase = Literal["intent", "submitted", "succeeded", "failed", "timed_out"]


@dataclass(frozen=True)
class StoredResult:
    """One result of a task (row of `results`): index 1.. in Kie's order, the URL it was
    last fetched from, and once downloaded the file (relative to the output folder)."""

    index: int
    url: str | None
    file: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    media_type: str | None = None

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> StoredResult:
        return cls(*row[1:])  # type: ignore[arg-type]


@dataclass(frozen=True)
class StoredUpload:
    """A file this folder uploaded (row of `uploads`)."""

    sha256: str
    extension: str
    url: str
    uploaded_at: float  # Unix time


@dataclass(frozen=True)
class Attempt:
    """One submission of one job version (row of `attempts`), with its task's results."""

    id: int
    job_id: str
    fingerprint: str
    attempt: int
    model: str
    phase: Phase
    task_id: str | None
    possible_duplicate: bool
    creates: int
    intent_at: float
    submitted_at: float | None
    completed_at: float | None
    remote_state: str | None
    polls: int
    error_code: str | None
    error_message: str | None
    permanent: bool
    credits: float | None = None  # what Kie reported the task consumed (creditsConsumed)
    inputs: str | None = None  # the job version sent, as shown (JSON; see refs.shown)
    result_json: str | None = None  # a success's result that is not a file (bounded JSON)
    results: tuple[StoredResult, ...] = ()

    @classmethod
    def from_row(cls, row: tuple[object, ...], results: tuple[StoredResult, ...] = ()) -> Attempt:
        values = list(row)
        values[7] = bool(values[7])
        values[16] = bool(values[16])
        return cls(*values, results=results)  # type: ignore[arg-type, misc]

    @property
    def first(self) -> StoredResult | None:
        """Result 1, the one the ledger's flat columns describe."""
        return self.results[0] if self.results else None

    @property
    def finished_at(self) -> float:
        """When the task ended, as best known (a row rebuilt from a ledger may lack the end):
        what names and orders earlier takes."""
        return self.completed_at or self.submitted_at or self.intent_at

    @property
    def shown_inputs(self) -> dict[str, str]:
        """The job version this attempt sent (model and inputs as text); empty for rows
        written before it was kept, or damaged."""
        try:
            value = json.loads(self.inputs or "{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    @property
    def downloaded(self) -> bool:
        """Every result of the task has a file recorded (and at least one result exists), or
        the task's result is JSON alone (kept in the state: nothing to download)."""
        if not self.results:
            return self.result_json is not None
        return all(r.file for r in self.results)
