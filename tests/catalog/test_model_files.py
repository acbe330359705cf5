"""Model files: loading, errors naming the file, the kie-models/ lookup, price rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import EXIT_USAGE, PipelineError
from pipeline.models.registry import (
    ModelFileError,
    ModelRegistry,
    bundled_dir,
)


def model_data(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": name,
        "title": name.upper(),
        "output": {"media": "image", "max_results": 1},
        "price": {"prose": "p", "rule": {"flat": 3}},
        "input": {
            "type": "object",
            "properties": {"prompt": {"type": "string"}},
            "required": ["prompt"],
            "additionalProperties": False,
        },
        **extra,
    }


def write(folder: Path, name: str, data: Any) -> Path:
    path = folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_the_bundled_catalog_loads_and_covers_the_current_models() -> None:
    registry = ModelRegistry()
    names = registry.names()
    for name in (
        "kling-2.6/text-to-video",
        "bytedance/seedance-2-fast",
        "wan/2-7-text-to-video",
        "nano-banana-pro",
        "topaz/video-upscale",
        "sora-2-pro-text-to-video",
    ):
        assert name in names
    models = [registry.get(n) for n in names]
    assert all(m is not None and m.path is not None for m in models)
    kling = registry.get("kling-2.6/text-to-video")
    assert kling is not None and kling.schema["properties"]["duration"]["enum"] == ["5", "10"]
    seedance = registry.get("bytedance/seedance-2-fast")
    assert seedance is not None and seedance.schema["properties"]["duration"]["type"] == "integer"
    wan = registry.get("wan/2-7-text-to-video")
    assert wan is not None and "ratio" in wan.fields and "aspect_ratio" not in wan.fields
    for model in models:
        assert model is not None
        source = json.loads(model.path.read_text())["source"] if model.path else {}
        # Generated from the docs snapshot; the Sora 2 files (the overlay's) were written earlier.
        fetched = "2026-11-28" if model.name.startswith("sora-2") else "2026-08-19"
        assert source["fetched"] == fetched and source["url"]


def test_sora_is_paused_with_both_dates() -> None:
    for name in ("sora-2-text-to-video", "sora-2-pro-text-to-video"):
        model = ModelRegistry().get(name)
        assert model is not None and model.paused is not None
        assert "2026-06-11" in model.paused and "2026-09-24" in model.paused
        assert model.data["status"]["since"] == "2026-06-11"


def test_price_rules_of_each_kind() -> None:
    registry = ModelRegistry()
    kling = registry.get("kling-2.6/text-to-video")
    assert kling is not None
    assert kling.price_for({"prompt": "p", "sound": False}) == 55  # default duration "5"
    assert kling.price_for({"prompt": "p", "sound": True, "duration": "10"}) == 220
    assert kling.price_for({"prompt": "p", "sound": True, "duration": 10}) is None  # not "10"
    seedance = registry.get("bytedance/seedance-2-fast")
    # 720p (the default) with no video input: 33 credits per second
    assert seedance is not None and seedance.price_for({"duration": 8}) == 8 * 33
    ideogram = registry.get("ideogram/character")  # per image, by rendering speed
    assert ideogram is not None
    assert ideogram.price_for({"rendering_speed": "TURBO", "num_images": "3"}) == 36
    assert ideogram.price_for({"rendering_speed": "QUALITY"}) == 24  # num_images "1"
    seedream = registry.get("bytedance/seedream-v4-text-to-image")
    assert seedream is not None and seedream.price_for({}) is None  # not in the price list
    assert seedream.max_results({}) == 1 and seedream.max_results({"max_images": 4}) == 4
    upscale = registry.get("grok-imagine/upscale")  # 720p is listed, 1080p is not
    assert upscale is not None and upscale.price_for({}) == 10
    assert upscale.price_for({"resolution": "1080p"}) is None
    topaz = registry.get("topaz/image-upscale")
    assert topaz is not None and topaz.price_for({"image_url": "u"}) is None


def test_lookup_is_nearest_kie_models_first_then_bundled(tmp_path: Path) -> None:
    project = tmp_path / "project"
    manifest = project / "campaigns" / "spring" / "batch.yaml"
    manifest.parent.mkdir(parents=True)
    write(project / "kie-models", "kling-2.6/text-to-video", model_data("kling-2.6/text-to-video"))
    write(project / "kie-models", "mine", model_data("mine", title="far"))
    write(project / "campaigns" / "kie-models", "mine", model_data("mine", title="near"))
    registry = ModelRegistry.for_manifest(manifest)
    mine = registry.get("mine")
    assert mine is not None and mine.title == "near"
    kling = registry.get("kling-2.6/text-to-video")
    assert kling is not None and kling.path == project / "kie-models/kling-2.6/text-to-video.json"
    assert registry.get("nano-banana-pro") is not None  # bundled
    assert "mine" in registry.names() and "nano-banana-pro" in registry.names()
    assert registry.get("../etc/passwd") is None and registry.get("a/b/c") is None


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not valid JSON"),
        (model_data("bad", input={"type": 12}), "not a valid JSON Schema"),
        (model_data("bad", input={"properties": {"x": {"minLength": -1}}}), "JSON Schema"),
        (model_data("other"), "declares model 'other'"),
        (model_data("bad", price={"rule": {"per_second": 3}}), "needs a `field`"),
        (model_data("bad", status={"state": "gone"}), "status.state"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_bad_model_files_are_errors_naming_the_file(tmp_path: Path, content: Any, why: str) -> None:
    path = write(tmp_path / "kie-models", "bad", content)
    registry = ModelRegistry([tmp_path / "kie-models"])
    with pytest.raises(ModelFileError, match=why) as caught:
        registry.get("bad")
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, PipelineError) and caught.value.exit_code == EXIT_USAGE


def test_one_of_inputs_list_every_field_and_only_shared_defaults() -> None:
    model = ModelRegistry().get("kling-3.0-omni/image-to-video")
    assert model is not None
    assert {"prompt", "image_urls", "customize_multi_shots"} <= set(model.fields)
    # customize_multi_shots has a default in one branch only: not filled in
    assert model.defaults() == {
        "duration": 5,
        "resolution": "720p",
        "aspect_ratio": "auto",
        "elements": [],
    }


def test_bundled_dir_is_the_schemas_folder() -> None:
    assert (bundled_dir() / "nano-banana-pro.json").is_file()
