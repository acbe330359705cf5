"""The bundled catalog against Kie's docs snapshot (schemas/kie-docs/): generated, faithful.

- `python3 dev.py catalog` regenerates exactly the committed `schemas/models/`;
- every request example of the snapshot validates against its converted schema, except the
  documents that contradict themselves (listed below, one comment each: the file follows
  the schema, not the example);
- the converted fields agree with the snapshot's own flattened `market_model_registry.json`
  (names, types, enums, required, defaults, limits), the disagreements listed and justified.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pipeline.models import docs, examples, generate, openapi, prose
from pipeline.models.registry import ModelRegistry
from pipeline.paths import schemas_dir

SNAPSHOT = schemas_dir() / "kie-docs" / generate.SNAPSHOT
OVERLAY = schemas_dir() / generate.OVERLAY
MARKET = "https://docs.kie.ai/market/"

# Pages whose request example breaks their own request schema (the model file follows the
# schema: it is what Kie documents as the contract, and the example is prose around it).
CONTRADICTIONS = {
    # The example sends return_last_frame, a field this page's schema does not declare (its
    # siblings seedance-2 and seedance-2-fast do, deprecated).
    MARKET + "bytedance/seedance-2-mini.md": ["(top): return_last_frame"],
    # The example's voice is a name ("Rachel"); the schema's enum lists ElevenLabs voice ids.
    MARKET + "elevenlabs/text-to-speech-multilingual-v2.md": ["voice"],
    MARKET + "elevenlabs/text-to-speech-turbo-2-5.md": ["voice"],
    # The example sends extend_times as the string "6"; the schema types it number.
    MARKET + "grok-imagine/extend.md": ["extend_times"],
    # The example sends duration as the string "6"; the schema types it number.
    MARKET + "grok-imagine/text-to-video.md": ["duration"],
    # Schema and example both name the field "reference_image " (a trailing space); the
    # conversion trims it, as on the two other such pages (whose examples send the bare name)
    # and as market_model_registry.json does, so the example's spaced key is unknown here.
    MARKET + "happyhorse/video-edit.md": ["(top): reference_image "],
}
# Pages without a readable example: the page's code block is not JSON even with trailing
# commas forgiven (a stray word in it), or it is empty; 14 others document none at all.
UNREADABLE = {MARKET + "kling/v25-turbo-image-to-video-pro.md", MARKET + "seedream/seedream.md"}


def overlay() -> Any:
    return json.loads(OVERLAY.read_text(encoding="utf-8"))


def job_pages() -> list[dict[str, Any]]:
    catalog = json.loads((SNAPSHOT / "openapi_endpoint_catalog.json").read_text("utf-8"))
    return [e for e in catalog["endpoints"] if docs.is_job(e)]


def renames() -> dict[str, str]:
    return {e["document"]: e["model"] for e in overlay()["entries"] if "document" in e}


def test_the_command_regenerates_the_committed_catalog(tmp_path: Path) -> None:
    files = generate.build(SNAPSHOT, overlay())
    assert generate.write(files, tmp_path) != []
    assert generate.write(files, tmp_path) == []  # a rerun on the same input changes nothing
    committed = schemas_dir() / "models"
    theirs = {p.relative_to(committed): p.read_text("utf-8") for p in committed.rglob("*.json")}
    ours = {p.relative_to(tmp_path): p.read_text("utf-8") for p in tmp_path.rglob("*.json")}
    stale = sorted(str(p) for p in theirs.keys() ^ ours.keys())
    differ = sorted(str(p) for p in theirs.keys() & ours.keys() if theirs[p] != ours[p])
    assert not stale and not differ, (
        f"schemas/models/ is not what `python3 dev.py catalog` makes: {stale + differ}"
    )
    # Every createTask model of the snapshot, once (English pages; 2 slugs fixed by the
    # overlay), and the paused Sora 2 files beside them.
    # The 17 models of Kie's own-endpoint families come from their operations (familydocs).
    assert len(files) == 138 + 17 and {"sora-2-text-to-video", "sora-2-pro-text-to-video"} <= set(
        files
    )
    assert sum(1 for f in files.values() if f.get("family")) == 17
    assert len(job_pages()) == 141


def test_every_request_example_validates_unless_its_page_contradicts_itself() -> None:
    fixes = renames()
    found: dict[str, list[str]] = {}
    valid, unreadable = 0, set()
    for page in job_pages():
        url = page["source_url"]
        data = docs.model_file(page, fetched="x", model=fixes.get(url))
        post = docs.endpoint_document(page)["paths"][openapi.CREATE_TASK]["post"]
        example = examples.request_example(post)
        if example is None:
            if page["request"][docs.JSON].get("example") is not None:
                unreadable.add(url)
            continue
        assert example["model"] == data["model"], url
        errors = Draft202012Validator(data["input"]).iter_errors(example["input"])
        fields = sorted(
            "/".join(str(p) for p in e.absolute_path)
            or f"(top): {e.message.split(chr(39))[1] if chr(39) in e.message else e.message}"
            for e in errors
        )
        if fields:
            found[url] = fields
        else:
            valid += 1
    assert found == CONTRADICTIONS
    assert unreadable == UNREADABLE
    assert valid == 119


def _registry() -> dict[str, dict[str, Any]]:
    data = json.loads((SNAPSHOT / "market_model_registry.json").read_text("utf-8"))
    return {m["source_url"]: m for m in data["models"]}


# Where the bundle and market_model_registry.json disagree, and why (model, field, what).
REGISTRY_DISAGREEMENTS = {
    # Six pages lost nsfw_checker's definition (a dangling $ref in x-apidog-refs): the
    # registry drops the field, we keep it untyped (boolean where the page's example says so).
    **{
        (model, "nsfw_checker", "names"): "kept though its definition is lost"
        for model in (
            "bytedance/seedance-2",
            "grok-imagine/image-to-video",
            "grok-imagine/text-to-video",
            "hailuo/2-3-image-to-video-standard",
            "wan/2-6-text-to-video",
            "wan/2-7-image-pro",
        )
    },
    # An input that is a oneOf/anyOf of forms: the registry flattens no field of it.
    **{
        (model, "*", "names"): "the registry lists no field of a union input"
        for model in (
            "grok-imagine-image-2-0/segment-map",
            "kling-3.0-omni/image-to-video",
            "kling-3.0-omni/reference-to-video",
            "pixverse-v6/extend",
        )
    },
    # Required in every form of the oneOf; the registry reads the top level only.
    ("kling-3.0-omni/transformation", "prompt", "required"): "required in every form",
    ("kling-3.0-omni/transformation", "video_urls", "required"): "required in every form",
    # One form takes only "auto", the other three ratios; the registry merges the two enums.
    ("kling-3.0-omni/transformation", "aspect_ratio", "enum"): "an enum per form",
}
COMPARED: tuple[str, ...] = ("type", "enum", "default", "minimum", "maximum", "minLength")
COMPARED += ("maxLength", "minItems", "maxItems")


def test_converted_fields_agree_with_the_registry() -> None:
    registry = _registry()
    disagreements: set[tuple[str, str, str]] = set()
    from_text = 0
    bundle = ModelRegistry()
    for name in bundle.names():
        model = bundle.get(name)
        assert model is not None
        flat = registry.get(str(model.source.get("url")))
        if flat is None:
            continue  # the Sora 2 files, a Chinese-only page, Gemini TTS (not in the registry)
        theirs = {f["name"]: f for f in flat["input_fields"]}
        union = model.schema.get("oneOf") or model.schema.get("anyOf") or []
        forms = (
            [model.schema]
            if not union
            else [
                {
                    **f,
                    "properties": {**model.schema.get("properties", {}), **f.get("properties", {})},
                }
                for f in union
            ]
        )
        ours = {k for form in forms for k in form.get("properties", {})}
        if not theirs and len(forms) > 1:
            disagreements.add((name, "*", "names"))
            continue
        disagreements |= {(name, f, "names") for f in ours ^ theirs.keys()}
        for field in ours & theirs.keys():
            flat_field = theirs[field]
            specs = [f["properties"][field] for f in forms if field in f.get("properties", {})]
            required = field in model.schema.get("required", ()) or all(
                field in f.get("required", ()) for f in forms
            )
            if required != bool(flat_field["required"]):
                disagreements.add((name, field, "required"))
            for key in COMPARED:
                if any(spec.get(key) == flat_field.get(key) for spec in specs):
                    continue
                read = all(key in spec.get("x-limits-from-text", ()) for spec in specs)
                if read and flat_field.get(key) is None:
                    from_text += 1  # a limit only the page's text states: ours, not theirs
                    continue
                disagreements.add((name, field, key))
    assert disagreements == set(REGISTRY_DISAGREEMENTS)
    # 3 maxLength and 3 minimum/maximum pairs read by the conversion from descriptions, and
    # the overlay's 3 Seedance 2 durations (minimum and maximum)
    assert from_text == 15


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Duration of the video in seconds,Optional range 4-12 s", {"minimum": 4, "maximum": 12}),
        ("Number of images. Range is 1-12 when `enable_sequential=true`.", {}),
        ("(Min: 1, Max: 6, Step: 1)", {"minimum": 1, "maximum": 6}),
        ("Min: 0 Max: 10 Step: 2", {"minimum": 0, "maximum": 10, "multipleOf": 2}),
    ],
)
def test_limits_read_from_a_number_fields_text(text: str, expected: dict[str, Any]) -> None:
    assert prose.limits({"type": "integer", "description": text}) == expected


def test_string_limits_and_file_sizes_read_from_text() -> None:
    text = "The prompt (Min length: 3, Max length: 20000 characters)"
    assert prose.limits({"type": "string", "description": text}) == {
        "minLength": 3,
        "maxLength": 20000,
    }
    assert prose.limits({"type": "string", "maxLength": 5, "description": text}) == {"minLength": 3}
    assert prose.max_bytes("Accepted types: image/png; Max size: 10.0MB") == 10 * 2**20
    assert prose.max_bytes("Max size: 10MB, or Max size: 20MB") is None
    assert prose.accepted_media("Accepted types: video/mp4, video/quicktime") == "video"
    assert prose.accepted_media("Accepted types: image/png, video/mp4") is None
