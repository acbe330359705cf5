"""Each family's calls against the simulator over loopback, and what the runner refuses
before paying: Kie's documented answers mapped onto the one error tree."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.cli.main import main
from pipeline.kie import families
from pipeline.kie.answers import error_for
from pipeline.kie.callbacks import parse_task_id
from pipeline.kie.client import KieClient, NotFound, Rejected
from pipeline.kie.policy import Action, verdict
from pipeline.models.registry import ModelRegistry
from pipeline.simulator import SimConfig, Simulator, running_simulator

KEY = "families-key"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with running_simulator(SimConfig(api_keys=(KEY,), time_scale=0.002, seed=3)) as running:
        yield running


@pytest.mark.parametrize("family", families.NAMES)
def test_an_unknown_task_on_each_familys_record_is_not_found(sim: Simulator, family: str) -> None:
    async def go() -> None:
        async with KieClient(sim.base_url, KEY) as kie:
            with pytest.raises(NotFound) as caught:
                await kie.record(family, "no-such-task")
            assert verdict(caught.value, "query").action is Action.NOT_FOUND

    asyncio.run(go())
    path = families.family(family).record_path
    assert any(r["path"] == path for r in sim.requests())


def test_veo_answers_for_ratio_and_image_fetch_refuse_the_job_only(sim: Simulator) -> None:
    body = {"model": "veo3_fast", "input": {"prompt": "A cat", "aspect_ratio": "1:1"}}

    async def go() -> None:
        async with KieClient(sim.base_url, KEY) as kie:
            with pytest.raises(Rejected, match=r"Ratio error.*not 1:1") as caught:
                await kie.create("veo", body)
            assert verdict(caught.value, "create").action is Action.FAIL_JOB

    asyncio.run(go())
    veo = families.family("veo")
    fetch = veo.error(error_for(451, "Failed to fetch the image"), "create")
    assert isinstance(fetch, Rejected) and "could not fetch an input image" in fetch.message
    assert verdict(fetch, "create").action is Action.FAIL_JOB
    flagged = veo.error(error_for(400, "flagged"), "create")
    assert verdict(flagged, "create").action is Action.FAIL_JOB


def test_a_veo_1_1_video_is_refused_at_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "square.yaml"
    path.write_text(
        "version: 1\njobs:\n  - id: square\n    model: veo3_fast\n    prompt: A cat\n"
        "    aspect_ratio: '1:1'\n"
    )
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{path}:6:19: ") and "1:1" in line and "16:9" in line


def test_a_task_id_refers_only_to_a_job_of_the_same_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        "version: 1\njobs:\n  - id: clip\n    model: kling-2.6/text-to-video\n"
        "    prompt: A fox\n    sound: false\n    duration: '5'\n"
        "  - id: big\n    model: veo/get-4k-video\n    taskId: {task: clip}\n"
    )
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "takes the task of a veo job" in out and "runs on createTask" in out


def test_gpt4o_image_links_are_renewed_by_its_own_download_url(sim: Simulator) -> None:
    body = {"model": "gpt4o-image", "input": {"prompt": "A fox", "size": "1:1"}}

    async def go() -> str:
        async with KieClient(sim.base_url, KEY) as kie:
            task = await kie.create("gpt4o-image", body)
            for _ in range(400):
                info = await kie.record("gpt4o-image", task)
                if info.finished:
                    break
                await asyncio.sleep(0.02)
            assert info.state == "success" and len(info.result_urls) == 4
            return await kie.fresh_url("gpt4o-image", task, info.result_urls[1])

    fresh = asyncio.run(go())
    asked = [r for r in sim.requests() if r["path"] == "/api/v1/gpt4o-image/download-url"]
    assert asked and asked[-1]["code"] == 200
    assert httpx.get(fresh).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"code": 200, "msg": "ok", "data": {"taskId": "t-1", "info": {"resultUrls": []}}},
        {"code": 200, "msg": "ok", "data": {"task_id": "t-1", "video_url": "https://x/v.mp4"}},
        {"code": 200, "msg": "ok", "data": {"callbackType": "complete", "task_id": "t-1"}},
    ],
)
def test_family_callbacks_give_only_their_task_id(payload: dict[str, object]) -> None:
    assert parse_task_id(json.dumps(payload).encode()) == "t-1"


def test_models_list_shows_the_families_and_pull_refuses_them(
    sim: Simulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIE_API_KEY", KEY)
    assert main(["models", "list", "--json", "--base-url", sim.base_url]) == 0
    listed = {m["model"] for m in json.loads(capsys.readouterr().out)["models"]}
    assert {"veo3_fast", "veo/get-4k-video", "runway", "flux-kontext-pro", "gpt4o-image"} <= listed
    assert "V5" in listed
    code = main(["models", "pull", "veo3_fast", "--dir", str(tmp_path), "--base-url", sim.base_url])
    assert code == 2
    assert "bundled with run-pipeline" in capsys.readouterr().err


def test_every_family_model_file_names_its_family() -> None:
    bundled = ModelRegistry()
    kinds = {name: m.family for name in bundled.names() if (m := bundled.get(name))}
    assert kinds["veo3_fast"] == "veo" and kinds["veo/extend"] == "veo"
    assert kinds["runway/extend"] == "runway" and kinds["flux-kontext-max"] == "flux-kontext"
    assert kinds["gpt4o-image"] == "gpt4o-image" and kinds["V4_5"] == "suno"
    assert kinds["kling-2.6/text-to-video"] == "createTask"
    veo = bundled.get("veo3_fast")
    assert veo is not None and "model" not in veo.fields and "callBackUrl" not in veo.fields


def test_models_show_names_a_familys_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "show", "veo/get-4k-video"]) == 0
    out = capsys.readouterr().out
    assert "  family:  veo (POST /api/v1/veo/get-4k-video)" in out
    assert "taskId" in out and "index" in out
