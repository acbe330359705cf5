"""OpenAPI -> model file conversion: the shapes Kie's catalog documents really have."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.models import openapi
from pipeline.models.openapi import CREATE_TASK, CatalogError, Refused


def document(input_schema: Any, components: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"type": "object", "properties": {"model": {"type": "string"}, "input": input_schema}}
    return {
        "openapi": "3.0.1",
        "paths": {
            CREATE_TASK: {
                "post": {
                    "summary": "A model",
                    "requestBody": {"content": {"application/json": {"schema": body}}},
                }
            }
        },
        "components": {"schemas": components or {}},
    }


def test_refs_with_encoded_segments_and_keys_ending_in_a_space() -> None:
    doc = document(
        {"$ref": "#/components/schemas/Kling%20Input%20"},
        {
            "Kling Input ": {
                "type": "object",
                "properties": {"ratio": {"$ref": "#/components/schemas/Ratio~1Enum"}},
            },
            "Ratio/Enum": {"type": "string", "enum": ["16:9", "9:16"]},
            "Kling Input": {"type": "object", "properties": {"wrong": {"type": "string"}}},
        },
    )
    schema = openapi.input_schema("m", doc)
    assert schema == {
        "type": "object",
        "properties": {"ratio": {"type": "string", "enum": ["16:9", "9:16"]}},
        "additionalProperties": False,
    }


def test_a_ref_to_nothing_or_to_itself_is_an_unexpected_answer() -> None:
    with pytest.raises(CatalogError, match="points at nothing"):
        openapi.input_schema("m", document({"$ref": "#/components/schemas/Input"}))
    loop = {
        "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}}
    }
    with pytest.raises(CatalogError, match="refers to itself"):
        openapi.input_schema("m", document({"$ref": "#/components/schemas/Node"}, loop))


def test_openapi_30_nullable_and_exclusive_bounds_become_json_schema() -> None:
    doc = document(
        {
            "type": "object",
            "properties": {
                "last_frame_url": {"type": "string", "nullable": True, "example": "https://x"},
                "mode": {"type": "string", "enum": ["a", "b"], "nullable": True},
                "seed": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
                "x-apidog-orders": {"type": "string"},
            },
            "x-apidog-orders": ["a"],
        }
    )
    props = openapi.input_schema("m", doc)["properties"]
    assert props["last_frame_url"] == {
        "type": ["string", "null"],
        "x-media": "image",
    }
    assert props["mode"] == {"type": ["string", "null"], "enum": ["a", "b", None]}
    assert props["seed"] == {"type": "integer", "exclusiveMinimum": 0}


def test_one_of_inputs_keep_their_branches_each_closed() -> None:
    doc = document(
        {
            "oneOf": [
                {"type": "object", "properties": {"prompt": {"type": "string"}}},
                {"type": "object", "properties": {"video_url": {"type": "string"}}},
            ]
        }
    )
    schema = openapi.input_schema("m", doc)
    assert "additionalProperties" not in schema
    first, second = schema["oneOf"]
    assert first["additionalProperties"] is False and second["additionalProperties"] is False
    assert second["properties"]["video_url"]["x-media"] == "video"


def test_file_fields_are_marked_by_name_with_their_size_limit() -> None:
    doc = document(
        {
            "type": "object",
            "properties": {
                "image_urls": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Images. Maximum file size: 10MB",
                },
                "reference_audio_urls": {"type": "array", "items": {"type": "string"}},
                "image_input": {"type": "array", "items": {"type": "string"}},
                "task_id": {"type": "string"},
                "callback_urls": {"type": "integer"},
            },
        }
    )
    props = openapi.input_schema("m", doc)["properties"]
    assert props["image_urls"]["x-media"] == "image"
    assert props["image_urls"]["x-max-bytes"] == 10 * 1024 * 1024
    assert props["reference_audio_urls"]["x-media"] == "audio"
    assert props["image_input"]["x-media"] == "image"
    assert "x-media" not in props["task_id"] and "x-media" not in props["callback_urls"]


def test_not_synced_and_not_a_job_model_are_refused() -> None:
    with pytest.raises(Refused, match="not synced"):
        openapi.input_schema("suno/v5", None)
    chat = {"openapi": "3.0.1", "paths": {"/gemini/v1/chat/completions": {"post": {}}}}
    with pytest.raises(Refused, match=r"not a job model .*/gemini/v1/chat/completions"):
        openapi.input_schema("gemini", chat)
    assert Refused("x").exit_code == 2


def test_documents_without_the_expected_parts_are_unexpected_answers() -> None:
    with pytest.raises(CatalogError):
        openapi.input_schema("m", {"openapi": "3.0.1"})
    with pytest.raises(CatalogError, match="request body"):
        openapi.input_schema("m", {"paths": {CREATE_TASK: {"post": {}}}})
    no_input = document({"type": "string"})
    no_input["paths"][CREATE_TASK]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ] = {"type": "object", "properties": {}}
    with pytest.raises(CatalogError, match="no `input`"):
        openapi.input_schema("m", no_input)


def test_digest_is_of_the_canonical_json() -> None:
    a = {"b": 1, "a": [1, {"y": "é", "x": None}]}
    b = {"a": [1, {"x": None, "y": "é"}], "b": 1}
    assert openapi.digest(a) == openapi.digest(b)
    assert openapi.digest(a).startswith("sha256:") and openapi.digest(a) != openapi.digest({})


def test_model_file_takes_metadata_from_the_listing_and_keeps_what_the_catalog_lacks() -> None:
    doc = document(
        {
            "type": "object",
            "properties": {
                "prompt": {"type": "string"},
                "max_images": {"type": "integer", "default": 2},
            },
        }
    )
    listing = {"title": "Seedream", "taskType": ["Text to Image"], "pricingDesc": "old"}
    previous = {
        "price": {"prose": "5 credits per image", "rule": {"per_result": 5, "field": "max_images"}},
        "status": {"state": "paused", "since": "2026-06-11", "message": "paused"},
    }
    data = openapi.model_file(
        "s/m",
        doc,
        listing=listing,
        pricing_desc="5 credits per image",
        source_url="u",
        fetched="2026-11-28",
        previous=previous,
    )
    assert data["title"] == "Seedream" and data["task_types"] == ["Text to Image"]
    assert data["output"] == {
        "media": "image",
        "max_results": {"field": "max_images", "default": 2},
    }
    assert data["price"] == previous["price"] and data["status"] == previous["status"]
    assert data["source"] == {"url": "u", "fetched": "2026-11-28", "digest": openapi.digest(doc)}
    fresh = openapi.model_file(
        "s/m", doc, listing=None, pricing_desc="7 credits per image", source_url="u", fetched="d"
    )
    assert fresh["title"] == "A model" and fresh["status"] == {"state": "available"}
    assert fresh["price"]["rule"] == {"per_result": 7, "field": "max_images"}


@pytest.mark.parametrize(
    ("prose", "rule"),
    [
        ("12 credits per video", {"flat": 12}),
        ("14 credits (0.07 USD) per second", {"per_second": 14, "field": "duration"}),
        (
            "A 5-second video costs 55 credits (0.275 USD)",
            {"table": [{"when": {"duration": "5"}, "credits": 55}], "default": None},
        ),
        ("Pricing varies by duration", None),  # no number: never a guessed one
        (None, None),
    ],
)
def test_price_rules_from_prose(prose: str | None, rule: Any) -> None:
    """The reader itself is tested over its corpus in test_pricetext.py."""
    schema = {"properties": {"duration": {"type": "string"}}}
    assert openapi.rule_from_prose(prose, schema) == rule


def test_changes_name_fields_and_enums() -> None:
    old = {
        "input": {
            "properties": {
                "ratio": {"type": "string", "enum": ["16:9", "9:16"]},
                "gone": {"type": "string"},
            }
        },
        "price": {"prose": "a"},
    }
    new = {
        "input": {
            "properties": {
                "ratio": {"type": "string", "enum": ["16:9", "1:1"]},
                "seed": {"type": "integer"},
            }
        },
        "price": {"prose": "a"},
    }
    assert openapi.changes(old, new) == [
        "field added: seed",
        "field removed: gone",
        'ratio: enum gained "1:1"',
        'ratio: enum lost "9:16"',
    ]
    assert openapi.changes(old, old) == ["other changes (descriptions, limits or metadata)"]
