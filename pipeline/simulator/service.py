"""What Kie does with each API call: accounts, credits, limits, validation and task records.

Transport concerns (faults, envelopes on the wire, sockets) live in `api.py` and `server.py`;
this module answers "what would Kie say", and keeps the books. Every public method takes the
service lock, so the HTTP threads, the scheduler and the callback pool see one consistent
state.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from pipeline.manifest.fingerprint import fingerprint
from pipeline.models.pricing import credits_json
from pipeline.models.registry import ModelRegistry
from pipeline.simulator.callbacks import CallbackSender
from pipeline.simulator.catalog import Catalog
from pipeline.simulator.config import SimConfig, apply_changes, new_balances
from pipeline.simulator.families import (
    FETCH_FAILED,
    FOLLOW_UPS,
    RECORD_EMPTY,
    ROUTES,
    Op,
    family_callback,
    family_record,
    split_body,
)
from pipeline.simulator.files import Grant, file_path, parse_file_path
from pipeline.simulator.market import Market, refusal
from pipeline.simulator.persist import Store, account_id, task_from_json
from pipeline.simulator.ratelimit import SlidingWindow
from pipeline.simulator.records import answer as record_answer
from pipeline.simulator.records import draw_answer, unknown
from pipeline.simulator.replies import MAINTENANCE, NOT_SUPPORTED, PAUSED, UNAUTHORIZED, Reply
from pipeline.simulator.results import extension, orientation
from pipeline.simulator.rng import Streams
from pipeline.simulator.scheduler import Scheduler
from pipeline.simulator.stats import Stats
from pipeline.simulator.tasks import Task, plan_task, profile_for
from pipeline.simulator.uploads import Upload, UploadStore
from pipeline.simulator.wrong import result_extension


class KieService:
    def __init__(
        self,
        config: SimConfig,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.config = config
        self.clock, self.wall = clock, wall
        self.base_url = ""  # set once the server is bound; file URLs are built from it
        self.stopped = False
        self.rng = Streams(config.seed)
        self.stats = Stats()
        self.market = Market(config.model_dirs)
        self.catalog = Catalog(ModelRegistry())
        self._accounts = {key: i for i, key in enumerate(dict.fromkeys(config.api_keys))}
        self._account_ids = [account_id(key) for key in self._accounts]
        # Decimals: a task may cost 24.8 credits, and balances must not drift.
        self.balances = [Decimal(config.credits)] * len(self._accounts)
        self._create_windows = [SlidingWindow() for _ in self._accounts]
        self._query_windows = [SlidingWindow() for _ in self._accounts]
        self.tasks: dict[str, Task] = {}
        self._hd: dict[tuple[int, str, str], str] = {}  # Veo 1080p: (account, task, index)
        self.grants: dict[str, Grant] = {}
        self.uploads = UploadStore()
        self._ends: list[tuple[float, str]] = []  # (end time, taskId) not yet settled
        self.scheduler = Scheduler(clock)
        self.callbacks = CallbackSender(
            self.scheduler, self.stats, self.lock, lambda: self.config, clock
        )
        self.store = Store(config.state_dir) if config.state_dir else None
        if self.store is not None:
            self._restore(self.store)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.stopped = True  # ends dripping answers
        self.scheduler.stop()
        self.callbacks.close()
        if self.store is not None:
            with self.lock:
                self.store.close()
                self.store = None

    # --- the books on disk ---------------------------------------------------------------

    def _restore(self, store: Store) -> None:
        """Take over what the previous simulator on this state_dir left."""
        loaded = store.load()
        index = {aid: i for i, aid in enumerate(self._account_ids)}
        for aid, credits in loaded.balances.items():
            if aid in index:
                self.balances[index[aid]] = credits
        offset = self.clock() - self.wall()  # wall-clock seconds to this process's clock
        for aid, data in loaded.tasks:
            if aid not in index:
                continue  # an account this simulator does not have
            task = task_from_json(data, index[aid], offset)
            self.tasks[task.task_id] = task
            self._book_task(task)
        for token, task_id, aid, expires_wall in loaded.grants:
            if aid in index:
                self.grants[token] = Grant(task_id, index[aid], expires_wall + offset)
        for path, aid, uploaded, expires, blob in loaded.uploads:
            if aid in index:
                self.uploads.files[path] = Upload(path, bytes(blob), index[aid], uploaded, expires)
        self.uploads.log.extend(loaded.upload_log)

    def _save(self, **changes: Any) -> None:
        if self.store is not None:
            self.store.save(self._account_ids, **changes)

    def save_upload(self, upload: Upload, entry: dict[str, Any]) -> None:
        self._save(upload=(upload, entry))

    def save_task(self, task: Task) -> None:
        self._save(tasks=[task])

    def _book_task(self, task: Task) -> None:
        """Result grants and the end-of-task settlement of a new or restored task."""
        end = task.end_mono
        if end is None:
            return
        expires = end + self.config.scaled(self.config.url_ttl)
        for token in (task.result_token, task.watermark_token):
            self.grants[token] = Grant(task.task_id, task.account, expires)
        if not task.settled:
            heapq.heappush(self._ends, (end, task.task_id))
            self.scheduler.call_at(end, self.tick)

    # --- the API -------------------------------------------------------------------------

    def account_of(self, authorization: str | None) -> int | None:
        scheme, _, key = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._accounts.get(key.strip())

    def _gate(self, authorization: str | None, kind: str, now: float) -> Reply | int:
        """Maintenance, auth and rate limit, in Kie's order: a Reply to stop, or the account."""
        if self.config.maintenance:
            return MAINTENANCE
        account = self.account_of(authorization)
        if account is None:
            return UNAUTHORIZED
        windows = self._create_windows if kind == "create" else self._query_windows
        count, seconds = self.config.create_limit if kind == "create" else self.config.query_limit
        if not windows[account].try_acquire(now, count, self.config.scaled(seconds)):
            self.stats.rate_limited[kind] += 1
            return Reply(
                429, f"Rate limited: at most {count} requests per {seconds:g} s", account=account
            )
        return account

    def create(self, authorization: str | None, body: bytes, op: Op | None = None) -> Reply:
        """A create: createTask, or (`op`) a family's own create endpoint."""
        with self.lock:
            now = self.clock()
            self._settle_due(now)
            gate = self._gate(authorization, "create", now)
            if isinstance(gate, Reply):
                return gate
            reply = self._create(gate, body, now, op)
            return Reply(reply.code, reply.msg, reply.data, gate, reply.created)

    def _split(self, raw: bytes, op: Op | None) -> tuple[str, dict[str, Any], Any] | Reply:
        """(model, input, callBackUrl) of a create body, createTask's or a family's."""
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return Reply(422, "Request body is not valid JSON")
        if not isinstance(body, dict):
            return Reply(422, "Request body must be a JSON object")
        if op is not None:
            return split_body(op, body)
        model_name = body.get("model")
        if not isinstance(model_name, str) or not model_name:
            return Reply(422, "model is required")
        task_input = body.get("input")
        if not isinstance(task_input, dict):
            return Reply(422, "input is required and must be an object")
        return model_name, task_input, body.get("callBackUrl")

    def _create(self, account: int, raw: bytes, now: float, op: Op | None = None) -> Reply:
        split = self._split(raw, op)
        if isinstance(split, Reply):
            return split
        model_name, task_input, callback = split
        if model_name in self.config.disabled_models:
            return Reply(505, f"The model {model_name} is currently disabled")
        model = self.market.get(model_name)
        family = op.family if op is not None else "createTask"
        if model is None or model.family != family:
            return Reply(500, NOT_SUPPORTED)
        if model.paused is not None and self.config.model_pauses:
            return Reply(500, PAUSED)
        invalid = refusal(model, task_input, self.config.validation_500)
        if invalid is not None:
            return Reply(*invalid)
        if callback is not None and not _is_http_url(callback):
            return Reply(422, "callBackUrl must be an http(s) URL")
        source = self._source(account, model_name, task_input, now)
        if isinstance(source, Reply):
            return source
        body = {"model": model_name, "input": task_input}
        body.update({"callBackUrl": callback} if callback is not None else {})
        # Price and identity use the schema defaults filled in, as the live service would
        # apply them: sending {"prompt": p} and {"prompt": p, "n_frames": "10"} is one job.
        effective = {**model.defaults(), **task_input}
        price = model.credits(effective, self.config.default_price)
        if self.balances[account] < price:
            return Reply(
                402,
                f"Insufficient credits: the task costs {credits_json(price)}, "
                f"the balance is {credits_json(self.balances[account])}",
            )
        self.balances[account] -= price
        prompt = str(task_input.get("prompt", "")).casefold()
        moderated = any(w.casefold() in prompt for w in self.config.moderation_words if w)
        seconds = model.seconds(effective) or 0
        long = model.media == "video" and ("upscale" in model_name or seconds >= 15)
        refused = self.uploads.check_input(task_input, self.base_url, self.wall())
        if refused is not None and family != "createTask":  # these answer it at once
            self.balances[account] += price
            return Reply(451, FETCH_FAILED)
        plan = plan_task(
            self.config,
            self.rng.tasks,
            moderated,
            profile_for(self.config, model.media, long),
            refused,
        )
        answer_code, plan = draw_answer(self.config, self.rng.records, plan)
        task = Task(
            task_id=self._fresh_task_id(),
            account=account,
            model=model_name,
            body=body,
            fingerprint=fingerprint(model_name, effective),
            aspect_ratio=orientation(effective),
            credits=price,
            created_mono=now,
            created_wall=self.wall(),
            plan=plan,
            phases=self.config.phase_fractions,
            callback_url=callback,
            result_token=self.rng.hex_id(),
            watermark_token=self.rng.hex_id(),
            media=model.media,
            ext=result_extension(self, extension(model.media, effective)),
            results=model.result_count(effective),
            answer_code=answer_code,
            audio_data=self.config.audio_data and model.media == "audio",
            family=family,
        )
        self.tasks[task.task_id] = task
        self.stats.creates += 1
        self.stats.creates_by_fingerprint[task.fingerprint] += 1
        self._book_task(task)
        self._save(balances=self.balances, tasks=[task])
        data = {"taskId": task.task_id, "recordId": task.task_id}
        return Reply(200, "success", data, created=task)

    def _fresh_task_id(self) -> str:
        while (task_id := self.rng.hex_id()) in self.tasks:
            pass
        return task_id

    def _source(
        self, account: int, model: str, task_input: Mapping[str, Any], now: float
    ) -> Reply | None:
        """A follow-up's `taskId` must be a finished task of this account and family."""
        if model not in FOLLOW_UPS:
            return None
        source = self.tasks.get(str(task_input.get("taskId")))
        family = self.market.get(model)
        if source is None or source.account != account or family is None:
            return Reply(422, RECORD_EMPTY)
        if source.family != family.family or source.state(now) != "success":
            return Reply(422, "The source task has not succeeded")
        return None

    def hd_video(self, authorization: str | None, query: Mapping[str, list[str]]) -> Reply:
        """Veo's `GET get-1080p-video`: starts the 1080p version of a task on the first call
        (a task of its own, billed then), answers its URL once it is ready."""
        with self.lock:
            now = self.clock()
            self._settle_due(now)
            self.stats.queries += 1
            gate = self._gate(authorization, "query", now)
            if isinstance(gate, Reply):
                return gate
            source = next(iter(query.get("taskId", [])), "")
            index = next(iter(query.get("index", [])), "0")
            key = (gate, source, index)
            task = self.tasks.get(self._hd.get(key, ""))
            if task is None:
                body = json.dumps({"taskId": source, "index": int(index) if index.isdigit() else 0})
                op = ROUTES[("GET", "/api/v1/veo/get-1080p-video")]
                reply = self._create(gate, body.encode(), now, op)
                if reply.created is None:
                    return Reply(reply.code, reply.msg, reply.data, gate)
                task = reply.created
                self._hd[key] = task.task_id
            record = self._record(task, now)
            if task.state(now) == "fail":
                return Reply(
                    400, str(record.get("failMsg") or "1080P generation failed"), None, gate
                )
            urls = (record.get("response") or {}).get("resultUrls") or []
            data = {"resultUrl": urls[0] if urls else None}
            msg = "success" if urls else "1080P is processing. It should be ready in 1-2 minutes."
            return Reply(200, msg, data, gate)

    def record_info(
        self, authorization: str | None, task_id: str | None, family: str = "createTask"
    ) -> Reply:
        with self.lock:
            now = self.clock()
            self._settle_due(now)
            self.stats.queries += 1
            gate = self._gate(authorization, "query", now)
            if isinstance(gate, Reply):
                return gate
            if not task_id:
                return Reply(422, "taskId is required", account=gate)
            task = self.tasks.get(task_id)
            if family != "createTask" and (task is None or task.family != family):
                return Reply(422, RECORD_EMPTY, account=gate)
            if (
                task is None
                or task.account != gate
                or task.family != family
                or unknown(self.config, task, now)
            ):
                if self.config.unknown_task_422:
                    return Reply(422, "recordInfo is null", account=gate)
                return Reply(404, "Task not found", account=gate)
            reply = record_answer(self.config, task, self._record(task, now), now, gate)
            if reply.code == 200 and isinstance(reply.data, dict):
                return Reply(200, "success", family_record(task, reply.data), gate)
            return reply

    def download_url(self, authorization: str | None, raw: bytes) -> Reply:
        with self.lock:
            now = self.clock()
            self._settle_due(now)
            self.stats.download_url_calls += 1
            gate = self._gate(authorization, "query", now)
            if isinstance(gate, Reply):
                return gate
            try:
                url = json.loads(raw).get("url")
            except (ValueError, UnicodeDecodeError, AttributeError):
                url = None
            if not isinstance(url, str) or not url:
                return Reply(422, "url is required", account=gate)
            parsed = parse_file_path(url)
            if parsed is None:
                return Reply(422, "url is not a file URL of this service", account=gate)
            grant = self.grants.get(parsed.token)
            if grant is None or grant.task_id != parsed.task_id or grant.account != gate:
                return Reply(404, "File not found", account=gate)
            token = self.rng.hex_id()
            ttl = self.config.scaled(self.config.download_url_ttl)
            self.grants[token] = Grant(grant.task_id, gate, now + ttl)
            self._save(grant=(token, grant.task_id, gate, self.wall() + ttl))
            path = file_path(token, grant.task_id, parsed.watermark, parsed.index, parsed.ext)
            return Reply(200, "success", self.base_url + path, gate)

    def credit(self, authorization: str | None) -> Reply:
        with self.lock:
            now = self.clock()
            self._settle_due(now)  # refunds due by now show in the balance
            self.stats.credit_calls += 1
            gate = self._gate(authorization, "query", now)
            if isinstance(gate, Reply):
                return gate
            return Reply(200, "success", credits_json(self.balances[gate]), gate)

    def record_of(self, task: Task) -> dict[str, Any]:
        """The task's recordInfo `data` as of now (under the lock)."""
        return self._record(task, self.clock())

    def _record(self, task: Task, now: float) -> dict[str, Any]:
        def urls(token: str, watermark: bool) -> list[str]:
            return [
                self.base_url + file_path(token, task.task_id, watermark, i, task.ext)
                for i in range(task.results)
            ]

        return task.record(now, urls(task.result_token, False), urls(task.watermark_token, True))

    # --- task ends: refunds and callbacks ------------------------------------------------

    def tick(self) -> None:
        with self.lock:
            self._settle_due(self.clock())

    def _settle_due(self, now: float) -> None:
        """Book every task that has ended by `now`: refund failures, send callbacks.

        Runs from the scheduler at each end time and at the start of every API call, so the
        balance is right even if the scheduler thread is a little late.
        """
        settled: list[Task] = []
        while self._ends and self._ends[0][0] <= now:
            _, task_id = heapq.heappop(self._ends)
            task = self.tasks[task_id]
            if task.settled:
                continue
            task.settled = True
            settled.append(task)
            if task.plan.fail:  # Kie refunds tasks that end without a video
                self.balances[task.account] += task.credits
            if task.callback_url:
                record = self._record(task, now)
                code, msg = (501, record["failMsg"]) if task.plan.fail else (200, "success")
                envelope = family_callback(task, record, code, msg)
                self.callbacks.send(task.callback_url, task.task_id, envelope)
        if settled:
            self._save(balances=self.balances, tasks=settled)

    # --- /__sim/ views and control -------------------------------------------------------

    def stats_view(self) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            self._settle_due(now)
            out = self.stats.snapshot()
            out["tasks_by_state"] = dict(Counter(t.state(now) for t in self.tasks.values()))
            out["accounts"] = [
                {
                    "index": i,
                    "credits": credits_json(balance),
                    "tasks": sum(1 for t in self.tasks.values() if t.account == i),
                }
                for i, balance in enumerate(self.balances)
            ]
            return out

    def tasks_view(self) -> list[dict[str, Any]]:
        with self.lock:
            now = self.clock()
            return [task.summary(now) for task in self.tasks.values()]

    def requests_view(self, since: float | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.stats.requests if since is None or r["time"] >= since]

    def uploads_view(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.uploads.log)

    def settings_view(self) -> dict[str, Any]:
        with self.lock:
            out = self.config.public()
            out["balances"] = [credits_json(b) for b in self.balances]
            return out

    def control(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply run-time changes atomically (all or nothing); ConfigError when invalid."""
        with self.lock:
            rest = dict(changes)
            balances = new_balances(self.balances, self._accounts, rest.pop("credits", None))
            self.config = apply_changes(self.config, rest)
            self.balances = balances
            self._save(balances=self.balances)
        return self.settings_view()


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)
