"""Callbacks end to end: the simulator signs and POSTs, the runner's receiver verifies."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from pipeline.kie.callbacks import CallbackReceiver, signature, verify
from pipeline.simulator import SimConfig
from tests.support.batch import KEY, SCALE, Batch
from tests.support.manifests import jobs_yaml

HMAC_KEY = "whsec-test-4242"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(api_keys=(KEY,), time_scale=SCALE, seed=3, webhook_hmac_key=HMAC_KEY)


def test_signed_callbacks_drive_detection_and_polling_is_only_a_fallback(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_WEBHOOK_HMAC_KEY", HMAC_KEY)
    port = free_port()
    batch.write(jobs_yaml(6))
    assert (
        batch.run(
            "--callback-listen",
            f"127.0.0.1:{port}",
            "--callback-url",
            f"http://127.0.0.1:{port}/kie",
        )
        == 0
    )
    stats = batch.stats()
    assert stats["callbacks"]["delivered"] == 6
    # Each task: one poll when its callback arrives, plus at most a few slow fallback polls.
    assert stats["queries"] <= 6 * 4
    log = (batch.folder / "run.log").read_text()
    assert "receiving callbacks on 127.0.0.1" in log


def test_callback_listen_without_url_is_a_usage_error(batch: Batch) -> None:
    batch.write(jobs_yaml(1))
    assert batch.run("--callback-listen", "127.0.0.1:0") == 2


def _post(url: str, task_id: str, headers: dict[str, str]) -> int:
    body = {"code": 200, "msg": "success", "data": {"taskId": task_id, "state": "success"}}
    return httpx.post(url, json=body, headers=headers).status_code


def test_receiver_rejects_forged_stale_and_malformed_callbacks() -> None:
    seen: list[str] = []
    with CallbackReceiver("127.0.0.1", 0, seen.append, HMAC_KEY) as receiver:
        url = "http://{}:{}/cb".format(*receiver.address)
        now = str(int(time.time()))
        good = {"X-Webhook-Timestamp": now, "X-Webhook-Signature": signature(HMAC_KEY, "t1", now)}
        forged = {
            "X-Webhook-Timestamp": now,
            "X-Webhook-Signature": signature("wrong-key", "t1", now),
        }
        old = str(int(time.time()) - 3600)
        stale = {"X-Webhook-Timestamp": old, "X-Webhook-Signature": signature(HMAC_KEY, "t1", old)}
        assert _post(url, "t1", forged) == 401
        assert _post(url, "t1", stale) == 401
        assert _post(url, "t1", {}) == 401
        assert _post(url, "t2", good) == 401  # signed for another task
        assert httpx.post(url, content=b"{not json", headers=good).status_code == 400
        assert seen == []  # nothing rejected reached the runner
        assert _post(url, "t1", good) == 200
        assert _post(url, "t1", good) == 200  # replays are harmless: the runner polls once
    assert seen == ["t1", "t1"]
    assert receiver.rejected == 5 and receiver.accepted == 2


def test_verify_reasons() -> None:
    now = 1_700_000_000.0
    ts = str(int(now))
    assert verify(HMAC_KEY, "t", ts, signature(HMAC_KEY, "t", ts), now=now) is None
    assert verify(HMAC_KEY, "t", "x", "y", now=now) == "bad timestamp"
    assert verify(HMAC_KEY, "t", ts, "AAAA", now=now) == "bad signature"
    assert verify(HMAC_KEY, "t", ts, signature(HMAC_KEY, "t", ts), now=now + 301) == (
        "stale timestamp"
    )


def test_forged_callback_changes_no_state(batch: Batch, tmp_path: Path) -> None:
    """A forged 'success' for a real task must not mark it succeeded: only recordInfo can."""
    from pipeline.state.store import StateStore

    batch.write(jobs_yaml(2))
    assert batch.run("--no-download") == 0
    with StateStore.open(batch.folder / "state.sqlite", readonly=True) as store:
        before = {k: [a.phase for a in v] for k, v in store.attempts_by_job().items()}
    seen: list[str] = []
    with CallbackReceiver("127.0.0.1", 0, seen.append, HMAC_KEY) as receiver:
        url = "http://{}:{}/cb".format(*receiver.address)
        assert (
            _post(url, "made-up", {"X-Webhook-Signature": "x", "X-Webhook-Timestamp": "1"}) == 401
        )
    with StateStore.open(batch.folder / "state.sqlite", readonly=True) as store:
        after = {k: [a.phase for a in v] for k, v in store.attempts_by_job().items()}
    assert before == after and seen == []
