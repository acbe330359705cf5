"""Micro-benchmark: the two lookups of every download, against a folder's history (issue 27).

    python3 benchmarks/holders.py                    # 1k and 1M stored results, ~1 minute
    python3 benchmarks/holders.py --sizes 1000,100000

For each size N it fills a state file with N stored results (one task per job, each holding
`media/<job>.mp4`) and measures the CPU of one download's lookups:

- holders: `StateStore.holders(stem, keep)`, the attempts holding the name a download is about
  to write (before: a `substr()` condition that no index answers: a scan of every result);
- job ids: whether `<job>-2` is a job id, which decides where result 2 goes (before: a set of
  every job id ever seen, rebuilt per download; now `KnownJobIds`, a view of the history).

Each is measured as it is now and as it was before. The last column divides the CPU per
lookup at the largest size by that at the smallest: about 1 when the cost does not grow with
the history. CPU is this process's (time.process_time), so the figures hold on a busy machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if importlib.util.find_spec("httpx") is None:  # not in .venv: make it (as dev.py does), rerun
    import dev

    dev.ensure_venv()
    os.execv(str(dev.PY), [str(dev.PY), __file__, *sys.argv[1:]])

from pipeline.engine.downloader import KnownJobIds  # noqa: E402
from pipeline.engine.journal import Journal  # noqa: E402
from pipeline.results.names import result_stem  # noqa: E402
from pipeline.state.store import Attempt, StateStore  # noqa: E402

MIN_CPU = 0.5  # seconds of CPU spent measuring each lookup at each size (at least 3 calls)


def fill(path: Path, size: int) -> StateStore:
    """A state of `size` succeeded, downloaded tasks: jobs `job0` ... (one file each)."""
    store = StateStore.open(path, "http://bench")
    with store.transaction():
        store.conn.executemany(
            "INSERT INTO attempts (id, job_id, fingerprint, attempt, model, phase, task_id, "
            "intent_at, submitted_at, completed_at) "
            "VALUES (?, ?, ?, 1, 'm', 'succeeded', ?, 0, 0, 1)",
            ((n, f"job{n}", f"fp{n}", f"task{n}") for n in range(1, size + 1)),
        )
        store.conn.executemany(
            "INSERT INTO results (attempt_id, idx, url, file, sha256, bytes, media_type) "
            "VALUES (?, 1, ?, ?, 'ab', 10, 'video/mp4')",
            ((n, f"https://f/{n}.mp4", f"media/job{n}.mp4") for n in range(1, size + 1)),
        )
    return store


def old_holders(store: StateStore, stem: str, keep: int) -> list[Attempt]:
    """`StateStore.holders` before issue 27."""
    prefix = stem + "."
    rows = store.conn.execute(
        "SELECT DISTINCT attempt_id, file FROM results WHERE attempt_id != ? "
        "AND substr(file, 1, ?) = ?",
        (keep, len(prefix), prefix),
    ).fetchall()
    ids = {a for a, f in rows if "." not in str(f)[len(prefix) :]}
    return [store.get(a) for a in sorted(ids)]


def per_call(call: Callable[[int], object], rng: random.Random, size: int) -> float:
    """CPU seconds per call of `call(n)`, n a random job number."""
    calls, started = 0, time.process_time()
    while calls < 3 or time.process_time() - started < MIN_CPU:
        call(rng.randint(1, size))
        calls += 1
    return (time.process_time() - started) / calls


def measure(size: int, folder: Path, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    print(f"holders: filling a state with {size:,} results ...", file=sys.stderr, flush=True)
    with fill(folder / f"state-{size}.sqlite", size) as store:
        # The journal's history as a run holds it, without building 1M Attempt rows: every
        # job id maps to its attempts (the lookup reads only the keys).
        journal = Journal.__new__(Journal)
        journal.history = {f"job{n}": [] for n in range(1, size + 1)}
        manifest = frozenset(f"job{n}" for n in range(1, 1001))
        known = KnownJobIds(manifest, journal)

        def old_ids(n: int) -> str:
            return result_stem(f"job{n}", 2, set(manifest) | set(journal.history))

        # A new version of job n about to write its file: the old one must make way.
        figures = {
            "holders_new": per_call(lambda n: store.holders(f"media/job{n}", -1), rng, size),
            "holders_old": per_call(lambda n: old_holders(store, f"media/job{n}", -1), rng, size),
            "job_ids_new": per_call(lambda n: result_stem(f"job{n}", 2, known), rng, size),
            "job_ids_old": per_call(old_ids, rng, size),
        }
        assert store.holders("media/job1", -1) == old_holders(store, "media/job1", -1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,1000000", help="stored results (1000,1000000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="holders-") as tmp:
        rows = {size: measure(size, Path(tmp), args.seed) for size in sizes}
    small, large = rows[sizes[0]], rows[sizes[-1]]
    print(f"| lookup | {' | '.join(f'{s:,} results' for s in sizes)} | ratio |")
    print("|---|" + "---:|" * (len(sizes) + 1))
    for key, label in (
        ("holders_new", "holders (range on the file index)"),
        ("holders_old", "holders before (substr() scan)"),
        ("job_ids_new", "job ids (KnownJobIds view)"),
        ("job_ids_old", "job ids before (set rebuilt)"),
    ):
        cells = " | ".join(f"{1e6 * rows[s][key]:,.1f} µs" for s in sizes)
        ratio = large[key] / small[key] if small[key] else float("nan")
        print(f"| {label} | {cells} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
