"""Seeded random streams, one per concern.

Separate streams keep a replay stable where it matters: the task ids and latencies of a run
do not shift because a fault rate changed, and a fault decision does not depend on how many
tasks were created before it. Each stream is used under the service lock, in request order.
"""

from __future__ import annotations

import random
import secrets


class Streams:
    def __init__(self, seed: int) -> None:
        # str seeds hash with SHA-512 (random's version 2): stable across runs and platforms.
        self.ids = random.Random(f"{seed}:ids")  # task ids and file tokens
        self.tasks = random.Random(f"{seed}:tasks")  # latency and task-level faults
        self.faults = random.Random(f"{seed}:faults")  # per-request faults
        self.hostile = random.Random(f"{seed}:hostile")  # the faults of hostile servers
        self.records = random.Random(f"{seed}:records")  # recordInfo's 501/408 (records.py)
        self.answers = random.Random(f"{seed}:answers")  # valid-looking wrong answers

    def hex_id(self) -> str:
        """32 lowercase hex digits, the shape of a real captured Kie task id.

        The first 16 come from the seed (a replay lines up), the last 16 from the system's
        randomness: two simulator processes with one seed never hand out the same id, as
        Kie never does (a rerun against a restarted simulator must not meet its old ids).
        """
        return f"{self.ids.getrandbits(64):016x}{secrets.randbits(64):016x}"
