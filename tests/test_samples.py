"""The sample manifests users start from must always validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.manifest import load_manifest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "manifests").rglob("*.yaml"))


def test_there_are_samples() -> None:
    assert ROOT / "manifests" / "campaign.yaml" in SAMPLES


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sample_validates(path: Path) -> None:
    manifest = load_manifest(path)
    assert manifest.jobs


def test_campaign_covers_what_the_demo_promises() -> None:
    manifest = load_manifest(ROOT / "manifests" / "campaign.yaml")
    inputs = [job.input for job in manifest.jobs if job.model.startswith("sora-2")]
    assert {i["aspect_ratio"] for i in inputs} == {"landscape", "portrait"}
    assert {i["n_frames"] for i in inputs} == {"10", "15"}
    assert any("Sora 2 现已在 Kie AI 上线" in i["prompt"] for i in inputs)
    assert len(manifest.jobs) == 15
    # ... and ends with a pipeline: a still animated by an image-to-video model.
    assert [j.upstream for j in manifest.jobs[-3:-1]] == [(), ("lamp-still",)]
    # ... and animates a local picture (issue 14).
    assert any(job.files for job in manifest.jobs)
