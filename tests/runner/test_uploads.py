"""Local input files ({file: PATH}) end to end, against the simulator's upload host over HTTP:
uploaded once per content, reused while served, uploaded again once gone, never sent changed."""

from __future__ import annotations

import hashlib
import io
import sys
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from pipeline.cli.requests import RunRequest
from pipeline.engine.session import run_session
from pipeline.events import Fanout
from pipeline.kie.target import Target
from pipeline.manifest import load_manifest
from pipeline.simulator import Simulator
from pipeline.state.store import StateStore
from tests.support.batch import Batch, MakeBatch

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def png(tag: str) -> bytes:
    """A distinct small PNG (by its magic bytes, which is all the checks read)."""
    return PNG + tag.encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def job(job_id: str, image: str, prompt: str | None = None) -> str:
    return (
        f"  - id: {job_id}\n"
        "    model: kling-2.6/image-to-video\n"
        f"    prompt: {prompt or 'The camera circles ' + job_id}\n"
        f"    image_urls: [{{file: {image}}}]\n"
        "    sound: false\n"
    )


def text_job(job_id: str) -> str:
    return f"  - id: {job_id}\n    prompt: A paper boat named {job_id}\n"


def manifest(*jobs: str) -> str:
    return "version: 1\ndefaults: {model: sora-2-text-to-video}\njobs:\n" + "".join(jobs)


def put(batch: Batch, name: str, data: bytes) -> None:
    path = batch.manifest.parent / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def run(batch: Batch, *extra: str) -> int:
    return batch.run("--upload-url", batch.sim.base_url, *extra)


def uploads(sim: Simulator) -> Counter[str]:
    """How many times the simulator's upload host received each content (by sha256)."""
    return Counter(entry["sha256"] for entry in sim.service.uploads_view())


def creates(sim: Simulator) -> Counter[str]:
    """Creates per model fingerprint, as the simulator counted them."""
    return Counter(sim.stats()["creates_by_fingerprint"])


def task_inputs(sim: Simulator) -> list[dict[str, Any]]:
    return [dict(task.body["input"]) for task in sim.service.tasks.values()]


def expire_uploads(sim: Simulator) -> None:
    """Make Kie's host drop every upload now, ahead of any margin (as it sometimes does)."""
    with sim.service.lock:
        for upload in sim.service.uploads.files.values():
            upload.expires_wall = 0.0


def test_one_file_used_by_three_jobs_is_uploaded_once(make_batch: MakeBatch) -> None:
    batch = make_batch()
    mug, logo = png("mug"), png("logo")
    put(batch, "assets/mug.png", mug)
    put(batch, "assets/logo.png", logo)
    batch.write(
        manifest(
            job("a", "assets/mug.png"),
            job("b", "assets/mug.png"),
            job("c", "assets/mug.png"),
            job("d", "assets/logo.png"),
            text_job("plain"),
        )
    )
    assert run(batch) == 0
    assert uploads(batch.sim) == {sha(mug): 1, sha(logo): 1}
    # Content-addressed names, served from the upload host, sent in the creates.
    log = {entry["sha256"]: entry for entry in batch.sim.service.uploads_view()}
    assert log[sha(mug)]["filePath"] == f"run-pipeline/{sha(mug)}.png"
    urls = [i["image_urls"][0] for i in task_inputs(batch.sim) if "image_urls" in i]
    expected = f"{batch.sim.base_url}/uploads/run-pipeline/{sha(mug)}.png"
    assert sorted(urls).count(expected) == 3 and len(urls) == 4
    assert {row["status"] for row in batch.rows()} == {"succeeded"}
    with StateStore.open(batch.out / "state.sqlite", readonly=True) as store:
        stored = store.upload(sha(mug), "png")
    assert stored is not None and stored.url == expected
    # A second run has nothing to do: no upload, no create.
    before = sum(creates(batch.sim).values())
    assert run(batch) == 0
    assert uploads(batch.sim) == {sha(mug): 1, sha(logo): 1}
    assert sum(creates(batch.sim).values()) == before


def test_a_stored_upload_is_reused_while_the_host_serves_it(make_batch: MakeBatch) -> None:
    batch = make_batch()
    put(batch, "assets/mug.png", png("mug"))
    batch.write(manifest(job("a", "assets/mug.png")))
    assert run(batch) == 0
    batch.write(manifest(job("a", "assets/mug.png"), job("b", "assets/mug.png")))
    assert run(batch) == 0
    assert uploads(batch.sim) == {sha(png("mug")): 1}
    assert batch.ledger()["b"]["status"] == "succeeded"


def test_an_expired_upload_is_uploaded_again_and_tasks_are_not_recreated(
    make_batch: MakeBatch,
) -> None:
    batch = make_batch()
    mug = png("mug")
    put(batch, "assets/mug.png", mug)
    batch.write(manifest(job("a", "assets/mug.png")))
    assert run(batch) == 0
    first = batch.ledger()["a"]["task_id"]
    expire_uploads(batch.sim)
    # The stored upload is well inside the 20 h margin, but the host no longer serves it:
    # the liveness check sees that, and the new job gets a fresh upload, not a dead URL.
    batch.write(manifest(job("a", "assets/mug.png"), job("b", "assets/mug.png")))
    assert run(batch) == 0
    assert uploads(batch.sim) == {sha(mug): 2}
    rows = batch.ledger()
    assert rows["b"]["status"] == "succeeded"
    assert rows["a"]["task_id"] == first and rows["a"]["attempts"] == 1
    assert sum(creates(batch.sim).values()) == 2  # one task for a, one for b, no more
    assert "no longer serves its upload" in (batch.out / "run.log").read_text()


def test_an_upload_older_than_the_margin_is_not_reused(make_batch: MakeBatch) -> None:
    batch = make_batch()
    mug = png("mug")
    put(batch, "assets/mug.png", mug)
    batch.write(manifest(job("a", "assets/mug.png")))
    assert run(batch) == 0
    batch.write(manifest(job("a", "assets/mug.png"), job("b", "assets/mug.png")))
    # settings.upload_max_age (here from the flag): older uploads are sent again unasked.
    assert run(batch, "--upload-max-age", "0.001") == 0
    assert uploads(batch.sim) == {sha(mug): 2}
    assert batch.ledger()["a"]["attempts"] == 1


def test_editing_a_file_reruns_exactly_its_jobs(make_batch: MakeBatch) -> None:
    batch = make_batch()
    put(batch, "assets/mug.png", png("mug"))
    put(batch, "assets/logo.png", png("logo"))
    batch.write(
        manifest(
            job("a", "assets/mug.png"),
            job("b", "assets/mug.png"),
            job("c", "assets/logo.png"),
            text_job("plain"),
        )
    )
    assert run(batch) == 0
    before = batch.ledger()
    put(batch, "assets/mug.png", png("mug, retouched"))
    out = io.StringIO()
    with redirect_stdout(out):
        assert run(batch, "--dry-run") == 0
    plan = out.getvalue()
    assert plan.count("uploads assets/mug.png") == 2 and "assets/logo.png" not in plan
    assert "Would upload 1 file(s)" in plan
    assert run(batch) == 0
    after = batch.ledger()
    changed = {j for j in after if after[j]["task_id"] != before[j]["task_id"]}
    assert changed == {"a", "b"}
    assert after["a"]["fingerprint"] != before["a"]["fingerprint"]
    assert uploads(batch.sim) == {
        sha(png("mug")): 1,
        sha(png("mug, retouched")): 1,
        sha(png("logo")): 1,
    }
    assert sum(creates(batch.sim).values()) == 6


def test_a_file_changed_during_the_run_is_not_sent(make_batch: MakeBatch) -> None:
    """The manifest was read (and fingerprinted) before the file changed: the job fails with
    a clear message, nothing is uploaded under the old content's name, no create is sent;
    the next run, which reads the new content, submits it."""
    batch = make_batch()
    put(batch, "assets/mug.png", png("mug"))
    put(batch, "assets/logo.png", png("logo"))
    batch.write(manifest(job("a", "assets/mug.png"), job("c", "assets/logo.png")))
    loaded = load_manifest(batch.manifest)
    put(batch, "assets/mug.png", png("mug, changed mid-run"))
    sim = batch.sim
    target = Target(sim.base_url, batch.key, sim.base_url, sim.base_url)
    request = RunRequest(batch.manifest, out=batch.out, time_scale=batch.scale, quiet=True)
    summary = run_session(
        request, loaded, lambda stack: target, lambda totals: Fanout([]), stderr=sys.stderr
    )
    statuses = {d.job.id: d.status for d in summary.decisions}
    assert statuses == {"a": "failed", "c": "succeeded"}
    row = batch.ledger()["a"]
    assert "changed on disk" in row["error_message"] and row["task_id"] is None
    assert row["attempts"] == 0
    assert uploads(sim) == {sha(png("logo")): 1}
    assert sum(creates(sim).values()) == 1
    # The next run reads the new content and submits it.
    assert run(batch) == 0
    assert batch.ledger()["a"]["status"] == "succeeded"
    assert uploads(sim)[sha(png("mug, changed mid-run"))] == 1


def test_uploads_survive_transient_faults(make_batch: MakeBatch) -> None:
    """The upload host failing now and then (500, resets, lost answers): retried like any
    transient call; a repeated upload only overwrites the file with itself."""
    from pipeline.simulator import FaultRates

    batch = make_batch(faults=FaultRates(http_500=0.2, reset=0.2, lost_answer=0.2))
    files = {f"assets/{i}.png": png(str(i)) for i in range(6)}
    for name, data in files.items():
        put(batch, name, data)
    batch.write(manifest(*(job(f"j{i}", f"assets/{i}.png") for i in range(6))))
    code = run(batch)
    while code != 0:  # ambiguous creates may take a rerun, as for any batch
        assert code == 1
        code = run(batch)
    assert set(uploads(batch.sim)) == {sha(d) for d in files.values()}
    upload_faults = [
        r for r in batch.sim.requests() if r["path"] == "/api/file-stream-upload" and r["fault"]
    ]
    assert upload_faults  # the host did fail, and the uploads went through anyway
    assert {row["status"] for row in batch.rows()} == {"succeeded"}


def test_manifest_setting_upload_max_age(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\ndefaults: {model: sora-2-text-to-video}\n"
        "settings:\n  upload_max_age: 3600\njobs:\n" + text_job("a")
    )
    assert load_manifest(path).settings.upload_max_age == 3600.0


def test_the_upload_host_comes_from_the_flag_then_the_environment() -> None:
    from pipeline.kie.target import resolve_target

    env = {"KIE_API_KEY": "k", "KIE_UPLOAD_URL": "https://uploads.example/"}
    assert resolve_target(None, env).upload_url == "https://uploads.example"
    assert resolve_target(None, env, "http://127.0.0.1:9/").upload_url == "http://127.0.0.1:9"
    assert resolve_target(None, {"KIE_API_KEY": "k"}).upload_url == "https://kieai.redpandaai.co"
