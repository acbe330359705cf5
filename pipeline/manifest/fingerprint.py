"""The identity of a request: what makes two createTask calls "the same job".

Shared by the manifest loader (to detect edits between runs) and the simulator (to count
creates per job and prove exactly-once submission).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no insignificant whitespace: equal values, equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(model: str, task_input: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of {"model": ..., "input": ...}.

    `callBackUrl` is deliberately left out: where the result is announced does not change the
    video, so moving the callback endpoint must not resubmit (and pay for) every job.
    """
    return hashlib.sha256(canonical_json({"model": model, "input": dict(task_input)})).hexdigest()
