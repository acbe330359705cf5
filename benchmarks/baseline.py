"""The straightforward client most people write, as the benchmark's point of comparison.

Submit one job, poll it every 5 seconds until it is done, download the video, next job. No
state file, no pacing. `--workers` runs that many such loops side by side (the per-job figures
are the same; the benchmark extrapolates one loop's wall time from them). It writes one JSON
line per job to --events, with the wall-clock times the benchmark needs (when it learned the
task had finished).

    KIE_API_KEY=... python benchmarks/baseline.py --base-url URL --jobs 10 --time-scale 0.1 \\
        --out DIR --events events.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import httpx

POLL_EVERY = 5.0  # seconds (provider time)


def one_job(
    api: httpx.Client, files: httpx.Client, i: int, out: Path, scale: float
) -> dict[str, object] | str:
    """Submit job `i`, poll it every 5 s until it ends, download its video."""
    body = {
        "model": "sora-2-text-to-video",
        "input": {
            "prompt": f"Baseline clip number {i}: a paper boat on a pond",
            "aspect_ratio": "landscape",
            "n_frames": "10",
        },
    }
    started = time.time()
    while True:  # the usual "retry on 429 after a second"
        answer = api.post("/api/v1/jobs/createTask", json=body).json()
        if answer["code"] != 429:
            break
        time.sleep(1.0 * scale)
    if answer["code"] != 200:
        return str(answer)
    task_id = answer["data"]["taskId"]
    polls = 0
    while True:
        time.sleep(POLL_EVERY * scale)
        polls += 1
        data = api.get("/api/v1/jobs/recordInfo", params={"taskId": task_id}).json()
        if data["code"] == 200 and data["data"]["state"] in ("success", "fail"):
            break
    known = time.time()
    record = data["data"]
    size = 0
    if record["state"] == "success":
        url = json.loads(record["resultJson"])["resultUrls"][0]
        content = files.get(url).content
        size = len(content)
        (out / f"baseline-{i:03d}.mp4").write_bytes(content)
    return {
        "job": i,
        "task_id": task_id,
        "started": started,
        "known": known,
        "downloaded": time.time(),
        "polls": polls,
        "state": record["state"],
        "bytes": size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    scale = args.time_scale
    args.out.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {os.environ['KIE_API_KEY']}"}
    jobs = list(range(args.jobs))
    lock = threading.Lock()
    failed: list[str] = []
    with args.events.open("w") as events:

        def worker() -> None:
            with (
                httpx.Client(base_url=args.base_url, headers=headers, timeout=30.0) as api,
                httpx.Client(timeout=30.0) as files,
            ):
                while True:
                    with lock:
                        if not jobs or failed:
                            return
                        i = jobs.pop(0)
                    record = one_job(api, files, i, args.out, scale)
                    with lock:
                        if isinstance(record, str):
                            failed.append(record)
                        else:
                            events.write(json.dumps(record) + "\n")
                            events.flush()

        threads = [threading.Thread(target=worker) for _ in range(max(1, args.workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failed:
        print(f"baseline: create failed: {failed[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
