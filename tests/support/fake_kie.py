"""A scripted, in-memory Kie for the state-machine tests: the runner's client, answering from
a script instead of the network, and able to "kill" the runner at any call.

Answers are keyed by fingerprint and by task (not by global call order), so a script means
the same thing whatever order the runner's concurrent loops happen to call in.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipeline.kie import client as kie
from pipeline.manifest.fingerprint import fingerprint

CREATE_ACTIONS = ("ok", "500", "429", "reset", "refused", "lost", "crash_before", "crash_after")
QUERY_ACTIONS = ("running", "500", "429", "garbled", "crash")
DOWNLOAD_ACTIONS = ("ok", "truncate", "expired", "crash_mid")
OUTCOMES = ("success", "fail", "moderated")


class Crash(BaseException):
    """The runner process dies at this point (SIGKILL): nothing after it reaches Kie."""


@dataclass
class Script:
    """What Kie will do. Lists are consumed front to back; once empty, all goes well."""

    creates: dict[str, list[str]] = field(default_factory=dict)  # by fingerprint
    # by (fingerprint, n-th task of it): polls before the end, and how it ends
    outcomes: dict[tuple[str, int], str] = field(default_factory=dict)
    queries: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    downloads: dict[tuple[str, int], list[str]] = field(default_factory=dict)


@dataclass
class FakeTask:
    task_id: str
    fingerprint: str
    ordinal: int
    outcome: str
    content: bytes
    answered: bool = True  # False: the create's answer never reached the runner
    finished: bool = False


def content_for(task_id: str) -> bytes:
    """A video of its own length and bytes for every task, so a splice would show. It starts
    like an MP4 (an ftyp box), so the download's type check takes it for one."""
    seed = hashlib.sha256(task_id.encode()).digest()
    return b"\x00\x00\x00\x18ftypmp42" + (seed * 200)[: 3000 + seed[0] * 7]


class FakeKie:
    def __init__(self) -> None:
        self.script = Script()
        self.tasks: dict[str, FakeTask] = {}
        self.by_fp: defaultdict[str, list[FakeTask]] = defaultdict(list)
        self.calls: Counter[str] = Counter()
        self.dead = False
        self.killed: asyncio.Event | None = None
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)

    def start(self, script: Script) -> None:
        """A new runner process begins, facing `script`."""
        self.script = script
        self.dead = False
        self.killed = asyncio.Event()

    def _die(self) -> None:
        self.dead = True
        if self.killed is not None:
            self.killed.set()
        raise Crash

    async def _enter(self, kind: str) -> None:
        await asyncio.sleep(0)  # let the runner's other loops interleave
        if self.dead:
            raise Crash
        self.calls[kind] += 1

    @staticmethod
    def _pop(queue: list[str] | None, default: str) -> str:
        return queue.pop(0) if queue else default

    # -- the KieClient interface ---------------------------------------------------------

    async def credit(self) -> float:
        await self._enter("credit")
        return 1e9

    # The families' calls: this fake is one createTask-shaped Kie whatever the family.
    async def create(self, family: str | None, body: dict[str, Any], *, sources: Any = None) -> str:
        return await self.create_task(body)

    async def record(self, family: str | None, task_id: str) -> kie.TaskInfo:
        return await self.record_info(task_id)

    async def fresh_url(self, family: str | None, task_id: str | None, url: str) -> str:
        return await self.download_url(url)

    async def create_task(self, body: dict[str, Any]) -> str:
        await self._enter("create")
        fp = fingerprint(body["model"], body["input"])
        action = self._pop(self.script.creates.get(fp), "ok")
        if action == "500":
            raise kie.ServerError("Kie answered 500: boom", 500)
        if action == "429":
            raise kie.RateLimited("Kie answered 429: slow down", 429)
        if action == "reset":  # sent, no answer, nothing happened
            raise kie.TransportError("no answer from Kie: ReadError", ambiguous=True)
        if action == "refused":
            raise kie.TransportError("cannot reach Kie: ConnectError", ambiguous=False)
        if action == "crash_before":
            self._die()
        ordinal = len(self.by_fp[fp])
        task_id = f"task{next(self._ids):04d}"
        outcome = self.script.outcomes.get((fp, ordinal), "success")
        task = FakeTask(task_id, fp, ordinal, outcome, content_for(task_id))
        self.tasks[task_id] = task
        self.by_fp[fp].append(task)
        if action in ("lost", "crash_after"):
            task.answered = False
            if action == "crash_after":
                self._die()
            raise kie.TransportError("no answer from Kie: RemoteProtocolError", ambiguous=True)
        return task_id

    async def record_info(self, task_id: str) -> kie.TaskInfo:
        await self._enter("query")
        task = self.tasks.get(task_id)
        if task is None:
            raise kie.NotFound("Kie answered 404: Task not found", 404)
        action = self._pop(self.script.queries.get((task.fingerprint, task.ordinal)), "end")
        if action == "500":
            raise kie.ServerError("Kie answered 500: boom", 500)
        if action == "429":
            raise kie.RateLimited("Kie answered 429: slow down", 429)
        if action == "garbled":
            raise kie.TransportError("Kie's answer is not a JSON envelope", ambiguous=True)
        if action == "crash":
            self._die()
        if action == "running":
            return kie.TaskInfo(task_id, "generating", (), None, None)
        task.finished = True
        if task.outcome == "success":
            return kie.TaskInfo(task_id, "success", (self._url(task),), None, None)
        if task.outcome == "moderated":
            return kie.TaskInfo(task_id, "fail", (), "422", "prompt contains prohibited content")
        return kie.TaskInfo(task_id, "fail", (), "501", "Generation failed")

    async def download_url(self, url: str) -> str:
        await self._enter("download_url")
        task_id = url.split("/")[-2]
        if task_id not in self.tasks:
            raise kie.NotFound("Kie answered 404: File not found", 404)
        return self._url(self.tasks[task_id])

    def _url(self, task: FakeTask) -> str:
        return f"https://files.example/{next(self._tokens)}/{task.task_id}/video.mp4"

    @asynccontextmanager
    async def open_file(self, url: str, offset: int = 0) -> AsyncIterator[_FakeResponse]:
        await self._enter("file")
        task = self.tasks[url.split("/")[-2]]
        action = self._pop(self.script.downloads.get((task.fingerprint, task.ordinal)), "ok")
        if action == "expired":
            yield _FakeResponse(403, {}, b"", None)
            return
        data = task.content
        if offset >= len(data):
            yield _FakeResponse(416, {"content-range": f"bytes */{len(data)}"}, b"", None)
            return
        headers = {"content-length": str(len(data) - offset)}
        status = 200
        if offset:
            status = 206
            headers["content-range"] = f"bytes {offset}-{len(data) - 1}/{len(data)}"
        body = data[offset:]
        cut = None if action == "ok" else len(body) // 2
        yield _FakeResponse(status, headers, body, cut, self if action == "crash_mid" else None)


class _FakeResponse:
    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        cut: int | None,
        killer: FakeKie | None = None,
    ) -> None:
        self.status_code = status
        self.headers = httpx.Headers(headers)
        self._body, self._cut, self._killer = body, cut, killer

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        if self._cut is None:
            yield self._body
            return
        yield self._body[: self._cut]
        await asyncio.sleep(0)
        if self._killer is not None:
            self._killer._die()
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")
