"""The formats a model file's input schema states and that Kie holds to: `format: uri` on a
URL field means an http(s) URL Kie can fetch. jsonschema only annotates formats unless given
a checker; the manifest's validation and the simulator's both use this one, so a plain path
or a quoted reference in a URL field is refused before anything is sent (and the simulator
refuses it as Kie would, instead of "succeeding" on text)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

FORMATS = FormatChecker(formats=())


@FORMATS.checks("uri")
def is_fetchable_url(value: object) -> bool:
    """An absolute http(s) URL with a host (anything but a string is the type's business)."""
    if not isinstance(value, str):
        return True
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def input_validator(schema: Any) -> Draft202012Validator:
    """The validator of a model's input schema, its formats checked."""
    return Draft202012Validator(schema, format_checker=FORMATS)
