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
    models = {job.model for job in manifest.jobs}
    assert len(models) >= 5  # several current video and image models
    assert "sora-2-text-to-video" in models  # the paused one: a failure card on the first run
    assert any("Sora 2 现已在 Kie AI 上线" in job.prompt for job in manifest.jobs)
    assert len(manifest.jobs) >= 11
    # ... and ends with a pipeline: a still animated by an image-to-video model.
    assert [j.upstream for j in manifest.jobs[-3:-1]] == [(), ("lamp-still",)]
    # ... and animates a local picture (issue 14).
    assert any(job.files for job in manifest.jobs)
