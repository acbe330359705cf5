"""Crash test of the families: SIGKILL the runner at random moments of a 20-job Veo 3.1 and
Runway batch over a faulty simulator (500s, resets, lost answers, failed generations), rerun
until it finishes, then prove from the simulator's books that every job succeeded and that
no job was paid twice without a flag (the harness of tests/reliability)."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from pipeline.manifest import load_manifest
from pipeline.simulator import FaultRates, SimConfig, running_simulator
from tests.support.batch import runner_command
from tests.support.harness import (
    integrity,
    kill_at_random,
    read_state,
    rerun_to_success,
    stored_task_ids,
)

KEY = "families-crash-key"
FAULTS = FaultRates(http_500=0.05, reset=0.05, lost_answer=0.08, generation_failure=0.05)


def batch_yaml(count: int) -> str:
    lines = ["version: 1", "settings:", "  download: false", "  max_attempts: 5", "jobs:"]
    for i in range(count // 2):
        lines += [
            f"  - id: veo-{i:02d}",
            "    model: veo3_fast",
            f"    prompt: Hero film number {i}, a lighthouse at dusk",
            f"  - id: runway-{i:02d}",
            "    model: runway",
            f"    prompt: Cut-down number {i}, a balloon over the city",
            "    duration: 5",
            "    quality: 720p",
            "    aspectRatio: '16:9'",
        ]
    return "\n".join(lines) + "\n"


def crash(tmp_path: Path, *, kills: int, jobs: int, scale: float, seed: int) -> str:
    config = SimConfig(
        api_keys=(KEY,),
        time_scale=scale,
        seed=seed,
        faults=FAULTS,
        create_limit=(15, 10.0),
        query_limit=(8, 1.0),
        latency_median=120.0,
        latency_min=20.0,
        latency_max=400.0,
    )
    path = tmp_path / "families.yaml"
    path.write_text(batch_yaml(jobs))
    manifest = load_manifest(path)
    out = tmp_path / "out"
    rng = random.Random(seed)
    with running_simulator(config) as sim:
        command = runner_command(path, sim.base_url, out, scale)
        seen = kill_at_random(command, KEY, sim, out, kills=kills, rng=rng)
        reruns = rerun_to_success(command, KEY)
        tasks: list[dict[str, Any]] = httpx.get(sim.base_url + "/__sim/tasks").json()
        stats = sim.stats()
    assert integrity(out) == "ok"
    state = read_state(out)
    assert not set(seen) - set(stored_task_ids(state))
    by_fingerprint = {j.fingerprint: j.id for j in manifest.jobs}
    made: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        made[by_fingerprint[task["fingerprint"]]].append(task)
    assert {t["family"] for t in tasks} == {"veo", "runway"}
    duplicates = flagged = 0
    for job in manifest.jobs:
        current = [a for a in state.get(job.id, ()) if a.fingerprint == job.fingerprint]
        assert current[-1].phase == "succeeded", (job.id, current[-1])
        stored_ids = {a.task_id for a in current if a.task_id}
        extra = [t for t in made[job.id] if t["taskId"] not in stored_ids]
        is_flagged = any(a.possible_duplicate for a in current)
        duplicates += len(extra)
        flagged += len(extra) if is_flagged else 0
        assert not extra or is_flagged, f"{job.id}: unflagged duplicate(s) {extra}"
    figures = (
        f"jobs={len(manifest.jobs)} kills={kills} reruns={reruns} creates={stats['creates']} "
        f"duplicates={duplicates} flagged={flagged} unflagged=0 "
        f"lost_answers={stats['lost_answers']} faults={stats['faults']}"
    )
    print(f"\nfamilies crash test: {figures}")
    return figures


def test_kills_in_a_veo_and_runway_batch(tmp_path: Path) -> None:
    crash(tmp_path, kills=10, jobs=20, scale=0.03, seed=24)
