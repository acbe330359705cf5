"""Callback delivery: POST the final query envelope to `callBackUrl`, signed, with retries.

Attempts run on a small thread pool so one slow receiver cannot hold up task ends or other
deliveries; the scheduler only decides *when* each attempt starts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from pipeline.simulator.config import SimConfig
from pipeline.simulator.scheduler import Scheduler
from pipeline.simulator.stats import Stats

log = logging.getLogger(__name__)


def sign(key: str, task_id: str, timestamp: int) -> str:
    """Kie's webhook signature: base64(HMAC-SHA256(key, taskId + "." + timestamp))."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class CallbackSender:
    def __init__(
        self,
        scheduler: Scheduler,
        stats: Stats,
        lock: threading.RLock,
        config: Callable[[], SimConfig],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._scheduler = scheduler
        self._stats = stats
        self._lock = lock  # the service lock, which guards `stats`
        self._config = config  # read per attempt: /__sim/control may change key or attempts
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sim-callback")
        # Made on first use: building its TLS context costs tens of milliseconds, which most
        # simulators (no callBackUrl in sight) need not pay at start-up.
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._closed = False

    def send(self, url: str, task_id: str, envelope: dict[str, Any]) -> None:
        """Deliver from now on, in the background; never raises."""
        body = json.dumps(envelope, ensure_ascii=False).encode()
        self._submit(url, task_id, body, attempt=1)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._client_lock:
            if self._client is not None:
                self._client.close()

    def _submit(self, url: str, task_id: str, body: bytes, attempt: int) -> None:
        if self._closed:
            return
        # RuntimeError: the pool shut down between the check and the submit.
        with contextlib.suppress(RuntimeError):
            self._pool.submit(self._attempt, url, task_id, body, attempt)

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._closed:
                raise RuntimeError("callback sender closed")  # counted as a failed attempt
            if self._client is None:
                self._client = httpx.Client(follow_redirects=False)
            return self._client

    def _attempt(self, url: str, task_id: str, body: bytes, attempt: int) -> None:
        config = self._config()
        headers = {"Content-Type": "application/json"}
        if config.webhook_hmac_key is not None:
            # A fresh timestamp per attempt, so a retry is not rejected as a stale replay.
            timestamp = int(time.time())
            headers["X-Webhook-Timestamp"] = str(timestamp)
            headers["X-Webhook-Signature"] = sign(config.webhook_hmac_key, task_id, timestamp)
        try:
            answer = self._http().post(
                url, content=body, headers=headers, timeout=config.callback_timeout
            )
            ok = 200 <= answer.status_code < 300
        except (httpx.HTTPError, OSError, RuntimeError) as exc:  # RuntimeError: client closed
            log.debug("callback to %s failed: %s", url, exc)
            ok = False
        with self._lock:
            if ok:
                self._stats.callbacks["delivered"] += 1
                return
            self._stats.callbacks["failed_attempts"] += 1
            if attempt >= config.callback_attempts:
                self._stats.callbacks["gave_up"] += 1
                return
        delay = config.scaled(config.callback_backoff) * 2 ** (attempt - 1)
        self._scheduler.call_at(
            self._clock() + delay, lambda: self._submit(url, task_id, body, attempt + 1)
        )
