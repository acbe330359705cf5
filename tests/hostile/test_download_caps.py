"""Results that would fill the disk (issue 26): each result is capped by its media kind (the
model file may say, the manifest or `--max-download-mb` overrides), and every download stops
when free space falls under what the state needs.

End to end, over loopback: a proxy in front of the simulator hands out result URLs on itself
and serves each as an endless MP4, the way a hostile result host would.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.cli.main import main
from pipeline.cli.parser import build_parser, normalise, request_of
from pipeline.cli.requests import RunRequest
from pipeline.engine import diskguard
from pipeline.manifest import load_manifest
from pipeline.results.download import MB, cap_bytes
from pipeline.simulator.files import video_bytes
from tests.support.batch import Batch, MakeBatch, batch_factory
from tests.support.hostile import Conn, Handler, HostileServer, Request, hostile, response
from tests.support.manifests import jobs_yaml

MP4 = video_bytes("portrait")


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


def endless_video(request: Request, conn: Conn) -> None:
    conn.send(response(200, MP4[:64], {"Content-Type": "video/mp4"}, length=False))
    while not conn.stopped and conn.send(bytes(65536)):
        pass


@contextlib.contextmanager
def endless_results(batch: Batch, serve: Handler = endless_video) -> Iterator[HostileServer]:
    """A proxy to the simulator whose result files are served by `serve` (by default, as
    videos that never end)."""
    holder: list[HostileServer] = []

    def proxy(request: Request, conn: Conn) -> None:
        if request.path.startswith("/files/"):
            serve(request, conn)
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        answer = httpx.request(
            request.method,
            batch.sim.base_url + request.path,
            headers=headers,
            content=request.body or None,
        )
        body = answer.content.replace(batch.sim.base_url.encode(), holder[0].url.encode())
        conn.send(response(answer.status_code, body, {"Content-Type": "application/json"}))

    with hostile(proxy) as server:
        holder.append(server)
        yield server


def _run(batch: Batch, server: HostileServer, *extra: str) -> tuple[int, str]:
    args = batch.args(*extra)
    args[args.index("--base-url") + 1] = server.url
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue()


def test_an_endless_video_stops_at_the_manifest_cap(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(2, settings="max_download_mb: 2"))
    with endless_results(batch) as server:
        code, err = _run(batch, server)
    assert code == 1, err
    for row in batch.rows():
        assert row["status"] == "failed" and row["task_id"]
        assert (
            f"over the {2 * MB} byte cap" in row["error_message"]
            or "exceeds" in row["error_message"]
        )
        assert not row["file"]
    assert not list((batch.folder / "media").glob("*.mp4"))


def test_the_flag_overrides_the_manifest_cap(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(1, settings="max_download_mb: 400"))
    with endless_results(batch) as server:
        code, _ = _run(batch, server, "--max-download-mb", "1")
    assert code == 1
    assert f"{MB} byte cap" in batch.rows()[0]["error_message"]


def test_downloads_stop_when_free_space_falls_under_the_reserve(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(3))
    full = [True]
    monkeypatch.setattr(diskguard.DiskGuard, "download_room", lambda self: not full[0])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(batch.args())
    assert code == 3, err.getvalue()
    assert "free space fell under" in err.getvalue()
    assert batch.stats()["creates"] == 3  # creates were not held back: only downloads
    assert not list((batch.folder / "media").glob("*.mp4"))
    # Every task is kept for the next run, which downloads without a new create.
    full[0] = False
    assert batch.run() == 0
    assert batch.stats()["creates"] == 3


def test_caps_by_media_kind_then_model_file_then_setting() -> None:
    assert cap_bytes("video", None, None) == 500 * MB
    assert cap_bytes("image", None, None) == 50 * MB
    assert cap_bytes("audio", None, None) == 200 * MB
    assert cap_bytes(None, None, None) == 500 * MB
    assert cap_bytes("image", 80, None) == 80 * MB
    assert cap_bytes("image", 80, 3) == 3 * MB


def test_a_model_file_states_its_cap(tmp_path: Path) -> None:
    folder = tmp_path / "kie-models"
    folder.mkdir()
    bundled = json.loads(
        (Path(__file__).resolve().parents[2] / "schemas/models/nano-banana-pro.json").read_text()
    )
    bundled["output"]["max_download_mb"] = 12
    (folder / "nano-banana-pro.json").write_text(json.dumps(bundled))
    manifest = tmp_path / "batch.yaml"
    manifest.write_text("version: 1\njobs:\n  - id: a\n    model: nano-banana-pro\n    prompt: p\n")
    assert load_manifest(manifest).jobs[0].download_mb == 12


def test_the_flag_and_the_setting_reach_the_run_request(tmp_path: Path) -> None:
    args = build_parser().parse_args(normalise(["m.yaml", "--max-download-mb", "7"]))
    request = request_of(args)
    assert isinstance(request, RunRequest) and request.overrides.max_download_mb == 7
    manifest = tmp_path / "m.yaml"
    manifest.write_text(jobs_yaml(1, settings="max_download_mb: 9"))
    assert load_manifest(manifest).settings.max_download_mb == 9


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'


@pytest.mark.parametrize("content_type", ["image/svg+xml", "image/png", "application/x-thing"])
def test_svg_and_unknown_results_of_an_image_model_are_refused(
    make_batch: MakeBatch, content_type: str
) -> None:
    """Whatever it is served as, markup is not stored (a browser would run its script), and
    an unknown type is not an image: the job's download fails, nothing lands in media/."""
    batch = make_batch()
    batch.write("version: 1\njobs:\n  - id: pic\n    model: nano-banana-pro\n    prompt: p\n")
    body = SVG if content_type != "application/x-thing" else b"\x00\x01opaque" * 4

    def serve(request: Request, conn: Conn) -> None:
        conn.send(response(200, body, {"Content-Type": content_type}))

    with endless_results(batch, serve) as server:
        code, err = _run(batch, server)
    assert code == 1, err
    row = batch.rows()[0]
    assert row["status"] == "failed" and not row["file"]
    assert "not a valid result" in row["error_message"]
    if body == SVG:
        assert "active content" in row["error_message"]
    assert list((batch.folder / "media").iterdir()) == []
    assert ".svg" not in (batch.folder / "index.html").read_text()
