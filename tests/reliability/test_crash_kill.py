"""Crash test: SIGKILL the runner at random moments over a faulty simulator, rerun until it
finishes, and prove that nothing was lost, paid twice unflagged, or left half-written.

The default run kills 5 times; the slow suite kills CRASH_KILLS times (default 25).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from pipeline.simulator import FaultRates, SimConfig, running_simulator
from tests.support.batch import runner_command
from tests.support.harness import (
    assert_no_traceback,
    audit,
    intent_fingerprints,
    left_pending,
    read_state,
    run_to_end,
    settle,
    spawn,
    stored_task_ids,
)
from tests.support.manifests import jobs_yaml

KEY = "crash-test-key"
FAULTS = FaultRates(
    http_500=0.05, reset=0.05, lost_answer=0.05, generation_failure=0.1, truncated_download=0.25
)


def crash_campaign(tmp_path: Path, *, kills: int, jobs: int, scale: float, seed: int) -> str:
    config = SimConfig(
        api_keys=(KEY,),
        time_scale=scale,
        seed=seed,
        faults=FAULTS,
        # stricter than the runner's 20/10 and 10/1: real 429s on both paths
        create_limit=(15, 10.0),
        query_limit=(8, 1.0),
        latency_median=120.0,
        latency_min=20.0,
        latency_max=400.0,
    )
    manifest = tmp_path / "crash.yaml"
    manifest.write_text(jobs_yaml(jobs))
    out = tmp_path / "out"
    rng = random.Random(seed)
    with running_simulator(config) as sim:
        command = runner_command(manifest, sim.base_url, out, scale)
        killed = lives = busy_kills = 0
        kill_windows: Counter[str] = Counter()
        seen: dict[str, tuple[str, str]] = {}
        snapshot: object = None
        while killed < kills:
            lives += 1
            proc = spawn(command, KEY)
            try:
                code = proc.wait(timeout=rng.uniform(0.3, 1.5))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate()
                assert proc.returncode == -signal.SIGKILL
                killed += 1
            else:
                _, err = proc.communicate()
                assert_no_traceback(err)
                assert code in (0, 1), err
                pytest.fail(f"the batch finished after {killed} kills; make it longer")
            settle(sim)
            if not (out / "state.sqlite").exists():
                continue
            state = read_state(out)
            kill_windows.update(intent_fingerprints(state))
            stored = stored_task_ids(state)
            # A task id once stored is never lost (nor moved to another job).
            lost_ids = {t for t, owner in seen.items() if stored.get(t) != owner}
            assert not lost_ids, lost_ids
            seen = stored
            now = sorted(
                (a.id, a.phase, a.task_id, a.results) for rows in state.values() for a in rows
            )
            busy_kills += now != snapshot
            snapshot = now
        reruns = 0
        while True:
            reruns += 1
            code, _, err = run_to_end(command, KEY)
            assert_no_traceback(err)
            if code in (0, 1) and not left_pending(out):
                break
            assert code != 3 and reruns < 5, err
        result = audit(sim, out, manifest, kill_windows=kill_windows)
        assert not set(seen) - set(stored_task_ids(read_state(out)))
        stats = sim.stats()
    assert result.unflagged_duplicates == 0
    generation_failures = sum(1 for t in sim.tasks() if t["failCode"] == "501")
    figures = (
        f"kills={killed} (state changed in {busy_kills} lives; {sum(kill_windows.values())}"
        f" kills during a create) reruns={reruns} lost_answers={stats['lost_answers']} "
        f"duplicates={result.duplicates} flagged_duplicates={result.flagged_duplicates} "
        f"unflagged_duplicates={result.unflagged_duplicates} "
        f"(from lost answers {result.duplicates_from_lost_answers}, from kills "
        f"{result.duplicates_from_kills}) lost_task_ids=0 "
        f"faults={stats['faults']} rate_limited={stats['rate_limited']} "
        f"generation_failures={generation_failures} statuses={dict(result.statuses)} "
        f"creates={result.creates} attempts={result.attempts} files={result.files}"
    )
    print(f"\ncrash test: {figures}")
    return figures


def test_crash_kills_reduced(tmp_path: Path) -> None:
    # (Tasks keep running while the runner is dead: time runs slow enough that the batch
    # outlives the kills; at 0.03 the slowest of 100 tasks ends after about 10 s.)
    crash_campaign(tmp_path, kills=5, jobs=100, scale=0.03, seed=3)


@pytest.mark.slow
def test_crash_kills_full(tmp_path: Path) -> None:
    kills = int(os.environ.get("CRASH_KILLS", "25"))
    # Slow enough time that the batch outlives the kills (about 1.2 s each).
    crash_campaign(
        tmp_path,
        kills=kills,
        jobs=100,
        scale=0.004 * kills,
        seed=int(os.environ.get("CRASH_SEED", "20")),
    )
