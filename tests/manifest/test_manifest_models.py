"""Validation from the model file, for any model: one located, actionable line per problem."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.manifest import ManifestError, load_manifest
from pipeline.models.registry import ModelRegistry


def write(folder: Path, text: str, name: str = "m.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    """Every error as `LINE:COL: message`."""
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return [f"{i.line}:{i.column}: {i.message}" for i in caught.value.issues]


def test_typo_is_reported_even_when_the_prompt_is_missing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          - id: hero-film
            model: kling-2.6/text-to-video
            sound: false
            promt: a typo
        """,
    )
    found = problems(path)
    assert "6:5: unknown key 'promt' in jobs[0] (hero-film); did you mean 'prompt'?" in found
    assert any(p.startswith("3:5: job has neither 'prompt' nor 'prompt_file'") for p in found)
    assert len(found) == 2  # no third "missing required key 'prompt'"


def test_kling_duration_must_be_quoted_and_seedance_unquoted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          - id: kling
            model: kling-2.6/text-to-video
            prompt: A lamp on a desk
            sound: false
            duration: 5
          - id: seedance
            model: bytedance/seedance-2-fast
            prompt: A lamp on a desk
            duration: "5"
        """,
    )
    assert problems(path) == [
        '7:15: jobs[0] (kling).duration must be a string, not an integer: write duration: "5" '
        "(quoted)",
        "11:15: jobs[1] (seedance).duration must be an integer, not a string: write duration: 5 "
        "(without quotes)",
    ]


def test_enum_limits_and_unknown_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          - id: still
            model: bytedance/seedream-v4-text-to-image
            prompt: A mug
            image_size: Square
            max_images: 9
            colour: red
        """,
    )
    found = problems(path)
    assert len(found) == 3, found
    assert found[0].startswith('6:17: jobs[0] (still).image_size is "Square", expected one of')
    assert found[0].endswith("did you mean 'square'?")
    assert found[1].startswith("7:17: jobs[0] (still).max_images: 9 is greater than the maximum")
    assert found[2] == (
        "8:5: unknown key 'colour' in jobs[0] (still): not a job key, nor an input of model "
        "'bytedance/seedream-v4-text-to-image' (Kie would ignore it and still bill the task)"
    )


def test_one_of_names_the_closest_form(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          - id: shot
            model: kling-3.0-omni/image-to-video
            prompt: A lamp
            image_urls: [https://example.com/lamp.png]
            duration: 99
        """,
    )
    (found,) = problems(path)
    assert found.startswith("3:5: jobs[0] (shot) matches none of the model's 2 input forms")
    assert "closest is 'Single First Frame'" in found and "99" in found


def test_unknown_model_slug_suggests_the_closest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\njobs:\n  - id: a\n    model: kling-2.6/text-to-vide\n    prompt: hi\n",
    )
    (found,) = problems(path)
    assert found.startswith("4:12: unknown model 'kling-2.6/text-to-vide'")
    assert "did you mean 'kling-2.6/text-to-video'?" in found


def test_defaults_apply_only_where_the_model_has_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        defaults:
          duration: "10"
          sound: true
          resolution: 720p
        jobs:
          - id: kling
            model: kling-2.6/text-to-video
            prompt: A lamp
          - id: still
            model: flux-2/pro-text-to-image
            prompt: A lamp
            resolution: 2K
        """,
    )
    manifest = load_manifest(path)
    kling, still = manifest.jobs
    assert kling.input["duration"] == "10" and kling.input["sound"] is True
    assert "resolution" not in kling.input
    assert "duration" not in still.input and "sound" not in still.input
    assert still.input["resolution"] == "2K"


def test_a_default_no_model_has_is_a_typo(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        defaults:
          duraton: "10"
        jobs:
          - id: kling
            model: kling-2.6/text-to-video
            prompt: A lamp
            sound: false
        """,
    )
    assert problems(path) == ["3:3: unknown key 'duraton' in defaults; did you mean 'duration'?"]


def test_job_carries_price_media_and_pause(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          - id: seedance
            model: bytedance/seedance-2-fast
            prompt: A lamp
            duration: 6
          - id: old
            model: sora-2-text-to-video
            prompt: A lamp
        """,
    )
    manifest = load_manifest(path)
    seedance, old = manifest.jobs
    assert seedance.credits == 33 * 6  # 6 s at 720p, no video input
    assert (seedance.media, seedance.paused) == ("video", None)
    assert old.paused is not None and "Sora" in old.paused
    (warning,) = manifest.warnings
    assert (warning.line, warning.column, warning.severity) == (8, 12, "warning")
    assert "model 'sora-2-text-to-video' is paused" in warning.message


def test_validate_prints_the_paused_warning_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, "version: 1\njobs:\n  - id: a\n    model: sora-2-text-to-video\n    prompt: hi\n"
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}:4:12: warning: model 'sora-2-text-to-video' is paused")
    assert out[1] == f"{path}: ok (1 job)"


def test_nearest_kie_models_folder_wins(tmp_path: Path) -> None:
    """A project's pulled model file is used before the bundled one of the same name."""
    bundled = Path(__file__).resolve().parents[2] / "schemas/models/kling-2.6/text-to-video.json"
    data = json.loads(bundled.read_text(encoding="utf-8"))
    data["input"]["properties"]["duration"]["enum"] = ["5", "10", "15"]
    own = tmp_path / "kie-models" / "kling-2.6" / "text-to-video.json"
    own.parent.mkdir(parents=True)
    own.write_text(json.dumps(data), encoding="utf-8")
    path = write(
        tmp_path / "batches",
        "version: 1\njobs:\n  - id: a\n    model: kling-2.6/text-to-video\n"
        "    prompt: hi\n    sound: false\n    duration: '15'\n",
    )
    assert load_manifest(path).jobs[0].input["duration"] == "15"
    own.write_text("{not json", encoding="utf-8")
    (found,) = problems(path)
    assert found.startswith("4:12: model file ") and "not valid JSON" in found


def test_a_job_without_a_model_is_an_error_that_says_how_to_name_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """There is no default model (Sora 2, the old default, is gone)."""
    path = write(tmp_path, "version: 1\njobs:\n  - id: a\n    prompt: hi\n")
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{path}:3:5: job 'a' names no model: add `model: NAME` to the job")
    assert "`defaults`" in line and "run-pipeline models list" in line
    suggested = line.split("for example ")[1].split(")")[0].split(", ")
    for name in suggested:  # current models of the bundled catalog, none of them paused
        model = ModelRegistry().get(name)
        assert model is not None and model.paused is None, name
    assert len(suggested) >= 3
