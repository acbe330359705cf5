"""Messages a copywriter can act on: YAML's surprises in prompts, and unreachable callbacks.

YAML was made for configuration, not prose: ` #` starts a comment (hashtags vanish from a
prompt without a word), `: ` starts a mapping (a prompt with a colon fails to parse), and an
unclosed quote is reported where the file ends. Each message here says what happened and
the one edit that fixes it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pipeline.manifest.errors import short

# Keys whose values are prose, where YAML's comment and colon rules bite.
PROSE_KEY = re.compile(r"(?:^|_)prompt$")
_KEY_LINE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w-]*)\s*:\s")


def comment_warning(key: str, value: str, rest: str) -> str | None:
    """A warning when `rest` (the text after a plain scalar on its line) is a comment."""
    stripped = rest.lstrip(" \t")
    if not stripped.startswith("#") or stripped == rest:
        return None
    comment = stripped.rstrip()
    whole = f"{value} {comment}".replace("\\", "\\\\").replace('"', '\\"')
    return (
        f"{key}: YAML reads {short(comment, 40)} as a comment, so the {key} ends at "
        f"{short(value[-30:], 40)}; if it belongs to the {key}, quote the whole {key}: "
        f'{key}: "{short(whole, 80)[1:-1]}" (or move a note to its own line)'
    )


def mapping_values_hint(line: str) -> str:
    """The fix for PyYAML's "mapping values are not allowed here" on `line`."""
    match = _KEY_LINE.match(line)
    key = match.group(1) if match else None
    if key is None:
        return ""
    if PROSE_KEY.search(key):
        return (
            f": the {key} holds ': ', which YAML reads as a new key; put the {key} in quotes, "
            f"or use `{key}: >-` with the text on the next lines, indented"
        )
    return f": the value of {key!r} holds ': '; put it in quotes"


def unclosed_quote(line: int, col: int, quote: str) -> str:
    return (
        f"YAML syntax error: quote opened at {line}:{col} is never closed; add the closing "
        f"{quote} (inside a {quote}...{quote} string, write "
        + ("'' for a single quote)" if quote == "'" else '\\" for a double quote)')
    )


def callback_warning(url: str) -> str | None:
    """Why Kie could not reach `url`, or None when it may."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return None  # not a URL at all: the schema's pattern reports it
    if not host:
        return None
    private = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    if not private:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        private = (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_unspecified
        )
    if not private:
        return None
    return (
        f"callback_url {short(url)} is on {host}, a local or private address: Kie's servers "
        "cannot reach it, so no callback will arrive (the runner still polls); use a public "
        "URL, or leave callback_url out"
    )
