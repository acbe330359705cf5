"""Where each result of a job goes: `media/<job id>.<ext>`, then `media/<job id>-2.<ext>`, ...

The extension comes from the downloaded bytes' type (see `download.download_result`), so
this names only the stem. A job id may itself look like another job's second result (a job
`poster` with two images next to a job `poster-2`): the job named so keeps the plain name,
and the other result goes to `media/<job id>/<n>.<ext>` (a slash is never part of a job id,
so that name cannot collide with anything).
"""

from __future__ import annotations

from collections.abc import Container

MEDIA_DIR = "media"


def result_stem(job_id: str, index: int, job_ids: Container[str]) -> str:
    """The path, relative to the output folder and without extension, of result `index`
    (1-based) of `job_id`; `job_ids`: every job id that may own a file in the folder."""
    if index == 1:
        return f"{MEDIA_DIR}/{job_id}"
    plain = f"{job_id}-{index}"
    if plain in job_ids:
        return f"{MEDIA_DIR}/{job_id}/{index}"
    return f"{MEDIA_DIR}/{plain}"
