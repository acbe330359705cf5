#!/usr/bin/env python3
"""The runner's benchmark: how close a batch comes to the provider's physical limits.

    python3 benchmarks/run.py            # sets up .venv on first use, ~2.5 minutes on 2 cores

Part 1 (speed): N jobs (default 500) through `run-pipeline` against the built-in simulator at a
compressed time scale (default 0.1: one provider second is 0.1 s here) with Kie's realistic
latencies (lognormal, median 120 s, ~95% between 1 and 4 minutes, long tail, capped at 15 min),
and at the same time, on the same simulator (another account, so neither eats the other's
limits), the straightforward client (submit one, poll every 5 s, download, next) over a few
jobs. Every figure comes from the simulator's own records (task creation/finish times and its
request log) and the clients' logs; all times are reported in provider seconds.

Part 2 (overhead): `validate`, `--dry-run` and a no-op rerun (a state where every job is done)
on generated manifests of 1,000 to 10,000 jobs: wall time and peak memory of each process.

A table goes to stdout, every figure to a JSON file (default benchmarks/results/latest.json).
CPU seconds and peak memory are those of the client process alone (os.wait4 on the child);
the simulator runs in this process and is not counted.
"""

from __future__ import annotations

import argparse
import contextlib
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

from benchmarks.metrics import (  # noqa: E402
    CREATE_PATH,
    QUERY_PATHS,
    knowledge_times,
    last_event_time,
    max_in_window,
    min_span,
    quantile,
)
from pipeline.manifest import load_manifest  # noqa: E402
from pipeline.simulator import SimConfig, Simulator, running_simulator  # noqa: E402
from pipeline.state import StateStore  # noqa: E402

RUNNER_KEY, BASELINE_KEY, VARIANT_KEY = "bench-runner-key", "bench-baseline-key", "bench-variant"
# The variant: the same runner with the poll plan set to meet a detection target instead of
# a poll budget (module constants of pipeline.polling, set before the run starts).
VARIANT = (
    "import sys, pipeline.polling as p; p.POLLS_PER_TASK = None; "
    "p.DETECTION_SHARE = float(sys.argv.pop(1)); from pipeline.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)
CREATE_LIMIT, QUERY_LIMIT = (20, 10.0), (10, 1.0)  # Kie's, per account / per key


@dataclass
class Child:
    """A finished child process, measured on its own."""

    seconds: float  # wall time from spawn to exit (real seconds)
    cpu: float  # user + system CPU seconds
    max_rss_mb: float
    code: int
    started: float  # wall clock
    ended: float


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
    )


def pipeline_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


def write_manifest(path: Path, jobs: int, *, prefix: str = "clip") -> Path:
    lines = ["version: 1", f"name: benchmark of {jobs} jobs", "jobs:"]
    for i in range(jobs):
        lines += [
            f"  - id: {prefix}-{i:05d}",
            f"    prompt: Clip {i} of the benchmark, a paper boat crossing a pond",
            f"    aspect_ratio: {'portrait' if i % 2 else 'landscape'}",
        ]
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
        "process_seconds_real": round(child.seconds, 2),
        "exit_code": child.code,
    }


def speed(sim: Simulator, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    scale = args.time_scale
    manifest = write_manifest(tmp / "speed.yaml", args.jobs)
    out = tmp / "speed-out"
    runner_cmd = pipeline_cmd(
        str(manifest),
        "--base-url",
        sim.base_url,
        "--out",
        str(out),
        "--time-scale",
        f"{scale:g}",
        "--quiet",
        "--concurrency",
        str(args.concurrency),
    )
    baseline_cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "baseline.py"),
        "--base-url",
        sim.base_url,
        "--jobs",
        str(args.baseline_jobs),
        "--time-scale",
        f"{scale:g}",
        "--out",
        str(tmp / "baseline-out"),
        "--events",
        str(tmp / "baseline.jsonl"),
    ]
    variant_cmd = [
        sys.executable,
        "-c",
        VARIANT,
        f"{args.variant_share:g}",
        str(manifest),
        "--base-url",
        sim.base_url,
        "--out",
        str(tmp / "variant-out"),
        "--time-scale",
        f"{scale:g}",
        "--quiet",
        "--concurrency",
        str(args.concurrency),
    ]
    results: dict[str, Child] = {}

    def go(name: str, cmd: list[str], key: str) -> None:
        results[name] = run_child(cmd, env={"KIE_API_KEY": key}, log=tmp / f"{name}.out")

    threads = [threading.Thread(target=go, args=("runner", runner_cmd, RUNNER_KEY))]
    if args.baseline_jobs:
        threads.append(threading.Thread(target=go, args=("baseline", baseline_cmd, BASELINE_KEY)))
    if args.variant_share:
        threads.append(threading.Thread(target=go, args=("variant", variant_cmd, VARIANT_KEY)))
    print(
        f"benchmark: {args.jobs} jobs through run-pipeline and {args.baseline_jobs} through "
        f"the baseline, time scale {scale:g} ...",
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
    figures = {
        "runner": client_figures(
            sim,
            0,
            knowledge_times(run_log),
            scale=scale,
            child=runner,
            jobs=args.jobs,
            wall_end=runner.ended,
        )
    }
    figures["runner"]["last_event_to_exit_real_s"] = round(
        runner.ended - last_event_time(run_log), 3
    )
    if args.baseline_jobs:
        base = results["baseline"]
        if base.code != 0:
            sys.exit(f"benchmark: the baseline exited {base.code}; see {tmp / 'baseline.out'}")
        events = [json.loads(line) for line in (tmp / "baseline.jsonl").read_text().splitlines()]
        known = {e["task_id"]: e["known"] for e in events}
        b = client_figures(
            sim, 1, known, scale=scale, child=base, jobs=args.baseline_jobs, wall_end=base.ended
        )
        per_job = b["wall_s"] / args.baseline_jobs
        b["wall_per_job_s"] = round(per_job, 1)
        b["wall_extrapolated_s"] = round(per_job * args.jobs, 1)  # N jobs, one after another
        b["wall_vs_lower_bound_extrapolated"] = round(
            per_job * args.jobs / figures["runner"]["lower_bound_s"], 2
        )
        b["cpu_per_job_s"] = round(b["cpu_s"] / args.baseline_jobs, 4)
        figures["baseline"] = b
        figures["runner"]["cpu_per_job_s"] = round(figures["runner"]["cpu_s"] / args.jobs, 4)
    if args.variant_share:
        variant = results["variant"]
        if variant.code != 0:
            sys.exit(f"benchmark: the variant exited {variant.code}; see {tmp / 'variant.out'}")
        known = knowledge_times(tmp / "variant-out" / "run.log")
        figures["variant"] = client_figures(
            sim, 2, known, scale=scale, child=variant, jobs=args.jobs, wall_end=variant.ended
        )
        figures["variant"]["policy"] = f"detect within {args.variant_share:g} of the median"
        figures["variant"]["cpu_per_job_s"] = round(variant.cpu / args.jobs, 4)
    figures["simulator"] = {
        "time_scale": scale,
        "seed": args.seed,
        "latency": {"median": 120.0, "sigma": 0.45, "min": 20.0, "max": 900.0},
        "create_limit": CREATE_LIMIT,
        "query_limit": QUERY_LIMIT,
    }
    return figures


# -- part 2: overhead at scale ---------------------------------------------------------------


def done_state(manifest: Path, folder: Path, endpoint: str) -> None:
    """A state in which every job of `manifest` succeeded and its video is on disk."""
    jobs = load_manifest(manifest).jobs
    videos = folder / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    now = time.time()
    rows = []
    for n, job in enumerate(jobs):
        rel = f"videos/{job.id}.mp4"
        (folder / rel).write_bytes(b"\0")
        rows.append(
            (
                job.id,
                job.fingerprint,
                job.model,
                f"task-{n:08d}",
                now - 600,
                now - 590,
                now - 400,
                f"https://files.example/{n}.mp4",
                rel,
                "0" * 64,
            )
        )
    with StateStore.open(folder / "state.sqlite", endpoint) as store, store.transaction():
        store.conn.executemany(
            "INSERT INTO attempts (job_id, fingerprint, attempt, model, phase, task_id, creates, "
            "intent_at, submitted_at, completed_at, remote_state, polls, video_url, file, sha256, "
            "bytes) VALUES (?, ?, 1, ?, 'succeeded', ?, 1, ?, ?, ?, 'success', 3, ?, ?, ?, 1)",
            rows,
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


def speed_table(figures: dict[str, Any]) -> str:
    r = figures["runner"]
    clients = [("run-pipeline", r)]
    if "variant" in figures:
        clients.append(("run-pipeline, detection-first", figures["variant"]))
    b = figures.get("baseline")
    if b:
        clients.append(("baseline", b))
    median = r["median_latency_s"]

    def cells(c: dict[str, Any], is_baseline: bool) -> list[str]:
        wall = (
            f"{_fmt(c['wall_extrapolated_s'], 0)} (extrapolated)"
            if is_baseline
            else _fmt(c["wall_s"], 0)
        )
        ratio = (
            _fmt(c["wall_vs_lower_bound_extrapolated"])
            if is_baseline
            else _fmt(c["wall_vs_lower_bound"], 3)
        )
        exact = "-" if is_baseline else _fmt(c["wall_vs_exact_bound"], 3)
        return [
            f"{c['jobs']} ({c['finished']})",
            _fmt(c["create_throughput_vs_limit"], 3),
            _fmt(c["create_429_per_100"]),
            wall,
            ratio,
            exact,
            _fmt(c["queries_per_task"]),
            str(c["max_queries_in_1s"]),
            str(c["query_429"]),
            f"{_fmt(c['detection_p50_s'], 1)} / {100 * c['detection_p50_share']:.1f}%",
            f"{_fmt(c['detection_p95_s'], 1)} / {100 * c['detection_p95_share']:.1f}%",
            f"{_fmt(c['cpu_s'])} ({1000 * c['cpu_per_job_s']:.1f} ms/job)"
            if "cpu_per_job_s" in c
            else _fmt(c["cpu_s"]),
            _fmt(c["max_rss_mb"], 1),
        ]

    names = [
        "jobs (finished)",
        "create throughput / account limit",
        "429s per 100 creates",
        f"wall time (s) for {r['jobs']} jobs",
        f"wall time / lower bound ({r['lower_bound_s']:.0f} s)",
        f"wall time / exact bound ({r['exact_bound_s']:.0f} s)",
        "queries per finished task",
        "most queries in any 1 s window",
        "query 429s",
        f"detection delay p50 (s / share of median {median:.0f} s)",
        "detection delay p95 (s / share of median)",
        "CPU seconds",
        "peak memory (MB)",
    ]
    targets = ["", ">= 0.95", "< 1", "", "<= 1.10", "", "<= 3", "<= 10", "0", "", "< 15%", "", ""]
    columns = [cells(c, name == "baseline") for name, c in clients]
    rows = [
        (name, target, *(col[i] for col in columns))
        for i, (name, target) in enumerate(zip(names, targets, strict=True))
    ]
    if b:  # the ratios the issue asks for: how much better than the usual client
        ratios = [
            "",
            _ratio(r["create_throughput_vs_limit"], b["create_throughput_vs_limit"]),
            "",
            _ratio(b["wall_extrapolated_s"], r["wall_s"]),
            "",
            "",
            _ratio(b["queries_per_task"], r["queries_per_task"]),
            "",
            "",
            _ratio(b["detection_p50_s"], r["detection_p50_s"]),
            _ratio(b["detection_p95_s"], r["detection_p95_s"]),
            _ratio(b["cpu_per_job_s"], r.get("cpu_per_job_s", 0)),
            "",
        ]
        rows = [(*row, ratio) for row, ratio in zip(rows, ratios, strict=True)]
    head = ("figure", "target", *(name for name, _ in clients))
    if b:
        head = (*head, "baseline vs run-pipeline")
    return _markdown(head, rows)


def frontier() -> dict[str, Any]:
    """What the maths allows for the simulator's latency distribution (no measurement): the
    best p95 detection delay for a given number of polls per task, and the polls a given
    detection target costs, each with the runner's plan family and default gap limits."""
    from pipeline.polling import Planner, lognormal_cdf

    width, bins = 3.0, 300
    cdf = [
        lognormal_cdf(k * width, 120.0, 0.45) if k * width >= 20.0 else 0.0 for k in range(bins + 1)
    ]
    planner = Planner(cdf, width, min_gap=2.0, max_gap=30.0)
    out: dict[str, Any] = {"by_polls": [], "by_share": []}
    for polls in (2.5, 3.0, 3.5, 4.0, 5.0):
        plan = planner.best_detection(polls, 0.05)
        out["by_polls"].append(
            {
                "polls": polls,
                "p95_s": round(plan.detection, 1),
                "p95_share": round(plan.detection / 120.0, 3),
                "first_poll_s": round(plan.first),
                "gap_s": round(plan.gap, 1),
            }
        )
    for share in (0.15, 0.20, 0.25, 0.30):
        plan = planner.fewest_polls(share * 120.0, 0.05)
        out["by_share"].append(
            {
                "share": share,
                "polls": round(plan.expected_polls, 2),
                "queries_per_s_at_full_create_rate": round(plan.expected_polls * 2.0, 1),
            }
        )
    return out


def frontier_table(f: dict[str, Any]) -> str:
    rows = [
        (
            f"{row['polls']:g}",
            f"{row['p95_s']:.0f} s ({100 * row['p95_share']:.0f}%)",
            f"{row['first_poll_s']} s, then every {row['gap_s']:g} s",
        )
        for row in f["by_polls"]
    ]
    a = _markdown(("polls per task", "best p95 delay (share of median)", "plan"), rows)
    rows = [
        (
            f"{100 * row['share']:.0f}%",
            f"{row['polls']:.2f}",
            f"{row['queries_per_s_at_full_create_rate']:g} of 10",
        )
        for row in f["by_share"]
    ]
    b = _markdown(("p95 delay target", "polls per task needed", "queries/s at 2 creates/s"), rows)
    return a + "\n\n" + b


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


def _markdown(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
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
    parser.add_argument("--jobs", type=int, default=500, help="jobs for run-pipeline (500)")
    parser.add_argument(
        "--baseline-jobs",
        type=int,
        default=10,
        help="jobs for the baseline client, run one after another (10; 0: skip)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.1,
        help="simulator and runner time scale (0.1: 1 provider second = 0.1 s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1000,
        help="run-pipeline --concurrency (1000: the create limit, not this cap, is what binds)",
    )
    parser.add_argument(
        "--variant-share",
        type=float,
        default=0.15,
        help="also run the runner with its poll plan set to detect within this "
        "share of the median latency (0.15; 0: skip), on its own account",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--sizes",
        default="1000,2000,5000,10000",
        help="manifest sizes for the overhead part ('' to skip)",
    )
    parser.add_argument("--skip-speed", action="store_true")
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
    config = SimConfig(
        api_keys=(RUNNER_KEY, BASELINE_KEY, VARIANT_KEY),
        time_scale=args.time_scale,
        seed=args.seed,
        credits=10**9,
        create_limit=CREATE_LIMIT,
        query_limit=QUERY_LIMIT,
    )
    result: dict[str, Any] = {
        "command": "python3 benchmarks/run.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with (
        tempfile.TemporaryDirectory(prefix="rp-bench-") as tmp_name,
        running_simulator(config) as sim,
    ):
        tmp = Path(tmp_name)
        if not args.skip_speed:
            result["speed"] = speed(sim, tmp, args)
            result["frontier"] = frontier()
            if args.keep:
                shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
                (args.keep / "sim-tasks.json").write_text(json.dumps(sim.tasks()))
                (args.keep / "sim-requests.json").write_text(json.dumps(sim.requests()))
        if sizes:
            result["overhead"] = overhead(sim, tmp, sizes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    if "speed" in result:
        print(
            f"Speed: {args.jobs} jobs, time scale {args.time_scale:g}, "
            "all times in provider seconds\n"
        )
        print(speed_table(result["speed"]))
    if "speed" in result:
        print(
            "\nWhat the maths allows for this latency distribution (median 120 s, sigma "
            "0.45), gaps of 2-30 s:\n"
        )
        print(frontier_table(result["frontier"]))
    if "overhead" in result:
        print("\nOverhead at scale: wall time / peak memory of the whole process\n")
        print(overhead_table(result["overhead"]))
    print(f"\nAll figures: {args.json}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
