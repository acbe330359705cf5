"""The client against the simulator over HTTP: envelopes, quirks and the error tree."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.kie import client as kie
from pipeline.results import download
from pipeline.simulator import SimConfig, Simulator, running_simulator

KEY = "client-test-key"
BODY = {
    "model": "sora-2-text-to-video",
    "input": {"prompt": "a lighthouse at dusk", "aspect_ratio": "landscape", "n_frames": "10"},
}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with running_simulator(SimConfig(api_keys=(KEY,), time_scale=0.002, seed=5)) as s:
        yield s


def call(sim: Simulator, method: str, *args: Any, key: str = KEY) -> Any:
    async def go() -> Any:
        async with kie.KieClient(sim.base_url, key, timeout=5) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(go())


def test_create_then_query_until_success(sim: Simulator) -> None:
    task_id = call(sim, "create_task", BODY)
    assert isinstance(task_id, str) and task_id
    for _ in range(400):
        info = call(sim, "record_info", task_id)
        if info.finished:
            break
        asyncio.run(asyncio.sleep(0.01))
    assert info.state == "success" and info.result_urls
    assert info.fail_code is None and info.fail_msg is None
    assert call(sim, "credit") == 100_000 - 30
    fresh = call(sim, "download_url", info.result_urls[0])
    assert fresh.startswith("http")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"maintenance": True}, kie.Maintenance),
        ({"disabled_models": ["sora-2-text-to-video"]}, kie.ModelDisabled),
        ({"credits": 0}, kie.InsufficientCredits),
        ({"faults": {"http_500": 1.0}}, kie.MalformedAnswer),  # an HTML page: ambiguous
        ({"faults": {"reset": 1.0}}, kie.TransportError),
        ({"faults": {"malformed_json": 1.0}}, kie.TransportError),
    ],
)
def test_create_errors_map_to_the_tree(
    sim: Simulator, change: dict[str, Any], error: type[kie.KieError]
) -> None:
    sim.control(**change)
    with pytest.raises(error) as caught:
        call(sim, "create_task", BODY)
    assert KEY not in str(caught.value)
    if isinstance(caught.value, kie.TransportError):
        # Only a refused connection proves nothing was made; a reset, a garbled body or an
        # HTML page may follow a task Kie created.
        assert caught.value.ambiguous is True


def test_bad_key_is_auth_error_and_the_key_is_not_echoed(sim: Simulator) -> None:
    with pytest.raises(kie.AuthError) as caught:
        call(sim, "create_task", BODY, key="wrong-key-xyz")
    assert "wrong-key-xyz" not in str(caught.value)
    assert not issubclass(kie.AuthError, kie.RetryableError)


def test_invalid_input_is_rejected_permanently(sim: Simulator) -> None:
    with pytest.raises(kie.Rejected):
        call(
            sim,
            "create_task",
            {"model": "sora-2-text-to-video", "input": {"prompt": "x", "n_frames": 10}},
        )


def test_unknown_task_is_not_found(sim: Simulator) -> None:
    with pytest.raises(kie.NotFound):
        call(sim, "record_info", "0" * 32)


def test_lost_answer_is_ambiguous_but_a_refused_connection_is_not(sim: Simulator) -> None:
    sim.control(faults={"lost_answer": 1.0})
    with pytest.raises(kie.TransportError) as caught:
        call(sim, "create_task", BODY)
    assert caught.value.ambiguous is True

    async def refused() -> None:
        async with kie.KieClient("http://127.0.0.1:9", KEY, timeout=2) as client:
            await client.create_task(BODY)

    with pytest.raises(kie.TransportError) as caught:
        asyncio.run(refused())
    assert caught.value.ambiguous is False


@pytest.mark.parametrize(
    ("raw", "urls"),
    [
        ('{"resultUrls": ["https://x/a.mp4"]}', ("https://x/a.mp4",)),
        ({"resultUrls": ["https://x/b.mp4"]}, ("https://x/b.mp4",)),
        ("", ()),
        (None, ()),
    ],
)
def test_result_json_is_read_as_string_or_object(raw: Any, urls: tuple[str, ...]) -> None:
    info = kie.parse_task_info(
        {"taskId": "t", "state": "success", "resultJson": raw, "failCode": "", "failMsg": None}
    )
    assert info.result_urls == urls and info.fail_code is None


def test_codes_map_to_error_classes() -> None:
    error = kie._error_for(422, "bad")
    assert isinstance(error, kie.Rejected) and error.code == 422
    assert isinstance(kie._error_for(503, "x"), kie.ServerError)
    assert isinstance(kie._error_for(418, "x"), kie.PermanentError)


def _finished(sim: Simulator) -> kie.TaskInfo:
    task_id = call(sim, "create_task", BODY)
    for _ in range(400):
        info: kie.TaskInfo = call(sim, "record_info", task_id)
        if info.finished:
            return info
        asyncio.run(asyncio.sleep(0.01))
    raise AssertionError("the task did not finish")


def test_download_result_from_the_simulator_resumes_a_cut_transfer(
    sim: Simulator, tmp_path: Path
) -> None:
    """Over real HTTP: a transfer cut in the middle is resumed with Range for the same task,
    and the file is named and typed from what the host served."""
    info = _finished(sim)
    sim.control(faults={"truncated_download": 1.0})
    pauses: list[int] = []

    async def pause(n: int) -> None:
        pauses.append(n)
        sim.control(faults={"truncated_download": 0.0})

    async def refresh(url: str) -> str:
        raise AssertionError("the URL has not expired")

    async def go() -> download.Result:
        async with kie.KieClient(sim.base_url, KEY, timeout=5) as client:
            return await download.download_result(
                client,
                info.result_urls[0],
                tmp_path / "media" / "j0",
                refresh=refresh,
                pause=pause,
                source=info.task_id,
                expected_media="video",
            )

    result = asyncio.run(go())
    data = (tmp_path / "media" / "j0.mp4").read_bytes()
    assert result.path.name == "j0.mp4" and result.media_type == "video/mp4"
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size == len(data)
    assert pauses == [1] and sim.stats()["file_download_bytes"] == len(data)
    assert os.listdir(tmp_path / "media") == ["j0.mp4"]
