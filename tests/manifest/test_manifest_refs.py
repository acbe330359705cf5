"""`{file: ...}`, `{output: ...}`, `{task: ...}`: parsed, checked at validate, fingerprinted."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path

import pytest

from pipeline.manifest import ManifestError, load_manifest
from pipeline.manifest.refs import FileRef, OutputRef, Ref, TaskRef, UnresolvedReference

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64

CHAIN = """\
version: 1
jobs:
  - id: mug-still
    model: nano-banana-pro
    prompt: A ceramic mug on an oak table
    image_input: [{file: assets/mug.png}]
  - id: mug-video
    model: kling-2.6/image-to-video
    prompt: The mug turns slowly
    sound: false
    image_urls: [{output: mug-still}]
  - id: mug-upscale
    model: grok-imagine/upscale
    task_id: {task: mug-video}
"""


def setup(folder: Path, text: str, files: dict[str, bytes] | None = None) -> Path:
    for name, content in (files or {"assets/mug.png": PNG}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    path = folder / "m.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return [f"{i.line}:{i.column}: {i.message}" for i in caught.value.issues]


def test_chain_loads_with_typed_references(tmp_path: Path) -> None:
    still, video, upscale = load_manifest(setup(tmp_path, CHAIN)).jobs
    (ref,) = still.input["image_input"]
    assert isinstance(ref, FileRef) and still.files == (ref,)
    assert ref.name == "assets/mug.png" and ref.path == (tmp_path / "assets/mug.png").resolve()
    assert ref.sha256 == hashlib.sha256(PNG).hexdigest()
    assert (ref.media, ref.extension, ref.size, ref.line, ref.col) == ("image", "png", 72, 6, 19)
    assert video.input["image_urls"] == [OutputRef("mug-still", 1, 11, 18)]
    assert video.upstream == ("mug-still",) and video.files == ()
    assert upscale.input["task_id"] == TaskRef("mug-video", 14, 14)
    assert upscale.upstream == ("mug-video",) and still.upstream == ()


def test_render_and_body_substitute_references(tmp_path: Path) -> None:
    still, video, upscale = load_manifest(setup(tmp_path, CHAIN)).jobs

    def resolve(ref: Ref) -> str:
        if isinstance(ref, FileRef):
            return f"https://files.example/{ref.sha256}.{ref.extension}"
        if isinstance(ref, OutputRef):
            return f"https://results.example/{ref.job}/{ref.index}.png"
        return f"task-{ref.job}"

    assert video.body(resolve=resolve)["input"]["image_urls"] == [
        "https://results.example/mug-still/1.png"
    ]
    assert upscale.render(resolve) == {"task_id": "task-mug-video", "resolution": "720p"}
    assert still.render(resolve)["image_input"][0].startswith("https://files.example/")
    with pytest.raises(UnresolvedReference):
        video.body("https://hooks.example/kie")


def test_fingerprints_follow_content_and_upstream(tmp_path: Path) -> None:
    path = setup(tmp_path, CHAIN)
    before = {j.id: j.fingerprint for j in load_manifest(path).jobs}
    # Same content under another name: nothing changes.
    (tmp_path / "assets/mug.png").rename(tmp_path / "assets/cup.png")
    path.write_text(CHAIN.replace("assets/mug.png", "assets/cup.png"), encoding="utf-8")
    assert {j.id: j.fingerprint for j in load_manifest(path).jobs} == before
    # Edit the picture: the still and everything downstream change.
    (tmp_path / "assets/cup.png").write_bytes(PNG + b"edit")
    edited = {j.id: j.fingerprint for j in load_manifest(path).jobs}
    assert all(edited[k] != before[k] for k in before)
    # Edit only the animation's prompt: the still stays, the video and upscale change.
    (tmp_path / "assets/cup.png").write_bytes(PNG)
    path.write_text(
        CHAIN.replace("assets/mug.png", "assets/cup.png").replace("turns slowly", "spins"),
        encoding="utf-8",
    )
    moved = {j.id: j.fingerprint for j in load_manifest(path).jobs}
    assert moved["mug-still"] == before["mug-still"]
    assert moved["mug-video"] != before["mug-video"]
    assert moved["mug-upscale"] != before["mug-upscale"]


def test_index_one_is_the_default(tmp_path: Path) -> None:
    one = load_manifest(setup(tmp_path, CHAIN)).jobs[1].fingerprint
    text = CHAIN.replace("{output: mug-still}", "{output: mug-still, index: 1}")
    assert load_manifest(setup(tmp_path, text)).jobs[1].fingerprint == one


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("assets/missing.png", None, "file 'assets/missing.png' not found"),
        ("assets/mug.png", JPEG, "is a JPEG file but its name ends in '.png': rename it to .jpg"),
        ("assets/mug.png", b"plain text, not a picture", "is not a PNG, JPEG, WebP, GIF"),
        (
            "assets/clip.mp4",
            MP4,
            "image_input[0] takes an image; file 'assets/clip.mp4' is a video",
        ),
        ("../outside.png", PNG, "points outside the manifest's folder"),
        ("/etc/hostname", None, "must be a path relative to the manifest"),
    ],
)
def test_bad_files_are_refused_at_their_line(
    tmp_path: Path, name: str, content: bytes | None, fragment: str
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    files = {} if content is None else {name: content}
    if name.startswith(".."):
        (tmp_path / "outside.png").write_bytes(PNG)
        files = {}
    path = setup(folder, CHAIN.replace("assets/mug.png", name), files or {"x.txt": b""})
    (found,) = problems(path)
    assert found.startswith("6:26: jobs[0] (mug-still).image_input[0]")
    assert fragment in found


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    (folder / "assets").mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(PNG)
    os.symlink(tmp_path / "secret.png", folder / "assets/mug.png")
    (found,) = problems(setup(folder, CHAIN, {"x.txt": b""}))
    assert "points outside the manifest's folder" in found


def test_size_limits_model_and_default(tmp_path: Path) -> None:
    big = PNG + b"\x00" * (10 * 1024 * 1024)
    text = (
        "version: 1\njobs:\n  - id: up\n    model: topaz/image-upscale\n"
        "    image_url: {file: big.png}\n"
    )
    (found,) = problems(setup(tmp_path, text, {"big.png": big}))
    assert found.startswith("5:23: jobs[0] (up).image_url: file 'big.png' is 10.0 MB, over")
    assert "the model's limit of 10.0 MB" in found
    # wan's audio_url states 15 MB; nano-banana's image_input 30 MB: 10 MB passes there.
    ok = CHAIN.split("  - id: mug-video")[0].replace("assets/mug.png", "big.png")
    assert load_manifest(setup(tmp_path, ok, {"big.png": big})).jobs[0].files[0].size > 10**7


@pytest.mark.parametrize(
    ("replace", "found_at", "fragment"),
    [
        (
            "{output: mug-stil}",
            "11:18",
            "no job 'mug-stil' in this manifest; did you mean 'mug-still'?",
        ),
        ("{output: mug-video}", "11:18", "job 'mug-video' cannot take its own output"),
        ("{output: mug-still, index: 2}", "11:18", "index 2 of job 'mug-still', but its model"),
        ("{output: mug-still, index: 0}", "11:45", "index must be 1 or more, not 0"),
        ("{ouput: mug-still}", "11:18", "unknown key 'ouput'; did you mean 'output'? must be"),
        ("{output: mug-upscale}", "11:18", "takes an image but job 'mug-upscale'"),
    ],
)
def test_bad_references(tmp_path: Path, replace: str, found_at: str, fragment: str) -> None:
    text = CHAIN.replace("{output: mug-still}", replace)
    found = problems(setup(tmp_path, text))
    assert any(p.startswith(found_at) and fragment in p for p in found), found


def test_cycle_is_printed_with_each_reference_line(tmp_path: Path) -> None:
    text = """\
        version: 1
        jobs:
          - id: a
            model: topaz/image-upscale
            image_url: {output: c}
          - id: b
            model: topaz/image-upscale
            image_url: {output: a}
          - id: c
            model: topaz/image-upscale
            image_url: {output: b}
        """
    (found,) = problems(setup(tmp_path, text))
    assert found.startswith("5:16: jobs[0] (a): jobs take each other's results in a cycle: ")
    assert "a (line 5) -> c (line 11) -> b (line 8) -> a" in found


def test_matrix_variants_are_referenced_by_expanded_id(tmp_path: Path) -> None:
    text = """\
        version: 1
        jobs:
          - id: still
            model: flux-2/pro-text-to-image
            prompt: A mug
            matrix:
              aspect_ratio: ["16:9", "9:16"]
          - id: film
            model: hailuo/2-3-image-to-video-standard
            prompt: The mug turns
            image_url: {output: still-16-9}
            matrix:
              duration: ["6", "10"]
          - id: bad
            model: topaz/image-upscale
            image_url: {output: still}
        """
    found = problems(setup(tmp_path, text))
    assert len(found) == 1
    assert found[0].startswith("16:16: jobs[2] (bad).image_url: no job 'still'")
    assert "'still' is a matrix job: name one of its variants, e.g. 'still-16-9'" in found[0]
    jobs = load_manifest(setup(tmp_path, text.split("  - id: bad")[0])).jobs
    assert [j.id for j in jobs] == ["still-16-9", "still-9-16", "film-6", "film-10"]
    assert {j.upstream for j in jobs[2:]} == {("still-16-9",)}


def test_references_only_where_the_model_takes_a_string(tmp_path: Path) -> None:
    text = (
        "version: 1\njobs:\n  - id: a\n    model: flux-2/pro-text-to-image\n"
        "    prompt: {file: assets/mug.png}\n"
    )
    (found,) = problems(setup(tmp_path, text))
    assert found.startswith("5:13: jobs[0] (a).prompt must be a string, not a mapping")
