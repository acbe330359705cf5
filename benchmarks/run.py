#!/usr/bin/env python3
"""The runner's benchmark: how close a batch comes to the provider's physical limits.

    python3 benchmarks/run.py            # sets up .venv on first use, ~8 minutes on 2 cores
    python3 benchmarks/run.py --jobs 100 --sizes ''    # a quick look

Part 1 (speed): for each latency profile (fast images 5-60 s, median 15 s; videos 1-5 min,
median 2 min; long videos 5-15 min, median 8 min; and a mixed batch of the three), N jobs
(default 500) through `run-pipeline` against a simulator of its own at a compressed time scale
(default 0.1). The runner is given the account's limits in real seconds (--create-rate,
--query-rate, --poll-interval) but **no time-scale hint**: it must find the timing itself. At
the same time, on another account, the usual client (submit, poll every 5 s) runs a few jobs.
Every figure comes from the simulator's records and the clients' logs, in provider seconds.

Part 2 (overhead): `validate`, `--dry-run` and a no-op rerun (a state where every job is done)
on generated manifests of 1,000 to 10,000 jobs: wall time and peak memory of each process.

A table goes to stdout, every figure to a JSON file (default benchmarks/results/latest.json).
CPU seconds and peak memory are those of the client process alone (os.wait4 on the child);
the simulator runs in this process and is not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _bootstrap() -> None:
    """From a clean checkout: create .venv (as dev.py does) and re-run this script in it."""
    try:
        import pipeline  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(ROOT))
        import dev

        dev.ensure_venv()
        os.execv(str(dev.PY), [str(dev.PY), __file__, *sys.argv[1:]])


_bootstrap()
sys.path.insert(0, str(ROOT))

from benchmarks.frontier import per_class  # noqa: E402
from benchmarks.metrics import (  # noqa: E402
    CREATE_PATH,
    QUERY_PATHS,
    knowledge_times,
    max_in_window,
    min_span,
    quantile,
)
from pipeline.engine.polling.schedule import Planner, log_edges, lognormal_cdf  # noqa: E402
from pipeline.manifest import load_manifest  # noqa: E402
from pipeline.simulator import SimConfig, Simulator, running_simulator  # noqa: E402
from pipeline.state.store import StateStore  # noqa: E402

RUNNER_KEY, BASELINE_KEY = "bench-runner-key", "bench-baseline-key"
CREATE_LIMIT, QUERY_LIMIT = (20, 10.0), (10, 1.0)  # Kie's, per account / per key
MAX_GAP = 30.0  # the runner's default --poll-max-interval, real seconds (no time-scale hint)


@dataclass(frozen=True)
class Profile:
    """A lognormal latency (provider seconds), clamped to [low, high]."""

    median: float
    sigma: float
    low: float
    high: float

    def cdf(self, x: float) -> float:
        if x < self.low:
            return 0.0
        return 1.0 if x >= self.high else lognormal_cdf(x, self.median, self.sigma)


PROFILES = {
    "fast": Profile(15.0, 0.55, 5.0, 60.0),  # images
    "videos": Profile(120.0, 0.45, 60.0, 300.0),
    "long": Profile(480.0, 0.3, 300.0, 900.0),
}


@dataclass
class Child:
    """A finished child process, measured on its own."""

    seconds: float  # wall time from spawn to exit (real seconds)
    cpu: float  # user + system CPU seconds
    max_rss_mb: float
    code: int
    started: float  # wall clock
    ended: float
    written: int = 0  # bytes the process wrote to disk (ru_oublock: state, logs, outputs, media)


def run_child(
    cmd: list[str], *, env: dict[str, str] | None = None, log: Path | None = None
) -> Child:
    out = log.open("w") if log else subprocess.DEVNULL
    started, t0 = time.time(), time.perf_counter()
    try:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    seconds = time.perf_counter() - t0
    return Child(
        seconds,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        proc.returncode,
        started,
        time.time(),
        usage.ru_oublock * 512,
    )


def pipeline_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


def write_manifest(path: Path, jobs: int, *, prefix: str = "clip", mixed: bool = False) -> Path:
    """`jobs` Sora jobs; `mixed`: one in three of each of MIXED_MODELS, interleaved."""
    lines = ["version: 1", f"name: benchmark of {jobs} jobs"]
    lines += ["defaults:", "  model: sora-2-text-to-video", "jobs:"]  # no default model
    for i in range(jobs):
        lines += [
            f"  - id: {prefix}-{i:05d}",
            f"    prompt: Clip {i} of the benchmark, a paper boat crossing a pond",
        ]
        model, frames = MIXED_MODELS[i % len(MIXED_MODELS)] if mixed else ("", "")
        if model and not frames:
            lines += [f"    model: {model}"]
            continue
        lines += [f"    aspect_ratio: {'portrait' if i % 2 else 'landscape'}"]
        if frames:
            lines += [f"    n_frames: {frames}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- part 1: speed ------------------------------------------------------------------------


def client_figures(
    sim: Simulator,
    account: int,
    known: dict[str, float],
    *,
    scale: float,
    child: Child,
    jobs: int,
    wall_end: float,
) -> dict[str, Any]:
    """Every figure of one client, from the simulator's records and the client's log."""
    tasks = [t for t in sim.tasks() if t["account"] == account]
    requests = [r for r in sim.requests() if r["account"] == account]
    creates = sorted(r["time"] for r in requests if r["path"] == CREATE_PATH and r["code"] == 200)
    create_429 = sum(1 for r in requests if r["path"] == CREATE_PATH and r["code"] == 429)
    queries = [r for r in requests if r["path"] in QUERY_PATHS]
    query_429 = sum(1 for r in queries if r["code"] == 429)
    polls = sum(1 for r in queries if r["path"] == QUERY_PATHS[0])
    finished = [t for t in tasks if t["finished_at"] is not None]
    durations = [t["duration"] / scale for t in tasks if t["duration"] is not None]
    delays = [
        (known[t["taskId"]] - t["finished_at"]) / scale for t in finished if t["taskId"] in known
    ]
    median_latency = quantile(durations, 0.5)
    count, window = CREATE_LIMIT
    span = (creates[-1] - creates[0]) / scale if len(creates) > 1 else 0.0
    ideal_span = min_span(len(creates), count, window)
    if ideal_span > 0:
        throughput = ideal_span / span  # 1.0: every window full
    else:  # fewer creates than one window holds: compare the plain rate to the limit
        throughput = ((len(creates) - 1) / span) / (count / window) if span else math.nan
    lower_bound = ideal_span + max(durations, default=0.0)
    # Tighter: each task at the earliest slot its place in the creation order allows.
    ordered = sorted((t for t in tasks if t["duration"] is not None), key=lambda t: t["created_at"])
    exact_bound = max(
        (min_span(i + 1, count, window) + t["duration"] / scale for i, t in enumerate(ordered)),
        default=0.0,
    )
    wall = (wall_end - child.started) / scale
    return {
        "jobs": jobs,
        "creates": len(creates),
        "finished": len(finished),
        "create_span_s": round(span, 1),
        "create_throughput_vs_limit": round(throughput, 4),
        "create_429_per_100": round(100 * create_429 / max(len(creates), 1), 2),
        "create_429": create_429,
        "wall_s": round(wall, 1),
        "lower_bound_s": round(lower_bound, 1),
        "wall_vs_lower_bound": round(wall / lower_bound, 4) if lower_bound else math.nan,
        "exact_bound_s": round(exact_bound, 1),
        "wall_vs_exact_bound": round(wall / exact_bound, 4) if exact_bound else math.nan,
        "queries": len(queries),
        "polls": polls,
        "query_429": query_429,
        "queries_per_task": round(len(queries) / max(len(finished), 1), 2),
        "max_queries_in_1s": max_in_window((r["time"] for r in queries), QUERY_LIMIT[1] * scale),
        "median_latency_s": round(median_latency, 1),
        "max_latency_s": round(max(durations, default=math.nan), 1),
        "detection_p50_s": round(quantile(delays, 0.5), 2),
        "detection_p95_s": round(quantile(delays, 0.95), 2),
        "detection_mean_s": round(sum(delays) / max(len(delays), 1), 2),
        "detection_max_s": round(max(delays, default=math.nan), 2),
        "detection_p95_share": round(quantile(delays, 0.95) / median_latency, 4),
        "detection_p50_share": round(quantile(delays, 0.5) / median_latency, 4),
        "cpu_s": round(child.cpu, 2),
        "max_rss_mb": round(child.max_rss_mb, 1),
        "written_mb": round(child.written / 2**20, 1),
        "written_per_job_kb": round(child.written / 1024 / max(jobs, 1), 1),
        "process_seconds_real": round(child.seconds, 2),
        "exit_code": child.code,
    }


MIXED_SIGMA = 0.35  # the simulator has one sigma for every media type
MIXED_MODELS = (  # the mixed batch: (model, extra input) per profile, by the simulator's media
    ("nano-banana-2", ""),  # an image: the simulator's image latency
    ("sora-2-text-to-video", '"10"'),  # a 10 s video: its video latency
    ("sora-2-text-to-video", '"15"'),  # a 15 s video: a long one (long_video_factor)
)
LONG_FACTOR = 4.0  # long videos: 4 x the video profile (median 480 s)


def mixed_profiles() -> list[Profile]:
    """The three latency profiles the simulator draws from in the mixed batch, by model."""
    fast, videos = PROFILES["fast"], PROFILES["videos"]
    long_high = PROFILES["long"].high  # 900 s: within the default max_wait
    video_high = long_high / LONG_FACTOR
    return [
        Profile(fast.median, MIXED_SIGMA, fast.low, fast.high),
        Profile(videos.median, MIXED_SIGMA, videos.low, video_high),
        Profile(videos.median * LONG_FACTOR, MIXED_SIGMA, videos.low * LONG_FACTOR, long_high),
    ]


def sim_config(name: str, args: argparse.Namespace) -> SimConfig:
    p = PROFILES.get(name, PROFILES["videos"])
    if name == "mixed":  # the simulator's own latency per media type (see mixed_profiles)
        image, video, _ = mixed_profiles()
        p = video
        extra: dict[str, Any] = {
            "image_latency": (image.median, image.low, image.high),
            "long_video_factor": LONG_FACTOR,
        }
    else:
        extra = {}
    return SimConfig(
        api_keys=(RUNNER_KEY, BASELINE_KEY),
        time_scale=args.time_scale,
        seed=args.seed,
        credits=10**9,
        create_limit=CREATE_LIMIT,
        query_limit=QUERY_LIMIT,
        latency_median=p.median,
        latency_sigma=p.sigma,
        latency_min=p.low,
        latency_max=p.high,
        **extra,
    )


def speed(name: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One profile on a simulator of its own: run-pipeline and the baseline side by side."""
    return _speed(name, sim_config(name, args), tmp / name, args)


def _speed(name: str, config: SimConfig, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    scale = args.time_scale
    tmp.mkdir()
    manifest = write_manifest(tmp / "speed.yaml", args.jobs, mixed=name == "mixed")
    out = tmp / "speed-out"
    count, window = CREATE_LIMIT
    qcount, qwindow = QUERY_LIMIT
    results: dict[str, Child] = {}
    with running_simulator(config) as sim:
        # The account's limits, in real seconds: what a user would read off their plan.
        runner_cmd = pipeline_cmd(
            str(manifest),
            "--base-url",
            sim.base_url,
            "--out",
            str(out),
            "--quiet",
            "--create-rate",
            f"{count}/{window * scale:g}",
            "--query-rate",
            f"{qcount}/{qwindow * scale:g}",
            "--poll-interval",
            f"{2.0 * scale:g}",
        )
        if args.concurrency:
            runner_cmd += ["--concurrency", str(args.concurrency)]
        baseline_cmd = [
            sys.executable,
            str(ROOT / "benchmarks" / "baseline.py"),
            "--base-url",
            sim.base_url,
            "--jobs",
            str(args.baseline_jobs),
            "--workers",
            str(args.baseline_jobs),
            "--time-scale",
            f"{scale:g}",
            "--out",
            str(tmp / "baseline-out"),
            "--events",
            str(tmp / "baseline.jsonl"),
        ]

        def go(who: str, cmd: list[str], key: str) -> None:
            results[who] = run_child(cmd, env={"KIE_API_KEY": key}, log=tmp / f"{who}.out")

        threads = [threading.Thread(target=go, args=("runner", runner_cmd, RUNNER_KEY))]
        if args.baseline_jobs:
            threads.append(
                threading.Thread(target=go, args=("baseline", baseline_cmd, BASELINE_KEY))
            )
        print(
            f"benchmark: {name}: {args.jobs} jobs through run-pipeline, {args.baseline_jobs} "
            f"through the baseline, time scale {scale:g} (not told to the runner) ...",
            file=sys.stderr,
            flush=True,
        )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        runner = results["runner"]
        if runner.code != 0:
            sys.exit(
                f"benchmark: run-pipeline exited {runner.code}; see {tmp / 'runner.out'}:\n"
                + (tmp / "runner.out").read_text()[-3000:]
            )
        run_log = out / "run.log"
        r = client_figures(
            sim,
            0,
            knowledge_times(run_log),
            scale=scale,
            child=runner,
            jobs=args.jobs,
            wall_end=runner.ended,
        )
        r["cpu_per_job_s"] = round(r["cpu_s"] / args.jobs, 4)
        figures: dict[str, Any] = {"runner": r}
        if args.baseline_jobs:
            base = results["baseline"]
            if base.code != 0:
                sys.exit(f"benchmark: the baseline exited {base.code}; see {tmp / 'baseline.out'}")
            events = [
                json.loads(line) for line in (tmp / "baseline.jsonl").read_text().splitlines()
            ]
            known = {e["task_id"]: e["known"] for e in events}
            b = client_figures(
                sim, 1, known, scale=scale, child=base, jobs=args.baseline_jobs, wall_end=base.ended
            )
            # One loop, job after job: each job's own time, summed over N jobs.
            per_job = sum(e["downloaded"] - e["started"] for e in events) / len(events) / scale
            b["wall_per_job_s"] = round(per_job, 1)
            b["wall_extrapolated_s"] = round(per_job * args.jobs, 1)
            b["wall_vs_lower_bound_extrapolated"] = round(
                per_job * args.jobs / r["lower_bound_s"], 2
            )
            b["cpu_per_job_s"] = round(b["cpu_s"] / args.baseline_jobs, 4)
            figures["baseline"] = b
        if args.keep:
            shutil.copytree(tmp, args.keep / name, dirs_exist_ok=True)
            (args.keep / name / "sim-tasks.json").write_text(json.dumps(sim.tasks()))
            (args.keep / name / "sim-requests.json").write_text(json.dumps(sim.requests()))
    figures["frontier"] = frontier(name, r["queries_per_task"])
    best = figures["frontier"]["at_measured_cost"]["p95_s"]
    r["frontier_p95_s"] = best
    r["p95_vs_frontier"] = round(r["detection_p95_s"] / best, 3) if best else math.nan
    r["targets"] = {
        "queries_per_task<=3": r["queries_per_task"] <= 3.0,
        "query_rate_within_budget": r["max_queries_in_1s"] <= qcount and r["query_429"] == 0,
        "wall_vs_lower_bound<=1.15": r["wall_vs_lower_bound"] <= 1.15,
        "p95_within_1.25x_frontier": r["p95_vs_frontier"] <= 1.25,
    }
    figures["simulator"] = {
        "time_scale": scale,
        "seed": args.seed,
        "latency": [dataclasses.asdict(p) for p in profile_parts(name)],
        "create_limit": CREATE_LIMIT,
        "query_limit": QUERY_LIMIT,
        "runner_concurrency": args.concurrency or "default",
    }
    return figures


# -- part 2: overhead at scale ---------------------------------------------------------------


def done_state(manifest: Path, folder: Path, endpoint: str) -> None:
    """A state in which every job of `manifest` succeeded and its result is on disk."""
    jobs = load_manifest(manifest).jobs
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    now = time.time()
    attempts, results = [], []
    for n, job in enumerate(jobs):
        rel = f"media/{job.id}.mp4"
        (folder / rel).write_bytes(b"\0")
        times = (now - 600, now - 590, now - 400)
        attempts.append((n + 1, job.id, job.fingerprint, job.model, f"task-{n:08d}", *times))
        results.append((n + 1, f"https://files.example/{n}.mp4", rel, "0" * 64))
    with StateStore.open(folder / "state.sqlite", endpoint) as store, store.transaction():
        store.conn.executemany(
            "INSERT INTO attempts (id, job_id, fingerprint, attempt, model, phase, task_id, "
            "creates, intent_at, submitted_at, completed_at, remote_state, polls) "
            "VALUES (?, ?, ?, 1, ?, 'succeeded', ?, 1, ?, ?, ?, 'success', 3)",
            attempts,
        )
        store.conn.executemany(
            "INSERT INTO results (attempt_id, idx, url, file, sha256, bytes, media_type) "
            "VALUES (?, 1, ?, ?, ?, 1, 'video/mp4')",
            results,
        )


def overhead(sim: Simulator, tmp: Path, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    startup = run_child(pipeline_cmd("--version"))
    for size in sizes:
        print(f"benchmark: overhead at {size} jobs ...", file=sys.stderr, flush=True)
        folder = tmp / f"scale-{size}"
        folder.mkdir()
        manifest = write_manifest(folder / "batch.yaml", size)
        out = folder / "out"
        done_state(manifest, out, sim.base_url)
        row: dict[str, Any] = {"jobs": size}
        commands = {
            "validate": pipeline_cmd("validate", str(manifest)),
            "dry_run": pipeline_cmd(str(manifest), "--dry-run", "--out", str(out)),
            "noop_rerun": pipeline_cmd(
                str(manifest), "--out", str(out), "--base-url", sim.base_url, "--quiet"
            ),
        }
        for name, cmd in commands.items():
            child = run_child(cmd, env={"KIE_API_KEY": RUNNER_KEY}, log=folder / f"{name}.out")
            if child.code != 0:
                sys.exit(
                    f"benchmark: {name} at {size} jobs exited {child.code}:\n"
                    + (folder / f"{name}.out").read_text()[-2000:]
                )
            row[name] = {
                "seconds": round(child.seconds, 3),
                "cpu_s": round(child.cpu, 3),
                "max_rss_mb": round(child.max_rss_mb, 1),
            }
        rows.append(row)
        shutil.rmtree(folder, ignore_errors=True)
    rows.append(
        {
            "jobs": 0,
            "python_startup": {
                "seconds": round(startup.seconds, 3),
                "max_rss_mb": round(startup.max_rss_mb, 1),
            },
        }
    )
    return rows


# -- report -------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratio(a: float, b: float) -> str:
    if not a or not b or math.isnan(a) or math.isnan(b):
        return "n/a"
    return f"{a / b:,.2f}x" if a >= b else f"1/{b / a:,.1f}"


def speed_table(speed: dict[str, Any], jobs: int) -> str:
    """One column per profile for run-pipeline, one per profile for the baseline."""
    names = [
        ("jobs (finished)", ""),
        ("create throughput / account limit", ""),
        ("429s per 100 creates", ""),
        ("wall time (s)", ""),
        ("wall time / lower bound", "<= 1.15"),
        ("queries per finished task", "<= 3"),
        ("most queries in any 1 s window (of 10)", "<= 10"),
        ("query 429s", "0"),
        ("median generation time (s)", ""),
        ("detection delay p50 (s / share of median)", ""),
        ("detection delay p95 (s / share of median)", ""),
        ("best p95 the frontier allows at that cost", ""),
        ("p95 / frontier p95", "<= 1.25"),
        ("CPU ms per job", ""),
    ]

    def cells(c: dict[str, Any], baseline: bool) -> list[str]:
        wall = (
            f"{_fmt(c['wall_extrapolated_s'], 0)} (extrap.)" if baseline else _fmt(c["wall_s"], 0)
        )
        ratio = c["wall_vs_lower_bound_extrapolated" if baseline else "wall_vs_lower_bound"]
        return [
            f"{c['jobs']} ({c['finished']})",
            _fmt(c["create_throughput_vs_limit"], 3),
            _fmt(c["create_429_per_100"]),
            wall,
            _fmt(ratio, 3),
            _fmt(c["queries_per_task"]),
            str(c["max_queries_in_1s"]),
            str(c["query_429"]),
            _fmt(c["median_latency_s"], 0),
            f"{_fmt(c['detection_p50_s'], 1)} / {100 * c['detection_p50_share']:.0f}%",
            f"{_fmt(c['detection_p95_s'], 1)} / {100 * c['detection_p95_share']:.0f}%",
            "-" if baseline else f"{_fmt(c['frontier_p95_s'], 1)}",
            "-" if baseline else _fmt(c["p95_vs_frontier"], 2),
            f"{1000 * c['cpu_per_job_s']:.1f}",
        ]

    columns = [(name, cells(f["runner"], False)) for name, f in speed.items()]
    columns += [
        (f"{name}: baseline", cells(f["baseline"], True))
        for name, f in speed.items()
        if "baseline" in f
    ]
    rows = [
        (label, target, *(col[i] for _, col in columns)) for i, (label, target) in enumerate(names)
    ]
    head = ("figure", "target", *(name for name, _ in columns))
    return _markdown(head, rows)


def profile_parts(name: str) -> list[Profile]:
    return mixed_profiles() if name == "mixed" else [PROFILES[name]]


def profile_planner(name: str) -> tuple[Planner, float]:
    """The planner's view of a profile's true distribution (provider seconds), with the
    runner's gap limits: 2 s to its default longest interval (30 real s, 300 provider s at
    time scale 0.1, since the runner is told no scale)."""
    parts = profile_parts(name)
    edges = log_edges(0.5, 2000.0, 24)
    cdf = [sum(p.cdf(e) for p in parts) / len(parts) for e in edges]
    planner = Planner(edges, cdf, min_gap=2.0, max_gap=MAX_GAP / 0.1)
    return planner, planner.median


def class_planners(name: str) -> list[Planner]:
    """The planner's view of each timing class of a profile (one but for the mixed batch)."""
    edges = log_edges(0.5, 2000.0, 24)
    return [
        Planner(edges, [p.cdf(e) for e in edges], min_gap=2.0, max_gap=MAX_GAP / 0.1)
        for p in profile_parts(name)
    ]


def frontier(name: str, measured_polls: float) -> dict[str, Any]:
    """What the maths allows for the profile's latency distribution (no measurement): the
    best p95 detection delay for a number of polls per task, with the runner's plan family,
    each timing class planned on its own (benchmarks/frontier.py). For the mixed batch,
    `pooled_at_measured_cost` is one plan for the three classes pooled, as a per-model
    planner would make."""
    planner, median = profile_planner(name)
    classes = class_planners(name)

    def row(polls: float) -> dict[str, Any]:
        p95, plans = per_class(classes, polls)
        return {
            "polls": round(polls, 2),
            "p95_s": round(p95, 1),
            "p95_share": round(p95 / median, 3),
            "first_poll_s": [round(plan.first, 1) for plan in plans],
            "gap_s": [round(plan.gap, 1) for plan in plans],
        }

    measured = max(measured_polls, 1.05)
    pooled = planner.best_detection(measured, 0.05)
    return {
        "median_s": round(median, 1),
        "by_polls": [row(polls) for polls in (2.0, 2.5, 3.0, 4.0)],
        "at_measured_cost": row(measured),
        "pooled_at_measured_cost": {"p95_s": round(pooled.detection, 1)},
    }


def frontier_table(speed: dict[str, Any]) -> str:
    rows = []
    for name, f in speed.items():
        front = f["frontier"]
        for r in [*front["by_polls"], front["at_measured_cost"]]:
            rows.append(
                (
                    name,
                    f"{r['polls']:g}" + (" (measured)" if r is front["at_measured_cost"] else ""),
                    f"{r['p95_s']:.1f} s ({100 * r['p95_share']:.0f}%)",
                    "; ".join(
                        f"{first:g} s, then every {gap:g} s"
                        for first, gap in zip(r["first_poll_s"], r["gap_s"], strict=True)
                    ),
                )
            )
    head = ("profile", "polls per task", "best p95 delay (share of median)", "plan (per class)")
    return _markdown(head, rows)


def overhead_table(rows: list[dict[str, Any]]) -> str:
    out = []
    for row in rows:
        if not row["jobs"]:
            continue
        cells = [f"{row['jobs']:,}"]
        for name in ("validate", "dry_run", "noop_rerun"):
            cells.append(f"{row[name]['seconds']:.2f} s / {row[name]['max_rss_mb']:.0f} MB")
        out.append(tuple(cells))
    head = ("jobs", "validate", "--dry-run (target < 2 s)", "no-op rerun (target < 3 s)")
    return _markdown(head, out)


def _markdown(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=500, help="jobs per profile (500)")
    parser.add_argument(
        "--profiles",
        default="fast,videos,long,mixed",
        help="latency profiles to run (fast,videos,long,mixed)",
    )
    parser.add_argument(
        "--baseline-jobs",
        type=int,
        default=6,
        help="jobs for the baseline client per profile, side by side (6; 0: skip)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.1,
        help="simulator time scale (0.1: 1 provider second = 0.1 s); the runner is not told",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="run-pipeline --concurrency (0: not given, the runner's default)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--sizes",
        default="1000,2000,5000,10000",
        help="manifest sizes for the overhead part ('' to skip)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the runs' folders and the simulator's records in DIR",
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = set(profiles) - {*PROFILES, "mixed"}
    if unknown:
        parser.error(f"unknown profiles: {', '.join(sorted(unknown))}")
    result: dict[str, Any] = {
        "command": "python3 benchmarks/run.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rp-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if profiles:
            result["speed"] = {name: speed(name, tmp, args) for name in profiles}
        if sizes:
            config = SimConfig(api_keys=(RUNNER_KEY,), time_scale=args.time_scale)
            with running_simulator(config) as sim:
                result["overhead"] = overhead(sim, tmp, sizes)
    result["benchmark_seconds"] = round(time.perf_counter() - t0, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    if "speed" in result:
        print(
            f"Speed: {args.jobs} jobs per profile, simulator time scale {args.time_scale:g} "
            "(not told to the runner), all times in provider seconds\n"
        )
        print(speed_table(result["speed"], args.jobs))
        print("\nWhat the maths allows for each profile's latency distribution:\n")
        print(frontier_table(result["speed"]))
    if "overhead" in result:
        print("\nOverhead at scale: wall time / peak memory of the whole process\n")
        print(overhead_table(result["overhead"]))
    print(f"\nAll figures: {args.json} ({result['benchmark_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
