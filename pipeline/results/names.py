"""Where each result of a job goes: `media/<job id>.<ext>`, then `media/<job id>-2.<ext>`, ...

The extension comes from the downloaded bytes' type (see `download.download_result`), so
this names only the stem. A job id may itself look like another job's second result (a job
`poster` with two images next to a job `poster-2`): the job named so keeps the plain name,
and the other result goes to `media/<job id>/<n>.<ext>` (a slash is never part of a job id,
so that name cannot collide with anything).
"""

from __future__ import annotations

import time
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


# Earlier takes: when an edited job's new result is about to take a name, the result of the
# job's earlier version that holds it moves here instead of being overwritten, so that a
# producer can compare them (the gallery shows them folded under the current one):
# `media/takes/<job id>/<finished, UTC>-<fingerprint[:8]>[-<n>].<ext>`. The name comes from
# the attempt alone, so a move interrupted by a crash is found and finished on the next run.
TAKES_DIR = f"{MEDIA_DIR}/takes"


def take_stem(job_id: str, fingerprint: str, finished_at: float, index: int) -> str:
    """Where result `index` of an earlier take of `job_id` goes (without extension)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(finished_at))
    suffix = f"-{index}" if index > 1 else ""
    return f"{TAKES_DIR}/{job_id}/{stamp}-{fingerprint[:8]}{suffix}"


def is_take(file: str) -> bool:
    """Whether `file` (relative to the output folder) is an earlier take. Two levels below
    `media/takes/`: a job named `takes` may own `media/takes/2.png` (see result_stem)."""
    rest = file.removeprefix(TAKES_DIR + "/")
    return rest != file and "/" in rest
