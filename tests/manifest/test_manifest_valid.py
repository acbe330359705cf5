"""Manifests that must load: ids, count, inputs and golden fingerprints."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.manifest import ManifestError, Rate, load_manifest
from pipeline.models.registry import ModelRegistry

VALID = Path(__file__).parent / "corpus" / "valid"
CASES = sorted(p.name for p in VALID.iterdir() if p.is_dir())


def independent_fingerprint(model: str, task_input: dict[str, Any]) -> str:
    """The documented fingerprint recomputed here, so a silent change of algorithm fails."""
    body = {"model": model, "input": task_input}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("case", CASES)
def test_valid_case_loads(case: str) -> None:
    manifest = load_manifest(VALID / case / "manifest.yaml")
    expected = yaml.safe_load((VALID / case / "expected.yaml").read_text(encoding="utf-8"))
    assert manifest.name == expected["name"]
    assert [j.id for j in manifest.jobs] == [j["id"] for j in expected["jobs"]]
    registry = ModelRegistry()
    for job, want in zip(manifest.jobs, expected["jobs"], strict=True):
        assert job.model == want["model"]
        assert dict(job.input) == want["input"]
        assert job.callback_url == want["callback_url"]
        assert job.fingerprint == want["fingerprint"]
        assert job.fingerprint == independent_fingerprint(job.model, dict(job.input))
        model = registry.get(job.model)
        assert model is not None and model.validator.is_valid(dict(job.input))
        body = job.body()
        assert body["input"] == dict(job.input) and body["model"] == job.model
        assert body.get("callBackUrl") == job.callback_url


def test_counts_and_shared_fingerprints() -> None:
    counts = {case: len(load_manifest(VALID / case / "manifest.yaml").jobs) for case in CASES}
    assert counts == {
        "defaults-and-matrix": 5,
        "limits-and-settings": 2,
        "merge-keys": 3,
        "minimal": 1,
        "pro-size-matrix": 5,
        "prompt-files": 3,
        "yaml-styles": 2,
    }
    # The same request written two ways is the same job.
    files = load_manifest(VALID / "prompt-files" / "manifest.yaml")
    assert files.job("waves").fingerprint == files.job("waves-inline").fingerprint  # type: ignore[union-attr]
    styles = load_manifest(VALID / "yaml-styles" / "manifest.yaml")
    assert styles.jobs[0].fingerprint == styles.jobs[1].fingerprint


def test_settings_are_parsed() -> None:
    settings = load_manifest(VALID / "limits-and-settings" / "manifest.yaml").settings
    assert settings.concurrency == 5 and isinstance(settings.concurrency, int)
    assert settings.create_rate == Rate(20, 10.0) and settings.query_rate == Rate(10, 1.0)
    assert settings.poll_interval == 3.0 and isinstance(settings.poll_interval, float)
    assert settings.poll_max_interval == 45.5 and settings.max_wait == 1200.0
    assert settings.max_attempts == 5 and settings.max_credits == 1000
    assert settings.download is False and settings.on_ambiguous == "skip"


def test_integral_floats_become_ints(tmp_path: Path) -> None:
    """JSON Schema counts 5.0 as an integer; the runner must still get an int."""
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1.0\nsettings: {concurrency: 5.0, max_attempts: 2.0}\n"
        "jobs: [{id: a, model: sora-2-text-to-video, prompt: hi}]\n"
    )
    settings = load_manifest(path).settings
    assert type(settings.concurrency) is int and type(settings.max_attempts) is int


@pytest.mark.parametrize(
    ("given", "budget"),
    [("100.5", Decimal("100.5")), ("1500.5", Decimal("1500.5")), ("0.1", Decimal("0.1")),
     ("2000", Decimal(2000)), ("0", Decimal(0))],
)  # fmt: skip
def test_max_credits_is_a_decimal(tmp_path: Path, given: str, budget: Decimal) -> None:
    """Prices are decimals (24.8 credits per second), so is the budget: exactly as written
    (0.1, not 0.1000000000000000055511151231257827)."""
    path = tmp_path / "m.yaml"
    path.write_text(
        f"version: 1\nsettings: {{max_credits: {given}}}\n"
        "jobs: [{id: a, model: seedream/5-lite-text-to-image, prompt: a red mug}]\n"
    )
    settings = load_manifest(path).settings
    assert settings.max_credits == budget and isinstance(settings.max_credits, Decimal)
    assert str(settings.max_credits) == str(budget)


@pytest.mark.parametrize("given", ["-0.5", '"100.5"', ".inf", "true"])
def test_max_credits_refuses_what_is_not_a_budget(tmp_path: Path, given: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        f"version: 1\nsettings: {{max_credits: {given}}}\n"
        "jobs: [{id: a, model: seedream/5-lite-text-to-image, prompt: a red mug}]\n"
    )
    with pytest.raises(ManifestError, match=r"max_credits|finite"):
        load_manifest(path)


def test_prompt_of_10000_characters_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\ndefaults: {model: sora-2-text-to-video}\n"
        "jobs:\n  - id: a\n    prompt: " + "x" * 10000 + "\n"
    )
    (tmp_path / "p.txt").write_text("y" * 10000 + "\n")
    with path.open("a") as f:
        f.write("  - id: b\n    prompt_file: p.txt\n")
    jobs = load_manifest(path).jobs
    assert [len(j.prompt) for j in jobs] == [10000, 10000]


def test_symlink_inside_the_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "real.txt").write_text("A fox in fresh snow.\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "prompts" / "real.txt")
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\ndefaults: {model: sora-2-text-to-video}\n"
        "jobs:\n  - id: a\n    prompt_file: link.txt\n"
    )
    assert load_manifest(path).jobs[0].prompt == "A fox in fresh snow."


def test_manifest_in_another_folder_resolves_prompt_files_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "p.txt").write_text("A heron waits in the reeds.\n")
    (folder / "m.yaml").write_text(
        "version: 1\ndefaults: {model: sora-2-text-to-video}\n"
        "jobs:\n  - id: a\n    prompt_file: p.txt\n"
    )
    monkeypatch.chdir(tmp_path)
    assert load_manifest("batch/m.yaml").jobs[0].prompt == "A heron waits in the reeds."


def test_loaded_values_are_frozen() -> None:
    job = load_manifest(VALID / "minimal" / "manifest.yaml").jobs[0]
    with pytest.raises(TypeError):
        job.input["prompt"] = "changed"  # type: ignore[index]
    body = job.body()
    body["input"]["prompt"] = "changed"
    assert job.prompt != "changed"
