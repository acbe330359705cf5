"""Issue 25: inputs that cannot work are refused at validation, each with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.manifest import ManifestError, load_manifest

HEAD = "version: 1\njobs:\n"
STILL = "  - id: still\n    model: nano-banana-pro\n    prompt: A mug\n"


def _messages(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return [str(issue).replace(str(path), "m.yaml") for issue in caught.value.issues]


def _video(urls: str) -> str:
    return (
        "  - id: film\n    model: kling-2.6/image-to-video\n    prompt: It turns\n"
        f"    sound: false\n    image_urls: {urls}\n"
    )


def test_a_plain_path_in_a_url_field_is_refused_with_the_file_form(tmp_path: Path) -> None:
    (message,) = _messages(tmp_path, HEAD + _video("[./assets/x.png]"))
    assert message.startswith("m.yaml:7:18: ") and "is not an http(s) URL" in message
    assert "write `{file: assets/x.png}` to upload a local file" in message


def test_a_quoted_reference_is_text_not_a_reference(tmp_path: Path) -> None:
    (message,) = _messages(tmp_path, HEAD + STILL + _video('["{output: still}"]'))
    assert "is the text '{output: still}', not a reference: remove the quotes" in message


def test_http_urls_and_references_still_validate(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        HEAD
        + STILL
        + _video("[{output: still}]").replace("film", "a")
        + _video('["https://example.com/x.png"]')
    )
    assert [j.id for j in load_manifest(path).jobs] == ["still", "a", "film"]


def test_a_task_of_a_model_that_makes_the_wrong_media_is_refused(tmp_path: Path) -> None:
    upscale = "  - id: up\n    model: grok-imagine/upscale\n    task_id: {task: still}\n"
    (message,) = _messages(tmp_path, HEAD + STILL + upscale)
    assert "jobs[1] (up).task_id takes the task of a model that makes a video" in message
    assert "job 'still' (nano-banana-pro) makes an image" in message
    video = "  - id: clip\n    model: grok-imagine/text-to-video\n    prompt: A lighthouse\n"
    path = tmp_path / "ok.yaml"
    path.write_text(HEAD + video + upscale.replace("still", "clip"))
    assert len(load_manifest(path).jobs) == 2


def test_an_unquoted_ratio_is_quoted_back_as_written(tmp_path: Path) -> None:
    (message,) = _messages(tmp_path, HEAD + STILL + "    aspect_ratio: 16:9\n")
    assert message == (
        "m.yaml:6:19: aspect_ratio: 16:9 reads as the number 969 in YAML (base 60, as 1:30 "
        'is 90): write aspect_ratio: "16:9" (quoted)'
    )


def test_a_default_that_does_not_fit_one_model_names_the_model_and_its_jobs(
    tmp_path: Path,
) -> None:
    films = "".join(
        f"  - id: film{i}\n    model: kling-2.6/text-to-video\n    prompt: A lamp {i}\n"
        "    sound: false\n"
        for i in (1, 2)
    )
    text = 'version: 1\ndefaults:\n  aspect_ratio: "21:9"\njobs:\n' + STILL + films
    (message,) = _messages(tmp_path, text)
    assert message.startswith('m.yaml:3:17: defaults.aspect_ratio is "21:9"')
    assert "it does not fit kling-2.6/text-to-video (jobs film1, film2)" in message
    assert "nano-banana-pro" not in message  # the default fits the still
