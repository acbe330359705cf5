"""Fingerprints: the same request however it is written; a different one otherwise."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.manifest import load_manifest

PROMPT = "A glass of iced tea sweats on a sunny windowsill."


def fingerprints(tmp_path: Path, text: str, name: str = "m.yaml") -> dict[str, str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return {job.id: job.fingerprint for job in load_manifest(path).jobs}


def one(tmp_path: Path, text: str) -> str:
    (value,) = fingerprints(tmp_path, text).values()
    return value


BLOCK = f"""\
    version: 1
    defaults: {{model: sora-2-text-to-video}}
    jobs:
      - id: tea
        prompt: {PROMPT}
        aspect_ratio: portrait
        n_frames: "15"
        remove_watermark: true
    """

SAME_REQUEST = {
    "keys reordered": f"""\
        jobs:
          - remove_watermark: true
            n_frames: "15"
            aspect_ratio: portrait
            prompt: {PROMPT}
            model: sora-2-text-to-video
            id: tea
        version: 1
        """,
    "flow style": f"""\
        {{version: 1, jobs: [{{id: tea, model: sora-2-text-to-video, prompt: "{PROMPT}",
          aspect_ratio: portrait, n_frames: '15', remove_watermark: true}}]}}
        """,
    "quoting and comments": f"""\
        # launch batch
        "version": 1   # always 1
        'jobs':
          - "id": 'tea'
            "model": "sora-2-text-to-video"
            "prompt": '{PROMPT}'   # single-quoted
            aspect_ratio: "portrait"
            n_frames: !!str 15
            remove_watermark: yes
        """,
    "literal block prompt": f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs:
          - id: tea
            prompt: |
              {PROMPT}
            aspect_ratio: portrait
            n_frames: "15"
            remove_watermark: true
        """,
    "folded block prompt": f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs:
          - id: tea
            prompt: >-
              {PROMPT[:19]}
              {PROMPT[20:]}
            aspect_ratio: portrait
            n_frames: "15"
            remove_watermark: true
        """,
    "everything from defaults": f"""\
        version: 1
        defaults:
          model: sora-2-text-to-video
          prompt: {PROMPT}
          aspect_ratio: portrait
          n_frames: "15"
          remove_watermark: true
        jobs:
          - id: tea
        """,
    "job overrides defaults": f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video, aspect_ratio: landscape, n_frames: "10",
                   remove_watermark: false}}
        jobs:
          - {{id: tea, prompt: {PROMPT}, aspect_ratio: portrait, n_frames: "15",
             remove_watermark: true}}
        """,
    "from a one-value matrix": f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs:
          - id: tea
            prompt: {PROMPT}
            remove_watermark: true
            matrix: {{aspect_ratio: [portrait], n_frames: ["15"]}}
        """,
    "model in defaults": f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs:
          - {{id: tea, prompt: {PROMPT}, aspect_ratio: portrait, n_frames: "15",
             remove_watermark: true, callback_url: "https://example.com/hook"}}
        """,
}


@pytest.mark.parametrize("variant", sorted(SAME_REQUEST))
def test_same_request_same_fingerprint(tmp_path: Path, variant: str) -> None:
    expected = one(tmp_path, BLOCK)
    found = fingerprints(tmp_path, SAME_REQUEST[variant], "variant.yaml")
    assert set(found.values()) == {expected}, variant


def test_prompt_file_equals_inline_prompt(tmp_path: Path) -> None:
    (tmp_path / "tea.txt").write_text(PROMPT + "\n", encoding="utf-8")
    from_file = one(tmp_path, BLOCK.replace(f"prompt: {PROMPT}", "prompt_file: tea.txt"))
    assert from_file == one(tmp_path, BLOCK)


def test_model_schema_defaults_equal_explicit_values(tmp_path: Path) -> None:
    """A value from the job, from `defaults`, or from the model schema: one fingerprint."""
    explicit = one(
        tmp_path,
        f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs: [{{id: a, prompt: {PROMPT}, aspect_ratio: landscape, n_frames: "10"}}]
        """,
    )
    from_defaults = one(
        tmp_path,
        f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video, aspect_ratio: landscape, n_frames: "10"}}
        jobs: [{{id: a, prompt: {PROMPT}}}]
        """,
    )
    from_schema = one(
        tmp_path,
        f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs: [{{id: a, prompt: {PROMPT}}}]
        """,
    )
    assert explicit == from_defaults == from_schema
    pro_default = one(
        tmp_path,
        f"""\
        version: 1
        jobs: [{{id: a, model: sora-2-pro-text-to-video, prompt: {PROMPT}}}]
        """,
    )
    pro_explicit = one(
        tmp_path,
        f"""\
        version: 1
        defaults: {{size: standard, n_frames: "10"}}
        jobs: [{{id: a, model: sora-2-pro-text-to-video, prompt: {PROMPT}}}]
        """,
    )
    assert pro_default == pro_explicit


def test_callback_url_does_not_change_the_fingerprint(tmp_path: Path) -> None:
    found = fingerprints(
        tmp_path,
        f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs:
          - {{id: a, prompt: {PROMPT}}}
          - {{id: b, prompt: {PROMPT}, callback_url: "https://example.com/one"}}
          - {{id: c, prompt: {PROMPT}, callback_url: "http://localhost:9000/two"}}
        """,
    )
    assert len(set(found.values())) == 1


def test_different_requests_differ(tmp_path: Path) -> None:
    found = fingerprints(
        tmp_path,
        f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs:
          - {{id: base, prompt: {PROMPT}}}
          - {{id: other-prompt, prompt: "{PROMPT[:-1]}!"}}
          - {{id: case-differs, prompt: "{PROMPT.lower()}"}}
          - {{id: portrait, prompt: {PROMPT}, aspect_ratio: portrait}}
          - {{id: fifteen, prompt: {PROMPT}, n_frames: "15"}}
          - {{id: no-watermark, prompt: {PROMPT}, remove_watermark: true}}
          - {{id: watermark-false, prompt: {PROMPT}, remove_watermark: false}}
          - {{id: pro, prompt: {PROMPT}, model: sora-2-pro-text-to-video}}
          - {{id: pro-high, prompt: {PROMPT}, model: sora-2-pro-text-to-video, size: high}}
        """,
    )
    assert len(set(found.values())) == len(found) == 9


def test_matrix_variants_differ(tmp_path: Path) -> None:
    found = fingerprints(
        tmp_path,
        f"""\
        version: 1
        defaults: {{model: sora-2-text-to-video}}
        jobs:
          - id: tea
            prompt: {PROMPT}
            matrix: {{aspect_ratio: [landscape, portrait], n_frames: ["10", "15"]}}
        """,
    )
    assert sorted(found) == [
        "tea-landscape-10",
        "tea-landscape-15",
        "tea-portrait-10",
        "tea-portrait-15",
    ]
    assert len(set(found.values())) == 4


def test_inner_whitespace_of_a_prompt_matters(tmp_path: Path) -> None:
    """Only outer whitespace is layout; inside the prompt every character counts."""
    found = fingerprints(
        tmp_path,
        """\
        version: 1
        defaults: {model: sora-2-text-to-video}
        jobs:
          - {id: a, prompt: "two  spaces"}
          - {id: b, prompt: "two spaces"}
          - {id: c, prompt: "two\\nlines"}
        """,
    )
    assert len(set(found.values())) == 3
