"""`run-pipeline models ...` end to end, over HTTP against the simulator's catalog."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cli.main import main
from pipeline.kie.client import KieClient
from pipeline.manifest import Rate
from pipeline.models import pull as pull_module
from pipeline.models.pull import CatalogSession, pull
from pipeline.models.registry import ModelRegistry
from pipeline.simulator import SimConfig, Simulator, running_simulator

KEY = "sim-key"
CATALOG = "/api/v1/models"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """Real-time (time scale 1): the simulator enforces the catalog's 1 call per second."""
    with running_simulator(SimConfig(time_scale=1.0)) as simulator:
        yield simulator


@pytest.fixture
def fast_sim() -> Iterator[Simulator]:
    with running_simulator(SimConfig(time_scale=0.01)) as simulator:
        yield simulator


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def models(sim: Simulator, *args: str) -> list[str]:
    return ["models", *args, "--base-url", sim.base_url]


def catalog_log(sim: Simulator) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["path"].startswith(CATALOG)]


def test_pull_of_every_bundled_model_reproduces_its_input_schema(
    fast_sim: Simulator, tmp_path: Path
) -> None:
    bundled = ModelRegistry()
    # Models of Kie's own-endpoint families are bundled, not pulled: their catalog documents
    # name their own endpoints, as Kie's would, and pull refuses them (tests/families).
    names = [n for n in bundled.names() if (m := bundled.get(n)) and m.family == "createTask"]

    async def go() -> None:
        async with KieClient(fast_sim.base_url, KEY) as client:
            # The simulator runs 100x faster, windows included: so may we.
            session = CatalogSession(client, Rate(1, 0.01))
            report = await pull(
                session,
                names,
                tmp_path,
                base_url=fast_sim.base_url,
                fetched="2026-11-28",
                previous=lambda name: None,
            )
            assert report.errors == [] and report.exit_code == 0

    asyncio.run(go())
    pulled = ModelRegistry([tmp_path])
    for name in names:
        model, original = pulled.get(name), bundled.get(name)
        assert model is not None and original is not None
        assert model.path == tmp_path / f"{name}.json"
        assert model.schema == original.schema, name
        assert model.task_types == original.task_types and model.media == original.media
        assert model.data["source"]["digest"].startswith("sha256:")
    assert not [r for r in catalog_log(fast_sim) if r["code"] == 429]


def test_pull_writes_files_and_stays_within_one_call_per_second(
    fast_sim: Simulator,
    here: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a clock compressed 100 times (the simulator's time scale and the catalog budget
    alike): 1 call per 0.01 s stands for Kie's 1 per second, and no test waits real seconds."""
    sim = fast_sim
    second = 0.01
    monkeypatch.setattr(pull_module, "CATALOG_RATE", Rate(1, second))
    monkeypatch.setenv("KIE_API_KEY", KEY)
    wanted = ["kling-2.6/text-to-video", "nano-banana-pro", "sora-2-text-to-video"]
    assert main(models(sim, "pull", *wanted)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [str(here / "kie-models" / f"{name}.json") for name in wanted]
    kling = json.loads((here / "kie-models/kling-2.6/text-to-video.json").read_text())
    assert kling["input"] == ModelRegistry().get("kling-2.6/text-to-video").schema  # type: ignore[union-attr]
    assert kling["price"]["rule"]["table"]  # kept from the bundled file: same prose
    sora = json.loads((here / "kie-models/sora-2-text-to-video.json").read_text())
    assert sora["status"]["state"] == "paused"

    # Pulled again unchanged: nothing rewritten.
    stamp = (here / "kie-models/nano-banana-pro.json").stat().st_mtime_ns
    assert main(models(sim, "pull", "nano-banana-pro")) == 0
    assert "unchanged, not rewritten" in capsys.readouterr().out
    assert (here / "kie-models/nano-banana-pro.json").stat().st_mtime_ns == stamp

    # A local file that differs from the catalog: the re-pull says what changed.
    path = here / "kie-models/nano-banana-pro.json"
    data = json.loads(path.read_text())
    data["input"]["properties"]["resolution"]["enum"] = ["1K", "2K"]
    del data["input"]["properties"]["output_format"]
    path.write_text(json.dumps(data))
    assert main(models(sim, "pull", "nano-banana-pro")) == 0
    report = capsys.readouterr().out
    assert "(updated)" in report and "field added: output_format" in report
    assert 'resolution: enum gained "4K"' in report

    log = catalog_log(sim)
    accepted = sorted(r["time"] for r in log if r["code"] == 200)
    assert len(accepted) == 7 + 3 + 3  # a list, then a schema and a price per model; 3 pulls
    assert all(b - a >= second for a, b in pairwise(accepted))
    # Within one command the budget is never exceeded. A command started right after
    # another cannot know when that one's last call went: its first call may meet a 429,
    # which it waits out and retries.
    first_pull = log[:7]
    assert all(r["code"] == 200 for r in first_pull)
    assert all(r["path"] == CATALOG for r in log if r["code"] == 429)


@pytest.mark.parametrize(
    ("model", "why"),
    [("suno/v5-music", "not synced"), ("gemini-3-pro", "not a job model")],
)
def test_models_that_cannot_run_are_refused_with_exit_2(
    sim: Simulator,
    here: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str,
    why: str,
) -> None:
    monkeypatch.setenv("KIE_API_KEY", KEY)
    assert main(models(sim, "pull", model)) == 2
    assert why in capsys.readouterr().err
    assert not (here / "kie-models").exists()


def test_an_unexpected_catalog_answer_writes_nothing(
    sim: Simulator, here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIE_API_KEY", KEY)
    sim.control(faults={"malformed_json": 1.0})
    assert main(models(sim, "pull", "nano-banana-pro")) == 3
    assert "did not answer as expected" in capsys.readouterr().err
    assert not (here / "kie-models").exists()


def test_pull_without_a_key_says_what_a_run_says(
    sim: Simulator, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = here / "m.yaml"
    manifest.write_text(
        "version: 1\njobs:\n  - id: a\n    model: nano-banana-pro\n    prompt: hi\n"
    )
    assert main(models(sim, "pull", "nano-banana-pro")) == 2
    pull_message = capsys.readouterr().err
    assert main([str(manifest), "--base-url", sim.base_url]) == 2
    assert capsys.readouterr().err == pull_message
    assert "KIE_API_KEY is not set" in pull_message
    assert catalog_log(sim) == []


def test_list_json_for_scripts_and_filters(
    sim: Simulator, here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIE_API_KEY", KEY)
    assert main(models(sim, "list", "--json")) == 0
    answer = json.loads(capsys.readouterr().out)
    names = [m["model"] for m in answer["models"]]
    assert answer["total"] == len(names) == len(ModelRegistry().names()) + 2
    assert {"kling-2.6/text-to-video", "suno/v5-music", "gemini-3-pro"} <= set(names)
    assert main(models(sim, "list", "--type", "Image Models", "--search", "banana-2")) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["MODEL", "TYPE", "PRICE"]
    assert [line.split()[0] for line in table[1:-1]] == ["nano-banana-2", "nano-banana-2-lite"]
    assert table[-1] == "2 models"


def test_the_simulator_keeps_the_catalog_budget(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        first = http.get(f"{CATALOG}/kling-2.6/text-to-video/schema").json()
        second = http.get(f"{CATALOG}/kling-2.6/text-to-video/price").json()
    assert first["code"] == 200 and second["code"] == 429
    document = first["data"]["openapi"]
    keys = document["components"]["schemas"]
    assert "Error " in keys and any(k.endswith("Input ") for k in keys)
    assert "%20" in json.dumps(document)


def test_show_uses_the_lookup_and_makes_no_call(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "show", "kling-2.6/text-to-video"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kling-2.6/text-to-video: Kling 2.6 Text to Video")
    assert '"5" | "10", required' in out and "(bundled)" in out
    assert main(["models", "show", "kling-2.6/text-to-video", "--json"]) == 0
    required = json.loads(capsys.readouterr().out)["input"]["required"]
    assert required == ["aspect_ratio", "duration", "prompt", "sound"]
    assert main(["models", "show", "kling-2.6/text-to-vdeo"]) == 2
    assert "close names: kling-2.6/text-to-video" in capsys.readouterr().err
    assert main(["models", "show", "seedance-2-fast"]) == 2  # the provider left out
    assert "bytedance/seedance-2-fast" in capsys.readouterr().err.split("close names: ")[1]


def test_show_of_a_broken_local_model_file_names_it(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = here / "kie-models" / "nano-banana-pro.json"
    broken.parent.mkdir()
    broken.write_text('{"model": "nano-banana-pro", "input": {"type": "nope"}}')
    assert main(["models", "show", "nano-banana-pro"]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "not a valid JSON Schema" in err


def test_list_without_a_key_lists_the_bundled_catalog_with_its_date(
    sim: Simulator, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newcomer browses before signing up: no key, no call, exit 0, marked as bundled."""
    assert main(models(sim, "list")) == 0
    out = capsys.readouterr().out.splitlines()
    assert "bundled" in out[0] and "2026-08-19" in out[0] and "KIE_API_KEY" in out[0]
    assert out[1].split() == ["MODEL", "TYPE", "PRICE"]
    assert out[-1] == f"{len(ModelRegistry([]).names())} models"
    assert main(models(sim, "list", "--json", "--search", "SORA-2-pro")) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["source"], answer["snapshot"]) == ("bundled", "2026-08-19")
    assert [(m["model"], m["status"]) for m in answer["models"]] == [
        ("sora-2-pro-text-to-video", "paused")
    ]
    assert catalog_log(sim) == []


def test_list_type_matches_types_as_users_write_them(
    sim: Simulator, here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def listed(*args: str) -> dict[str, list[str]]:
        assert main(models(sim, "list", "--json", *args)) == 0
        return {m["model"]: m["taskType"] for m in json.loads(capsys.readouterr().out)["models"]}

    for keyed in (False, True):  # the bundled catalog, then Kie's (the simulator's)
        if keyed:
            monkeypatch.setenv("KIE_API_KEY", KEY)
        video = listed("--type", "video")
        types = {t for found in video.values() for t in found}
        assert {"Text to Video", "Image to Video"} <= types
        assert all(any("video" in t.lower() for t in found) for found in video.values())
        text_to_video = listed("--type", "TEXT-TO-VIDEO")
        assert text_to_video and set(text_to_video) < set(video)
        assert all("Text to Video" in found for found in text_to_video.values())
