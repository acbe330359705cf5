"""The sample manifests under manifests/ all load, and the campaign shows every feature."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipeline.manifest import load_manifest
from pipeline.models.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "manifests").rglob("*.yaml"))
PAGE = Path("/work/shared/reference/sora2-text-to-video.zh.md")
# The example prompt of Kie's endpoint page (sora2-text-to-video.zh.md), verbatim.
KIE_EXAMPLE = (
    "一位教授站在气氛活跃的教室前排，满怀热情地授课。他身后的黑板上画着色彩鲜艳的粉笔示意图，"
    "他用生动的手势向学生们宣布：“Sora 2 现已在 Kie AI 上线，让创作惊艳视频变得前所未有的简单。” "
    "学生们专注听讲，有人面带微笑，有人认真记笔记。"
)
MODERATED = ("gore", "nsfw")  # the simulator refuses prompts holding these words
DEMO_MODERATED = "teaser-horror"


def test_there_are_samples() -> None:
    names = {p.relative_to(ROOT / "manifests").as_posix() for p in SAMPLES}
    assert {
        "campaign.yaml",
        "examples/minimal.yaml",
        "examples/pro-matrix.yaml",
        "examples/pipeline.yaml",
    } <= names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_loads(path: Path) -> None:
    manifest = load_manifest(path)
    assert manifest.jobs
    first = path.read_text(encoding="utf-8").splitlines()[0]
    schema = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert schema, f"{path.name}: first line must point editors at the schema"
    assert (path.parent / schema.group(1)).resolve() == ROOT / "schemas/manifest.schema.json"
    for job in manifest.jobs:
        if (path.name, job.id) == ("campaign.yaml", DEMO_MODERATED):
            continue  # the demo's one failure by moderation, on purpose (issue 17)
        assert not any(word in job.prompt.lower() for word in MODERATED), job.id


def test_campaign_shows_every_feature() -> None:
    path = ROOT / "manifests" / "campaign.yaml"
    manifest = load_manifest(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert 10 <= len(manifest.jobs) <= 20  # other features add their jobs at the end
    assert raw.get("defaults") and raw.get("settings")
    # Several current video and image models, and one paused Sora job (a failure card).
    models = {j.model for j in manifest.jobs}
    assert {"kling-2.6/text-to-video", "bytedance/seedance-2-fast", "nano-banana-pro"} <= models
    assert {j.media for j in manifest.jobs} >= {"video", "image"}
    assert [j.id for j in manifest.jobs if j.paused] == ["kie-classroom"]
    moderated = [j.id for j in manifest.jobs if any(w in j.prompt.lower() for w in MODERATED)]
    assert moderated == [DEMO_MODERATED]
    assert any(j.upstream for j in manifest.jobs)  # a pipeline too
    # A local picture, uploaded for an image-to-video job (issue 14).
    assert any(f.name == "assets/aurora-lamp.png" for j in manifest.jobs for f in j.files)
    assert any("aspect_ratio" in (job.get("matrix") or {}) for job in raw["jobs"])
    files = [job["prompt_file"] for job in raw["jobs"] if "prompt_file" in job]
    assert files and all((path.parent / f).is_file() and f.startswith("prompts/") for f in files)
    assert KIE_EXAMPLE in [job.prompt for job in manifest.jobs]
    if PAGE.is_file():  # the reference copy of the page, where it is available
        assert KIE_EXAMPLE in PAGE.read_text(encoding="utf-8")
    # A sensible budget: the batch fits in it, and every job has a known price.
    assert all(j.credits is not None for j in manifest.jobs)
    budget = manifest.settings.max_credits
    assert budget is None or budget >= sum(j.credits or 0 for j in manifest.jobs)


def test_examples() -> None:
    minimal = load_manifest(ROOT / "manifests" / "examples" / "minimal.yaml")
    assert len(minimal.jobs) == 1
    pro = load_manifest(ROOT / "manifests" / "examples" / "pro-matrix.yaml")
    assert {j.model for j in pro.jobs} == {"wan/2-7-text-to-video"}
    assert sorted(j.input["resolution"] for j in pro.jobs) == ["1080p", "720p"]
    registry = ModelRegistry()
    for job in (*minimal.jobs, *pro.jobs):
        model = registry.get(job.model)
        assert model is not None and model.validator.is_valid(dict(job.input))
        assert job.paused is None and job.credits is not None
    assert not minimal.warnings and not pro.warnings


def test_pipeline_example() -> None:
    """A still from a local photo, animated, then upscaled: each stage takes the last."""
    chain = load_manifest(ROOT / "manifests" / "examples" / "pipeline.yaml")
    still, video, upscale = chain.jobs
    assert [f.name for f in still.files] == ["assets/mug.png"]
    assert still.files[0].media == "image" and still.media == "image"
    assert video.upstream == ("mug-still",) and upscale.upstream == ("mug-video",)
    assert not chain.warnings
