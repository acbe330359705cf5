"""Kie's endpoint families: one small module per family beside the createTask one.

A model file names its family (`"family": "veo"`; createTask when it says nothing); the
client asks the family where a create goes and how its record reads (see `base.Family`).
Adding a family is a module here and a line in `FAMILIES`: no engine code changes.
"""

from __future__ import annotations

from pipeline.kie.families import createtask, flux_kontext, gpt4o_image, runway, suno, veo
from pipeline.kie.families.base import PLACEHOLDER_CALLBACK, Family, Request

DEFAULT = "createTask"
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        createtask.FAMILY,
        veo.FAMILY,
        runway.FAMILY,
        flux_kontext.FAMILY,
        gpt4o_image.FAMILY,
        suno.FAMILY,
    )
}
NAMES = tuple(FAMILIES)

__all__ = ["DEFAULT", "FAMILIES", "NAMES", "PLACEHOLDER_CALLBACK", "Family", "Request", "family"]


def family(name: str | None) -> Family:
    """The family called `name` (createTask for None); KeyError for an unknown one, which
    the model file's check rules out before a run."""
    return FAMILIES[name or DEFAULT]
