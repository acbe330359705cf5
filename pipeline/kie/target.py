"""Where a run's calls go: the one place the API and upload URLs and the key are resolved.

The key comes from `KIE_API_KEY` and goes to the API host and the upload host only; the
state records the endpoint (the API URL, or `SIMULATED_ENDPOINT` for --simulate runs, whose
port changes every run) so that a folder is never resumed against another service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.errors import UsageError
from pipeline.paths import DEFAULT_BASE_URL, DEFAULT_UPLOAD_URL

SIMULATED_ENDPOINT = "simulator"  # the state of --simulate runs: any simulator port will do


@dataclass(frozen=True)
class Target:
    """The URL to call, the key, the endpoint the state records, and the file host that
    `{file: PATH}` inputs are uploaded to (the key goes there too, and nowhere else)."""

    base_url: str
    api_key: str
    endpoint: str
    upload_url: str = DEFAULT_UPLOAD_URL


def base_url(given: str | None, environ: Mapping[str, str]) -> str:
    """`--base-url`, else `KIE_BASE_URL`, else Kie's API."""
    return (given or environ.get("KIE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def endpoint(given: str | None, environ: Mapping[str, str], *, simulate: bool) -> str:
    """The endpoint a folder's state is bound to."""
    return SIMULATED_ENDPOINT if simulate else base_url(given, environ)


def resolve_target(
    given_url: str | None, environ: Mapping[str, str], upload_url: str | None = None
) -> Target:
    url = base_url(given_url, environ)
    uploads = (upload_url or environ.get("KIE_UPLOAD_URL") or DEFAULT_UPLOAD_URL).rstrip("/")
    key = environ.get("KIE_API_KEY", "").strip()
    if not key:
        raise UsageError(
            "KIE_API_KEY is not set: export your Kie API key, or try the batch "
            "on the built-in simulator with --simulate"
        )
    odd = next((i for i, ch in enumerate(key) if not " " < ch < "\x7f"), None)
    if odd is not None:
        # An HTTP header carries ASCII only: such a key could never be sent. Never echoed.
        raise UsageError(
            f"KIE_API_KEY holds a character that is not printable ASCII (character {odd + 1} "
            f"of {len(key)}): a Kie key is letters and digits; copy it again from your "
            "Kie account"
        )
    return Target(url, key, url, uploads)


def simulated(url: str, key: str) -> Target:
    """The in-process simulator answers both the API and uploads on one URL."""
    return Target(url, key, SIMULATED_ENDPOINT, url)
