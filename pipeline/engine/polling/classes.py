"""Timing classes: the model plus the input fields that set how long a task takes.

One model name can hide several latency distributions: `sora-2-text-to-video` makes a 10 s
video in about 2 minutes and a 15 s one in about 8. The poll planner learns one timing per
class, so each gets a plan of its own, and keeps every class's answers in its model's pool
too, which a class with no finished task yet starts from.

The fields are those of the bundled model files that plausibly change the work done: how much
(duration-like: `duration`, `n_frames`, `seconds`, `length`) and how big or how good
(`resolution`, `image_resolution`, `quality`, `mode`, `size`, `upscale_factor`). Prompts,
aspect ratios, seeds and the like vary per job and barely move the time, so they are left
out: a class should gather many tasks. A job that names none of the fields is in its model's
pool class (the model name itself), as is every task of an earlier run that kept no inputs.
A field left to the model's default is not filled in: the job joins the pool class.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.manifest.refs import as_text

TIMING_FIELDS = (
    "duration",
    "n_frames",
    "seconds",
    "length",
    "resolution",
    "image_resolution",
    "quality",
    "mode",
    "size",
    "upscale_factor",
)
OPEN = "["  # a class key is `model[field=value,...]`; no model name holds a bracket


def timing_class(model: str, inputs: Mapping[str, object]) -> str:
    """The class key of a job of `model` with these inputs (the model name when none of
    TIMING_FIELDS is given). Values are written as the state keeps them (`refs.as_text`,
    what `Attempt.shown_inputs` holds), so a job of this run and an attempt of an earlier one
    land in the same class."""
    parts = [f"{name}={as_text(inputs[name])}" for name in TIMING_FIELDS if name in inputs]
    return f"{model}{OPEN}{','.join(parts)}]" if parts else model


def pool_of(key: str) -> str:
    """The model pool a class key belongs to (itself for a pool key)."""
    return key.split(OPEN, 1)[0]
