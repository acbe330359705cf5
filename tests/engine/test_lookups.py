"""The two lookups every download makes, which must not grow with the folder's history
(issue 27): the attempts holding a name (`StateStore.holders`) and the job ids that may own
a file (`KnownJobIds`). Each is checked against the implementation it replaced."""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

from benchmarks.holders import old_holders  # the lookup as it was, the benchmark's baseline
from pipeline.engine.downloader import KnownJobIds
from pipeline.engine.journal import Journal
from pipeline.results.names import result_stem
from pipeline.state.store import StateStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema1"

# Names that sit next to one another in sort order, or share a prefix, or differ in case:
# whatever a range condition could get wrong, a substr() condition got right.
FILES = (
    "media/a.png",
    "media/a.b.png",
    "media/a.",
    "media/a",
    "media/a..png",
    "media/a-2.png",
    "media/a/2.png",
    "media/a/.png",
    "media/a0.png",
    "media/A.png",
    "media/a.PNG",
    "media/ab.png",
    "media/a\u012e.png",  # U+012E: '.' in its low byte under UTF-16
    "media/a\u012epng",
    "media/\u00e4.png",
    "media/\u00e4.b.png",
    "media/takes/a/20260101-000000-abcdef12.png",
    "media/takes.png",
    "media/takes/2.png",
    "videos/a.mp4",
    "media/poster.jpg",
    "media/poster-2.jpg",
    "media/poster/2.jpg",
    "media/poster-2.b.jpg",
    "media/x.y.z.webm",
    "media/x.y.webm",
    "media/x.mp4",
    "",
)
STEMS = (
    "media/a",
    "media/a.b",
    "media/a/2",
    "media/a-2",
    "media/A",
    "media/\u00e4",
    "media/takes",
    "media/poster",
    "media/poster-2",
    "media/poster/2",
    "media/x",
    "media/x.y",
    "media/nothing",
    "videos/a",
    "media",
    "",
)


def varied_state(path: Path, seed: int = 7) -> StateStore:
    """Attempts of many jobs, each holding one to three of FILES (some twice, some with no
    file at all), in random order."""
    rng = random.Random(seed)
    store = StateStore.open(path, "http://kie")
    with store.transaction():
        for n in range(120):
            cur = store.conn.execute(
                "INSERT INTO attempts (job_id, fingerprint, attempt, model, phase, intent_at) "
                "VALUES (?, ?, 1, 'm', 'succeeded', 0)",
                (f"job{n % 17}", f"fp{n}"),
            )
            for idx in range(1, rng.randint(1, 3) + 1):
                file = rng.choice((*FILES, None))
                store.conn.execute(
                    "INSERT INTO results (attempt_id, idx, url, file) VALUES (?, ?, 'u', ?)",
                    (cur.lastrowid, idx, file),
                )
    return store


def test_holders_return_what_the_full_scan_did(tmp_path: Path) -> None:
    with varied_state(tmp_path / "state.sqlite") as store:
        ids = [row[0] for row in store.conn.execute("SELECT id FROM attempts")]
        compared = 0
        for stem in STEMS:
            for keep in (*ids[::7], -1):
                assert store.holders(stem, keep) == old_holders(store, stem, keep), (stem, keep)
                compared += bool(old_holders(store, stem, keep))
        assert compared > 50  # the comparison was not of empty lists only


def test_holders_answer_from_the_index(tmp_path: Path) -> None:
    """The query the lookup sends searches the index on `file` (no scan of the results),
    in a new state file and in one migrated from the first release's schema."""
    migrated = tmp_path / "migrated.sqlite"
    shutil.copy(FIXTURE / "state.sqlite", migrated)
    with StateStore.open(migrated, "simulator"):
        pass  # opened for writing: migrated in place
    for path in (tmp_path / "new.sqlite", migrated):
        with StateStore.open(path, "simulator") as store:
            sent: list[str] = []
            store.conn.set_trace_callback(sent.append)
            store.holders("media/hero", 1)
            store.conn.set_trace_callback(None)
            query = next(s for s in sent if "FROM results" in s and "file" in s)
            plan = " ".join(
                str(row[-1]) for row in store.conn.execute(f"EXPLAIN QUERY PLAN {query}")
            )
            assert "USING INDEX results_file" in plan or "COVERING INDEX" in plan, plan
            assert "SCAN results" not in plan, plan


def test_the_index_survives_a_foreign_encoding(tmp_path: Path) -> None:
    """A state in UTF-16 (never written by run-pipeline, but SQLite allows it) still gets
    the exact answer: the prefix is checked again on the rows the range returns."""
    path = tmp_path / "state.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA encoding = 'UTF-16le'")
    conn.execute("CREATE TABLE t (x)")  # the encoding is fixed once the file has a page
    conn.execute("DROP TABLE t")
    conn.close()
    with varied_state(path, seed=3) as store:
        assert store.conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-16le"
        for stem in STEMS:
            assert store.holders(stem, -1) == old_holders(store, stem, -1), stem


def test_known_job_ids_follow_the_history_as_it_grows(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite", "http://kie") as store:
        store.record_intent("old-2", "fp0", 1, "m")  # a job of an earlier manifest
        journal = Journal(store, lambda event: None)
        known = KnownJobIds(["poster", "hero"], journal)
        before = {"poster", "hero"} | set(journal.history)

        def stems() -> list[str]:
            return [result_stem(j, i, known) for j in ("poster", "old", "new") for i in (1, 2)]

        assert stems() == [
            result_stem(j, i, before) for j in ("poster", "old", "new") for i in (1, 2)
        ]
        assert "old-2" in known and "poster" in known and "new-2" not in known
        assert result_stem("old", 2, known) == "media/old/2"
        # A job id the state learns during the run counts at once, without a rebuild.
        journal._apply(store.record_intent("new-2", "fp1", 1, "m"))
        assert "new-2" in known and result_stem("new", 2, known) == "media/new/2"
