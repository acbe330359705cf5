"""How one result file is shown in the gallery: a picture, a video, a sound player or a link.

Every value is escaped here (file names come from job ids, media types from the service);
the page's Content-Security-Policy forbids scripts, so nothing here may rely on one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

# A media fragment makes browsers seek to (and so paint) an early frame once the metadata is
# in, which stands in for a poster: Kie returns no thumbnail, and we do not ship a decoder.
FIRST_FRAME = "#t=0.1"


def kind(output: Mapping[str, Any]) -> str:
    """ "image", "video", "audio" (the media type's first half), or "" when unknown."""
    return str(output.get("media_type") or "").partition("/")[0]


def src(output: Mapping[str, Any]) -> str:
    """The file's path as a relative URL (the page sits in the output folder)."""
    return quote(str(output["file"]), safe="/")


def player(output: Mapping[str, Any], alt: str) -> str:
    """One result shown by its kind: a picture, a video (an early frame as its preview), a
    sound player; anything else as a link to the file. `alt`: what it is, for screen
    readers."""
    url, what, label = src(output), kind(output), escape(alt)
    link = f'<a href="{escape(url)}">Download {escape(str(output["file"]))}</a>'
    if what == "image":
        return f'<img loading="lazy" src="{escape(url)}" alt="{label}">'
    if what == "video":
        return (
            f'<video controls preload="metadata" playsinline src="{escape(url + FIRST_FRAME)}" '
            f'title="{label}" aria-label="{label}">{link}</video>'
        )
    if what == "audio":
        return (
            f'<audio controls preload="metadata" src="{escape(url)}" aria-label="{label}">'
            f"{link}</audio>"
        )
    return f"<p>{link}</p>"


def strip(job_id: str, outputs: Sequence[Mapping[str, Any]]) -> str:
    """Every result of a task of several, as a row of thumbnails linking to the files."""
    items = []
    for number, output in enumerate(outputs, 1):
        if not output["file"]:
            items.append(f"<li><a>{number}: missing</a></li>")
            continue
        url = escape(src(output))
        if kind(output) == "image":
            alt = escape(f"Result {number} of {job_id}")
            inner = f'<img loading="lazy" src="{url}" alt="{alt}">'
        else:
            inner = escape(f"{number}: {kind(output) or 'file'}")
        items.append(f'<li><a href="{url}" title="{escape(str(output["file"]))}">{inner}</a></li>')
    return f'<ul class="strip" aria-label="{len(outputs)} results">{"".join(items)}</ul>'
