"""The one manifest builder of the tests."""

from __future__ import annotations

from collections.abc import Callable

SORA = "sora-2-text-to-video"  # a manifest names its model: there is no default


def jobs_yaml(
    count: int,
    *,
    prefix: str = "job",
    settings: str = "",
    extra: str = "",
    aspect: Callable[[int], str] | None = None,
    model: str = SORA,
) -> str:
    """A manifest of `count` Sora jobs with distinct prompts (so distinct fingerprints).
    `settings` is YAML for the settings block; `extra` one more line of input per job;
    `model` goes in `defaults` (Sora 2's schema: the aspect ratios above are its own)."""
    lines = ["version: 1"]
    if settings:
        lines += ["settings:", *(f"  {line}" for line in settings.splitlines())]
    lines += ["defaults:", f"  model: {model}", "jobs:"]
    for i in range(count):
        ratio = aspect(i) if aspect else ("portrait" if i % 2 else "landscape")
        lines += [
            f"  - id: {prefix}-{i:03d}",
            f"    prompt: A paper boat number {i} on a pond",
            f"    aspect_ratio: {ratio}",
        ]
        if extra:
            lines.append(f"    {extra}")
    return "\n".join(lines) + "\n"
