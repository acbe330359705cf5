"""The simulator's books kept on disk (`SimConfig.state_dir`), so a restarted simulator knows
the tasks, uploads and balances of the one before it, as Kie would.

One SQLite file, written in a transaction at each change (a create, a task's end, an upload, a
balance change), so a killed process leaves the last committed state and never half a file.
Times are stored as wall-clock seconds: a task created 90 s before a restart is 90 s old
after it, and ends when it would have. Accounts are stored by a digest of their API key (the
key itself never reaches the file).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.models.pricing import as_credits, credits_json
from pipeline.simulator.tasks import Plan, Task
from pipeline.simulator.uploads import Upload

FILE_NAME = "kie-simulator.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, credits INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, account TEXT NOT NULL,
                                  data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (token TEXT PRIMARY KEY, task_id TEXT NOT NULL,
                                   account TEXT NOT NULL, expires_wall REAL NOT NULL);
CREATE TABLE IF NOT EXISTS uploads (path TEXT PRIMARY KEY, account TEXT NOT NULL,
                                    uploaded REAL NOT NULL, expires REAL NOT NULL,
                                    data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS upload_log (id INTEGER PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def account_id(key: str) -> str:
    """A stable name for an account that does not reveal its key."""
    return hashlib.sha256(b"kie-simulator-account:" + key.encode()).hexdigest()[:24]


def task_to_json(task: Task) -> dict[str, Any]:
    plan = task.plan
    return {
        "task_id": task.task_id,
        "model": task.model,
        "body": task.body,
        "fingerprint": task.fingerprint,
        "aspect_ratio": task.aspect_ratio,
        "credits": credits_json(task.credits),
        "created_wall": task.created_wall,
        "plan": {"latency": plan.latency, "ends": plan.ends, "fail": plan.fail},
        "phases": list(task.phases),
        "callback_url": task.callback_url,
        "result_token": task.result_token,
        "watermark_token": task.watermark_token,
        "lost_answer": task.lost_answer,
        "settled": task.settled,
        "media": task.media,
        "ext": task.ext,
        "results": task.results,
        "answer_code": task.answer_code,
        "audio_data": task.audio_data,
        "family": task.family,
    }


def task_from_json(data: dict[str, Any], account: int, mono_offset: float) -> Task:
    """A stored task; `mono_offset` turns its wall-clock times into this process's clock."""
    plan = data["plan"]
    fail = tuple(plan["fail"]) if plan["fail"] else None
    waiting, queuing = data["phases"]
    return Task(
        task_id=data["task_id"],
        account=account,
        model=data["model"],
        body=data["body"],
        fingerprint=data["fingerprint"],
        aspect_ratio=data["aspect_ratio"],
        credits=as_credits(data["credits"]),
        created_mono=data["created_wall"] + mono_offset,
        created_wall=data["created_wall"],
        plan=Plan(float(plan["latency"]), bool(plan["ends"]), fail),
        phases=(float(waiting), float(queuing)),
        callback_url=data["callback_url"],
        result_token=data["result_token"],
        watermark_token=data["watermark_token"],
        lost_answer=bool(data["lost_answer"]),
        settled=bool(data["settled"]),
        media=data.get("media", "video"),
        ext=data.get("ext", "mp4"),
        results=int(data.get("results", 1)),
        answer_code=data.get("answer_code"),
        audio_data=bool(data.get("audio_data", False)),
        family=str(data.get("family", "createTask")),
    )


@dataclass
class Loaded:
    """What a previous simulator left: by account digest."""

    balances: dict[str, Decimal] = field(default_factory=dict)
    tasks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    grants: list[tuple[str, str, str, float]] = field(default_factory=list)
    uploads: list[tuple[str, str, float, float, bytes]] = field(default_factory=list)
    upload_log: list[dict[str, Any]] = field(default_factory=list)


class Store:
    def __init__(self, folder: str | Path) -> None:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        # Used from several threads, always under the service lock.
        self._db = sqlite3.connect(path / FILE_NAME, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def load(self) -> Loaded:
        db = self._db
        out = Loaded()
        # An INTEGER column keeps a fractional balance as REAL (SQLite's type affinity).
        for account, credits in db.execute("SELECT account, credits FROM balances"):
            out.balances[account] = as_credits(credits)
        for account, data in db.execute("SELECT account, data FROM tasks ORDER BY rowid"):
            out.tasks.append((account, json.loads(data)))
        out.grants = list(db.execute("SELECT token, task_id, account, expires_wall FROM grants"))
        out.uploads = list(
            db.execute("SELECT path, account, uploaded, expires, data FROM uploads ORDER BY rowid")
        )
        out.upload_log = [json.loads(e) for (e,) in db.execute("SELECT entry FROM upload_log")]
        return out

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._db as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def save(
        self,
        accounts: Sequence[str],
        *,
        balances: Sequence[Decimal] | None = None,
        tasks: Sequence[Task] = (),
        grant: tuple[str, str, int, float] | None = None,
        upload: tuple[Upload, dict[str, Any]] | None = None,
    ) -> None:
        """Commit one change, all of it or nothing."""
        with self._db as db:
            if balances is not None:
                db.executemany(
                    "INSERT OR REPLACE INTO balances VALUES (?, ?)",
                    zip(accounts, map(credits_json, balances), strict=True),
                )
            for task in tasks:
                db.execute(
                    "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?)",
                    (task.task_id, accounts[task.account], json.dumps(task_to_json(task))),
                )
            if grant is not None:
                token, task_id, account, expires_wall = grant
                db.execute(
                    "INSERT OR REPLACE INTO grants VALUES (?, ?, ?, ?)",
                    (token, task_id, accounts[account], expires_wall),
                )
            if upload is not None:
                item, entry = upload
                db.execute(
                    "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?)",
                    (
                        item.path,
                        accounts[item.account],
                        item.uploaded_wall,
                        item.expires_wall,
                        item.data,
                    ),
                )
                db.execute("INSERT INTO upload_log (entry) VALUES (?)", (json.dumps(entry),))
