"""Price rules v2: every kind, table conditions, defaults, type strictness, checks, text."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.manifest.refs import OutputRef
from pipeline.models import pricing
from pipeline.models.pricing import check_rule, credits, credits_json, credits_text, describe
from pipeline.models.registry import ModelRegistry, bundled_dir, model_from_data
from tests.support.price_rules import GROK_VIDEO, SEEDANCE_FAST, WAN_VIDEO

D = Decimal


def test_decimal_credits_multiply_exactly() -> None:
    rule = {"per_second": 24.8, "field": "duration"}
    assert credits(rule, {"duration": 5}) == D(124)
    assert credits_text(credits(rule, {"duration": 5}) or 0) == "124"
    assert credits({"per_second": 0.1, "field": "d"}, {"d": 3}) == D(
        "0.3"
    )  # not 0.30000000000000004
    assert credits({"per_second": 22.5, "field": "d"}, {"d": "4"}) == D(90)
    assert credits({"flat": 5.5}, {}) == D("5.5")
    assert credits({"flat": 12}, {}) == 12


@pytest.mark.parametrize(
    ("given", "expected"),
    [({"duration": 5}, D(165)), ({"duration": "5"}, D(165)), ({"duration": "10"}, D(330)),
     ({"duration": 4.5}, D("148.5")), ({"duration": "5s"}, None), ({"duration": None}, None),
     ({}, None), ({"duration": True}, None), ({"duration": -5}, None),
     ({"duration": OutputRef("x")}, None)],
)  # fmt: skip
def test_per_second_reads_a_number_or_a_numeral(given: dict[str, Any], expected: Any) -> None:
    assert credits({"per_second": 33, "field": "duration"}, given) == expected


def test_per_result_counts_one_when_the_field_is_absent() -> None:
    rule = {"per_result": 5.5, "field": "n"}
    assert credits(rule, {}) == D("5.5")
    assert credits(rule, {"n": None}) == D("5.5")
    assert credits(rule, {"n": 4}) == D(22)
    assert credits(rule, {"n": "2"}) == D(11)
    assert credits(rule, {"n": "two"}) is None


def test_per_1000_chars_is_pro_rata() -> None:
    rule = {"per_1000_chars": 6, "field": "text"}
    assert credits(rule, {"text": "x" * 1000}) == 6
    assert credits(rule, {"text": "x" * 2500}) == D(15)
    assert credits({"per_1000_chars": 3, "field": "text"}, {"text": "x" * 2501}) == D("7.503")
    assert credits(rule, {"text": ""}) == 0
    assert credits(rule, {}) is None  # no text: unknown, not free
    assert credits(rule, {"text": ["a"]}) is None


@pytest.mark.parametrize(
    ("rule", "given", "expected"),
    [
        (SEEDANCE_FAST, {"resolution": "720p", "duration": 5}, D(165)),
        (SEEDANCE_FAST, {"resolution": "720p", "duration": 5, "reference_video_urls": []}, 165),
        (SEEDANCE_FAST, {"resolution": "720p", "duration": 5, "reference_video_urls": ["u"]}, 100),
        (SEEDANCE_FAST, {"resolution": "480p", "duration": 4}, D(62)),
        (SEEDANCE_FAST, {"resolution": "1080p", "duration": 4}, None),  # the null default
        (GROK_VIDEO, {"resolution": "720p", "duration": "10"}, D(30)),
        (GROK_VIDEO, {"resolution": "480p", "duration": "6"}, D("9.6")),
        (GROK_VIDEO, {"resolution": "720p"}, None),  # duration not given: no guess
        (GROK_VIDEO, {"resolution": "720p", "duration": ""}, None),
        (WAN_VIDEO, {"resolution": "1080p", "duration": 5}, D(120)),
    ],
)
def test_tables_from_the_price_list(rule: Any, given: dict[str, Any], expected: Any) -> None:
    assert check_rule(rule) is None
    assert credits(rule, given) == expected


def test_when_is_json_equality_and_a_list_means_any_of() -> None:
    rule = {
        "table": [
            {"when": {"duration": "5"}, "credits": 1},
            {"when": {"sound": True}, "credits": 2},
            {"when": {"resolution": ["1K", "2K"]}, "credits": 3},
            {"when": {"n": 2}, "credits": 4},
            {"when": {"tags": ["a", "b"]}, "credits": 5},
        ],
        "default": None,
    }
    assert credits(rule, {"duration": "5"}) == 1
    assert credits(rule, {"duration": 5}) is None  # "5" is not 5
    assert credits(rule, {"sound": True}) == 2
    assert credits(rule, {"sound": 1}) is None  # true is not 1
    assert credits(rule, {"resolution": "2K"}) == 3 and credits(rule, {"resolution": "4K"}) is None
    assert credits(rule, {"n": 2.0}) == 4  # one kind of number in JSON
    assert credits(rule, {"n": "2"}) is None
    assert credits(rule, {"tags": "b"}) == 5  # any of the list
    assert credits(rule, {}) is None  # a field the input lacks matches nothing


def test_first_row_wins_and_present_absent_treat_empty_as_absent() -> None:
    rule = {
        "table": [
            {"when": {"mode": "pro"}, "present": ["image_urls"], "credits": 30},
            {"when": {"mode": "pro"}, "credits": 20},
            {"when": {}, "absent": ["image_urls"], "credits": 10},
        ],
        "default": 1.25,
    }
    assert credits(rule, {"mode": "pro", "image_urls": ["u"]}) == 30
    assert credits(rule, {"mode": "pro", "image_urls": []}) == 20
    empties: list[dict[str, Any]] = [{}, {"image_urls": None}, {"image_urls": []}]
    for empty in [*empties, {"image_urls": ""}]:
        assert credits(rule, {"mode": "std", **empty}) == 10
    assert credits(rule, {"mode": "std", "image_urls": ["u"]}) == D("1.25")  # the default


def test_default_may_be_a_number_a_rule_or_null() -> None:
    rows = [{"when": {"resolution": "4K"}, "credits": 40}]
    given = {"resolution": "1K", "duration": "6"}
    assert credits({"table": rows, "default": 8.5}, given) == D("8.5")
    assert (
        credits({"table": rows, "default": {"per_second": 2.5, "field": "duration"}}, given) == 15
    )
    assert credits({"table": rows, "default": None}, given) is None
    assert credits({"table": rows}, given) is None  # written by earlier releases: null


def test_schema_defaults_are_filled_in_before_the_rule() -> None:
    data = {
        "model": "test/video",
        "price": {"rule": {"per_second": 24.8, "field": "duration"}},
        "input": {
            "type": "object",
            "properties": {"duration": {"type": "integer", "default": 5}},
        },
    }
    model = model_from_data(data, Path("test.json"))
    assert model.price_for({}) == D(124) and model.price_for({"duration": 10}) == D(248)


# --- checking rules -------------------------------------------------------------------------

OLD_RULES = [  # the forms earlier releases wrote into kie-models/ and the bundled catalog
    {"flat": 12},
    {"per_second": 14, "field": "duration"},
    {"per_result": 18, "field": "max_images"},
    {"table": [{"when": {"n_frames": "10"}, "credits": 30}], "default": None},
    {"table": [{"when": {"size": "high", "n_frames": "15"}, "credits": 630}], "default": 35},
    {"table": [{"when": {"quality": "high"}, "credits": 20}]},
    None,
]


@pytest.mark.parametrize("rule", OLD_RULES)
def test_rules_of_earlier_releases_stay_valid(rule: Any) -> None:
    assert check_rule(rule) is None


def test_every_bundled_rule_is_valid_for_its_model() -> None:
    registry = ModelRegistry()
    for name in registry.names():
        model = registry.get(name)
        assert model is not None
        assert check_rule(model.price_rule, model.fields) is None, name


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ([], "must be an object or null"),
        ({}, "exactly one of flat, per_second"),
        ({"flat": 1, "per_second": 2, "field": "d"}, "exactly one of"),
        ({"flat": "5"}, "not the string '5'"),
        ({"flat": True}, "must be a number of credits"),
        ({"flat": -1}, "must not be negative"),
        ({"flat": float("nan")}, "must be a number of credits"),
        ({"flat": float("inf")}, "must be a number of credits"),
        ({"flat": 1, "field": "d"}, "means nothing to flat"),
        ({"flat": 1, "note": "x"}, "unknown key 'note'"),
        ({"per_second": 3}, "per_second needs a `field`"),
        ({"per_result": 3, "field": ""}, "per_result needs a `field`"),
        ({"per_1000_chars": 3, "field": 7}, "per_1000_chars needs a `field`"),
        ({"per_second": 3, "field": "d", "default": 1}, "unknown key 'default'"),
        ({"table": {"when": {}}}, "table must be a list"),
        ({"table": ["x"]}, r"table\[0\] must be an object"),
        ({"table": [{"credits": 1}]}, r"table\[0\].when must be an object"),
        ({"table": [{"when": {}}]}, r"table\[0\] must have exactly one of credits"),
        ({"table": [{"when": {}, "credits": 1, "per_second": 1, "field": "d"}]}, "exactly one"),
        ({"table": [{"when": {}, "flat": 1}]}, "unknown key 'flat'"),
        ({"table": [{"when": {}, "credits": "1"}]}, r"table\[0\].credits must be a number"),
        ({"table": [{"when": {}, "per_second": 1}]}, "per_second needs a `field`"),
        ({"table": [{"when": {"d": []}, "credits": 1}]}, "could never match"),
        ({"table": [{"when": {}, "present": "d", "credits": 1}]}, "present must be a list"),
        ({"table": [{"when": {}, "absent": [3], "credits": 1}]}, r"absent\[0\] must name"),
        ({"table": [{"when": {}, "abscent": ["d"], "credits": 1}]}, "unknown key 'abscent'"),
        ({"table": [], "default": "5"}, "default must be a number of credits, not the string"),
        ({"table": [], "default": {"table": []}}, "default must be a number, a non-table rule"),
        ({"table": [], "default": {"per_second": 1}}, "default: per_second needs a `field`"),
        ({"table": [], "default": 1, "rows": []}, "unknown key 'rows'"),
    ],
)
def test_malformed_rules_are_refused_with_the_reason(rule: Any, why: str) -> None:
    problem = check_rule(rule)
    assert problem is not None
    assert re.search(why, problem), problem


def test_fields_a_rule_reads_must_be_the_models() -> None:
    fields = ("prompt", "duration", "resolution", "image_urls")
    assert check_rule(SEEDANCE_FAST, fields) is not None  # reference_video_urls is not here
    assert check_rule(WAN_VIDEO, fields) is None
    assert "'durations'" in (check_rule({"per_second": 1, "field": "durations"}, fields) or "")
    problem = check_rule({"table": [{"when": {"res": "1K"}, "credits": 1}]}, fields)
    assert problem is not None and "'res'" in problem


def test_a_model_file_with_a_misspelt_field_is_refused(tmp_path: Path) -> None:
    data = json.loads((bundled_dir() / "wan/2-7-text-to-video.json").read_text())
    data["price"]["rule"] = {"per_second": 16, "field": "durration"}
    (tmp_path / "wan").mkdir()
    (tmp_path / "wan/2-7-text-to-video.json").write_text(json.dumps(data))
    with pytest.raises(Exception, match="'durration', which is not an input field"):
        ModelRegistry([tmp_path]).get("wan/2-7-text-to-video")


# --- text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(D(124), "124"), (D("124.0"), "124"), (24.8, "24.8"), (D("1.75"), "1.75"), (6300, "6,300"),
     (D("7.503"), "7.5"), (D("0.125"), "0.13"), (0, "0"), (D("1234567.891"), "1,234,567.89"),
     (D("0.004"), "0")],
)  # fmt: skip
def test_credits_show_at_most_two_decimals(value: Any, text: str) -> None:
    assert credits_text(value) == text


def test_credits_as_json_numbers() -> None:
    assert json.dumps(credits_json(D("124.0"))) == "124"
    assert json.dumps(credits_json(D("24.8"))) == "24.8"
    assert json.dumps(credits_json(D("7.503"))) == "7.503"
    assert pricing.as_credits(24.8) == D("24.8") and pricing.usd(D("24.8")) == D("0.124")


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (None, "price unknown (no rule)"),
        ({"flat": 5.5}, "5.5 credits per task"),
        ({"per_second": 24.8, "field": "duration"}, "24.8 credits per second of `duration`"),
        ({"per_result": 18, "field": "n"}, "18 credits per result (`n`)"),
        ({"per_1000_chars": 6, "field": "text"}, "6 credits per 1000 characters of `text`"),
        (SEEDANCE_FAST, "a table of 4 prices by reference_video_urls, resolution (else unknown)"),
        (
            {"table": [{"when": {"a": 1}, "credits": 1}], "default": 2},
            "a table of 1 prices by a (else 2 credits per task)",
        ),
        (
            {"table": [], "default": {"per_second": 1.5, "field": "d"}},
            "a table of 0 prices by nothing (else 1.5 credits per second of `d`)",
        ),
    ],
)
def test_describe_covers_every_form(rule: Any, text: str) -> None:
    assert describe(rule) == text
