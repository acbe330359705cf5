"""The prose reader over a corpus of Kie-style `pricingDesc` texts; each rule it gives is
checked and evaluated by pipeline.models.pricing, as the runner will."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.models import pricing
from pipeline.models.openapi import CREATE_TASK, model_file
from pipeline.models.pricetext import rule_from_prose
from pipeline.models.registry import Model, model_from_data

Fields = dict[str, dict[str, Any]]

KLING: Fields = {
    "prompt": {"type": "string"},
    "duration": {"type": "string", "enum": ["5", "10"], "default": "5"},
    "aspect_ratio": {
        "type": "string",
        "enum": ["16:9", "9:16", "1:1"],
        "default": "16:9",
    },
}
SEEDANCE: Fields = {
    "prompt": {"type": "string"},
    "duration": {"type": "integer", "default": 5},
    "resolution": {
        "type": "string",
        "enum": ["480p", "720p", "1080p"],
        "default": "720p",
    },
}
IMAGE: Fields = {
    "prompt": {"type": "string"},
    "num_images": {"type": "integer", "default": 1},
    "image_size": {
        "type": "string",
        "enum": ["square", "landscape_4_3"],
        "default": "square",
    },
}
IMAGE_RES: Fields = {
    "prompt": {"type": "string"},
    "n": {"type": "integer", "default": 1},
    "resolution": {"type": "string", "enum": ["1K", "2K", "4K"], "default": "1K"},
}
TTS: Fields = {
    "text": {"type": "string"},
    "voice": {"type": "string", "enum": ["Rachel", "Adam"], "default": "Rachel"},
}
# resolution lives in "quality", spelled in capitals; duration in "video_duration"
QUALITY: Fields = {
    "prompt": {"type": "string"},
    "video_duration": {"type": "string", "enum": ["6", "10"], "default": "6"},
    "quality": {"type": "string", "enum": ["720P", "1080P"], "default": "720P"},
}
UNTYPED: Fields = {"duration": {}}
MODE: Fields = {
    "prompt": {"type": "string"},
    "duration": {"type": "integer", "default": 5},
    "mode": {"type": "string", "enum": ["std", "pro"], "default": "std"},
}
SEEDANCE_4K: Fields = {
    **SEEDANCE,
    "resolution": {"type": "string", "enum": ["480p", "720p", "1080p", "4K"]},
}
SORA: Fields = {
    "prompt": {"type": "string"},
    "n_frames": {"type": "string", "enum": ["10", "15"], "default": "10"},
}
TWO_DURATIONS: Fields = {
    "video_duration": {"type": "integer"},
    "audio_duration": {"type": "integer"},
}

MODELS: dict[str, Fields] = {
    "kling": KLING,
    "seedance": SEEDANCE,
    "image": IMAGE,
    "image_res": IMAGE_RES,
    "tts": TTS,
    "quality": QUALITY,
    "untyped": UNTYPED,
    "mode": MODE,
    "seedance_4k": SEEDANCE_4K,
    "sora": SORA,
    "two_durations": TWO_DURATIONS,
}


def ps(c: float, f: str = "duration") -> dict[str, Any]:
    return {"per_second": c, "field": f}


def table(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"table": list(rows), "default": None}


def row(when: dict[str, Any], **body: Any) -> dict[str, Any]:
    return {"when": when, **body}


def res_ps(res: str | list[str], c: float) -> dict[str, Any]:
    return row({"resolution": res}, per_second=c, field="duration")


SEEDANCE_720_1080 = table(res_ps("720p", 12), res_ps("1080p", 20))
ONLY_720 = table(res_ps("720p", 12))

CORPUS: list[tuple[str | None, str, dict[str, Any] | None]] = [
    # "A N-second video costs C credits"
    (
        "A 5-second video costs 160 credits (0.80 USD)",
        "kling",
        table(row({"duration": "5"}, credits=160)),
    ),
    (
        "A 5-second video costs 160 credits (0.80 USD)",
        "seedance",
        table(row({"duration": 5}, credits=160)),
    ),
    ("A 5-second video costs 160 credits (0.80 USD)", "image", {"flat": 160}),
    (
        "A 5-second video costs 160 credits, a 10-second video costs 320 credits.",
        "kling",
        table(row({"duration": "5"}, credits=160), row({"duration": "10"}, credits=320)),
    ),
    (
        "A 5-second video costs 160 credits, a 10-second video costs 320 credits.",
        "image",
        None,
    ),  # conflict
    (
        "$0.80 (160 credits) for a 5s video",
        "kling",
        table(row({"duration": "5"}, credits=160)),
    ),
    (
        "A 6-second video costs 60 credits",
        "quality",
        table(row({"video_duration": "6"}, credits=60)),
    ),
    ("A 6-second video costs 200 credits", "kling", None),  # "6" is not in the enum
    ("A 5-second video costs 160 credits", "untyped", None),  # "5" or 5? unknown
    (
        "A 5-second 720p video costs 100 credits",
        "seedance",
        table(row({"resolution": "720p", "duration": 5}, credits=100)),
    ),
    # per second, by resolution
    (
        "12 credits per second for 720p (~$0.06) and 20 credits per second for 1080p",
        "seedance",
        SEEDANCE_720_1080,
    ),
    (
        "12 credits/s ($0.06) for 720 p or 20 credits/s ($0.10) for 1080 p",
        "seedance",
        SEEDANCE_720_1080,
    ),
    (
        "12 Credits Per Second for 720P; 20 credits per second for 1080P.",
        "seedance",
        SEEDANCE_720_1080,
    ),
    ("For 720p, 12 credits/s; for 1080p, 20 credits/s", "seedance", SEEDANCE_720_1080),
    (
        "480p and 720p cost 8 credits/sec, 1080p costs 20 credits/sec",
        "seedance",
        table(res_ps(["480p", "720p"], 8), res_ps("1080p", 20)),
    ),
    (
        "24 credits/s at 1080P",
        "quality",
        table(row({"quality": "1080P"}, per_second=24, field="video_duration")),
    ),
    ("12 credits per second for 4K", "seedance", None),  # no enum value for 4K
    (
        "12 credits per second for 720p and 14 credits per second for 720 p",
        "seedance",
        None,
    ),  # conflict
    (
        "12 credits per second for 720p. 8 credits per second otherwise.",
        "seedance",
        ONLY_720,
    ),
    # cut texts
    ("12 credits per second for 720p (~$0.06) and 20 cred", "seedance", ONLY_720),
    (
        "12 credits per second for 720p (~$0.06) and 20 credits per second for 10",
        "seedance",
        ONLY_720,
    ),
    ("12 credits per second for 720p (~$0.06) and 20", "seedance", ONLY_720),
    ("12 credits per second for 720p (~$0.0", "seedance", ONLY_720),
    ("12 credits per s", "seedance", None),
    ("12 credits per seco", "seedance", None),
    ("A 5-second video costs 16", "kling", None),
    ("A 5-second video costs 160 cre", "kling", None),
    (
        "A 5-second video costs 160 credits, and a 10-second",
        "kling",
        table(row({"duration": "5"}, credits=160)),
    ),
    # plain per second, credits and USD
    ("12 CREDITS PER SECOND", "kling", ps(12)),
    ("12credits/sec", "kling", ps(12)),
    ("24.8 credits per second of video", "seedance", ps(24.8)),
    ("$0.124 per second", "seedance", ps(24.8)),
    ("$0.165/s", "seedance", ps(33)),
    ("0.00875 USD per second", "seedance", ps(1.75)),
    ("$0.124 per second", "image", None),  # no duration field
    ("~$0.06 per second", "seedance", None),  # approximate USD
    ("12 credits per second. 20 credits per second.", "seedance", None),  # conflict
    ("12 credits per minute", "seedance", None),  # unit not read
    # per result / per task / no unit
    ("Each image costs 18 credits", "image", {"per_result": 18, "field": "num_images"}),
    ("Each image costs 18 credits", "kling", {"flat": 18}),
    (
        "Costs 5.5 credits per image",
        "image",
        {"per_result": 5.5, "field": "num_images"},
    ),
    ("1,200 credits per request", "image", {"flat": 1200}),
    ("It costs 40 credits.", "kling", {"flat": 40}),
    ("It costs 40 credits.", "image", None),  # per task or per image? num_images can be 4
    ("It costs 40 credits", "kling", None),  # may be a cut "40 credits per second"
    (
        "40 credits",
        "kling",
        None,
    ),  # no unit, no verb: maybe a cut "40 credits per second"
    (
        "20 credits per image (1K) and 40 credits per image (4K)",
        "image_res",
        table(
            row({"resolution": "1K"}, per_result=20, field="n"),
            row({"resolution": "4K"}, per_result=40, field="n"),
        ),
    ),
    # per characters
    ("3 credits per 1,000 characters", "tts", {"per_1000_chars": 3, "field": "text"}),
    ("$0.03 per 1000 chars", "tts", {"per_1000_chars": 6, "field": "text"}),
    ("0.006 credits per character", "tts", {"per_1000_chars": 6, "field": "text"}),
    ("10 credits per 1K characters", "tts", {"per_1000_chars": 10, "field": "text"}),
    (
        "3 credits per 1,000 characters",
        "kling",
        {"per_1000_chars": 3, "field": "prompt"},
    ),
    ("3 credits per 1,000 characters", "untyped", None),  # no text field
    # more USD-only, headers, and clauses that void the text
    ("$0.06/s for 720p and $0.10/s for 1080p", "seedance", SEEDANCE_720_1080),
    ("0.06 USD per second (720p)", "seedance", ONLY_720),
    ("12 credits per second (~$0.06)", "seedance", ps(12)),
    ("Costs 0.5 USD per image", "image", {"per_result": 100, "field": "num_images"}),
    ("USD 0.5 per request", "image", {"flat": 100}),
    (
        "Kling 2.1 Master. A 5-second video costs 160 credits.",
        "kling",
        table(row({"duration": "5"}, credits=160)),
    ),
    (
        "A 5-second video costs 160 credits and a 10-second video costs 32",
        "kling",
        table(row({"duration": "5"}, credits=160)),
    ),  # cut in "320"
    (
        "12 credits per second for 720p and 20 credits.",
        "seedance",
        None,
    ),  # 20 per what?
    (
        "12 credits/s for 720p; 5 credits/s for audio; 20 credits/s for 1080p",
        "seedance",
        None,
    ),
    ("12 credits per second. 1080p costs more.", "seedance", None),
    ("Each image costs 18 credits. Each image costs 20 credits.", "image", None),
    # no price, unsafe or malformed
    ("Pricing varies", "kling", None),
    (None, "kling", None),
    ("", "kling", None),
    ("Contact us for pricing", "kling", None),
    ("12 credits per second with audio", "seedance", None),
    ("From 12 credits per second", "seedance", None),
    ("1,20 credits per second", "seedance", None),
    ("Kling 2.1: a 5-second video costs 160 credits", "kling", None),  # stray number
    (
        "$0.1234567890123456789 per second",
        "seedance",
        None,
    ),  # not exact as a JSON number
    # texts the reader must not read into a price they do not state
    ("Pro mode. 18 credits per second.", "mode", None),  # the heading is a condition
    ("Seedance 1080p. 20 credits per second.", "seedance", None),
    ("Kling 2.1 Master. 18 credits per second.", "mode", ps(18)),  # a name, not a condition
    ("20 credits per second in fast mode", "seedance", None),  # "fast mode" unread
    ("18 credits per second (pro mode)", "seedance", None),
    ("24.8 credits per second of input video", "seedance", None),  # the input's length
    ("12 credits ($0.10) per second", "seedance", None),  # the text contradicts itself
    ("12 credits/s ($0.0", "seedance", ps(12)),  # a cut USD figure is not a contradiction
    ("Each video costs $0.1", "seedance", None),  # may be a cut "$0.15"
    ("Costs USD 0.5", "image", None),
    ("Each video costs $0.1.", "kling", {"flat": 20}),
    ("12 credits per second, 24 in 1080p", "seedance", None),  # the exception was lost
    ("12 credits per second. 24 for 1080p.", "seedance", None),
    ("12 credits per second and 20 cred", "seedance", None),  # ditto, cut
    ("12 credits per second otherwise", "seedance", None),  # a default of nothing
    (  # "and 1080p" may close the first price or open the second
        "12 credits per second for 720p and 1080p, 20 credits per second for 4K.",
        "seedance_4k",
        None,
    ),
    (  # cut there, the rest is dropped: 1080p and 4K unknown
        "12 credits per second for 720p and 1080p, 20 credits per second for 4K",
        "seedance_4k",
        ONLY_720,
    ),
    (  # two prices for a 5-second 720p video
        "12 credits per second for 720p; a 5-second 720p video costs 100 credits.",
        "seedance",
        None,
    ),
    ("480p and 720p cost 8 credits/sec, 720p costs 9 credits/sec", "seedance", None),
    ("A 10-second video costs 30 credits", "sora", None),  # n_frames may set the length
    ("A 5-second video costs 160 credits", "two_durations", None),  # which duration?
    ("12 credits per second", "two_durations", None),
]


@pytest.mark.parametrize(("prose", "model", "expected"), CORPUS)
def test_corpus(prose: str | None, model: str, expected: dict[str, Any] | None) -> None:
    got = rule_from_prose(prose, MODELS[model])
    assert got == expected
    # JSON numbers exactly as RULES.md wants: integers when whole, shortest decimal otherwise
    assert json.dumps(got) == json.dumps(expected)


def test_corpus_size() -> None:
    assert len(CORPUS) >= 30


def test_whole_numbers_are_ints() -> None:
    rule = rule_from_prose("$0.165/s", SEEDANCE)
    assert rule is not None and type(rule["per_second"]) is int
    assert json.dumps(rule) == '{"per_second": 33, "field": "duration"}'


# --- the rules it gives, evaluated as the runner does -----------------------------------


def _filled(fields: Mapping[str, Mapping[str, Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: s["default"] for k, s in fields.items() if "default" in s}
    out.update(given)
    return out


@pytest.mark.parametrize(("prose", "model", "expected"), CORPUS)
def test_every_rule_read_is_valid_for_its_model(
    prose: str | None, model: str, expected: dict[str, Any] | None
) -> None:
    rule = rule_from_prose(prose, MODELS[model])
    assert pricing.check_rule(rule, MODELS[model]) is None


EVALS: list[tuple[str, Fields, dict[str, Any], Decimal | None]] = [
    ("A 5-second video costs 160 credits (0.80 USD)", KLING, {}, Decimal(160)),
    ("A 5-second video costs 160 credits (0.80 USD)", KLING, {"duration": "10"}, None),
    (
        "A 5-second video costs 160 credits, a 10-second video costs 320 credits.",
        KLING,
        {"duration": "10"},
        Decimal(320),
    ),
    (
        "12 credits per second for 720p (~$0.06) and 20 credits per second for 1080p",
        SEEDANCE,
        {"resolution": "1080p", "duration": 10},
        Decimal(200),
    ),
    (
        "12 credits per second for 720p (~$0.06) and 20 credits per second for 1080p",
        SEEDANCE,
        {},
        Decimal(60),
    ),
    (
        "12 credits per second for 720p (~$0.06) and 20 cred",
        SEEDANCE,
        {"resolution": "1080p"},
        None,
    ),
    (
        "480p and 720p cost 8 credits/sec, 1080p costs 20 credits/sec",
        SEEDANCE,
        {"resolution": "480p", "duration": 4},
        Decimal(32),
    ),
    ("$0.124 per second", SEEDANCE, {"duration": 5}, Decimal(124)),
    ("Each image costs 18 credits", IMAGE, {"num_images": 4}, Decimal(72)),
    ("Each image costs 18 credits", IMAGE, {}, Decimal(18)),
    ("3 credits per 1,000 characters", TTS, {"text": "x" * 2500}, Decimal("7.5")),
    (
        "24 credits/s at 1080P",
        QUALITY,
        {"quality": "1080P", "video_duration": "10"},
        Decimal(240),
    ),
    ("24 credits/s at 1080P", QUALITY, {}, None),
]


@pytest.mark.parametrize(("prose", "fields", "given", "credits"), EVALS)
def test_evaluate(
    prose: str, fields: Fields, given: dict[str, Any], credits: Decimal | None
) -> None:
    rule = rule_from_prose(prose, fields)
    assert rule is not None
    assert pricing.credits(json.loads(json.dumps(rule)), _filled(fields, given)) == credits


# --- through `models pull`'s conversion, to the price a dry run shows -----------------------


def _pulled(prose: str | None) -> Model:
    """The model file `models pull` writes for a Seedance-like document with this price text,
    loaded as the runner loads it."""
    body = {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "input": {
                "type": "object",
                "properties": {
                    "prompt": {"type": "string"},
                    "resolution": {"type": "string", "enum": ["720p", "1080p"], "default": "720p"},
                    "duration": {"type": "integer", "default": 5},
                },
                "required": ["prompt"],
            },
        },
    }
    document = {
        "openapi": "3.0.1",
        "paths": {
            CREATE_TASK: {
                "post": {"requestBody": {"content": {"application/json": {"schema": body}}}}
            }
        },
    }
    data = model_file(
        "test/pulled", document, listing=None, pricing_desc=prose, source_url="u", fetched="d"
    )
    return model_from_data(json.loads(json.dumps(data)), Path("test/pulled.json"))


def test_a_pulled_per_second_price_by_resolution_is_priced_exactly() -> None:
    model = _pulled("24.8 credits/s ($0.124) for 720 p or 40 credits/s ($0.20) for 1080 p")
    assert model.price_for({"prompt": "p"}) == Decimal(124)  # 720p and 5 s by default
    assert model.price_for({"prompt": "p", "resolution": "1080p", "duration": 8}) == 320
    assert pricing.describe(model.price_rule).startswith("a table of 2 prices by resolution")


@pytest.mark.parametrize("prose", ["Pricing varies by resolution", "Contact us", "", None])
def test_a_pulled_text_without_a_price_is_price_unknown(prose: str | None) -> None:
    model = _pulled(prose)
    assert model.price_rule is None and model.price_for({"prompt": "p"}) is None
    assert pricing.describe(model.price_rule) == "price unknown (no rule)"
