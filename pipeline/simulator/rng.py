"""Seeded random streams, one per concern.

Separate streams keep a replay stable where it matters: the task ids and latencies of a run
do not shift because a fault rate changed, and a fault decision does not depend on how many
tasks were created before it. Each stream is used under the service lock, in request order.
"""

from __future__ import annotations

import random


class Streams:
    def __init__(self, seed: int) -> None:
        # str seeds hash with SHA-512 (random's version 2): stable across runs and platforms.
        self.ids = random.Random(f"{seed}:ids")  # task ids and file tokens
        self.tasks = random.Random(f"{seed}:tasks")  # latency and task-level faults
        self.faults = random.Random(f"{seed}:faults")  # per-request faults

    def hex_id(self) -> str:
        """32 lowercase hex digits, the shape of a real captured Kie task id."""
        return f"{self.ids.getrandbits(128):032x}"
