"""Messages a copywriter can act on: YAML's traps in prompts, named jobs, reachable callbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.manifest import ManifestError, load_manifest, yamlsource

HEAD = "version: 1\njobs:\n  - id: beach\n    model: flux-2/pro-text-to-image\n"


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pure-python":
        monkeypatch.setattr(yamlsource, "_Loader", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    return str(request.param)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return [f"{i.line}:{i.column}: {i.message}" for i in caught.value.issues]


def test_hashtags_after_a_plain_prompt_are_warned_about(tmp_path: Path, parser: str) -> None:
    path = write(tmp_path, HEAD + "    prompt: Beach party for our summer launch #oatsummer #ad\n")
    manifest = load_manifest(path)
    assert manifest.jobs[0].prompt == "Beach party for our summer launch"
    (warning,) = manifest.warnings
    assert (warning.line, warning.column, warning.severity) == (5, 13, "warning")
    assert "YAML reads '#oatsummer #ad' as a comment" in warning.message
    assert 'prompt: "Beach party for our summer launch #oatsummer #ad"' in warning.message
    assert str(warning).startswith(f"{path}:5:13: warning: prompt: YAML reads")


def test_quoted_prompts_and_comment_lines_are_not_warned_about(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + '    prompt: "Beach party #oatsummer"  # a note\n    # a comment line\n',
    )
    assert load_manifest(path).warnings == ()


def test_colon_in_a_prompt_gets_the_fix(tmp_path: Path, parser: str) -> None:
    path = write(tmp_path, HEAD + "    prompt: Note: colons in prompts: fine?\n")
    (found,) = problems(path)
    assert found.startswith("5:17: YAML syntax error: mapping values are not allowed")
    assert "put the prompt in quotes, or use `prompt: >-`" in found


def test_unclosed_quote_is_reported_at_the_quote(tmp_path: Path, parser: str) -> None:
    text = HEAD + '    prompt: "A beach at dawn\n  - id: b\n    prompt: fine\n'
    (found,) = problems(write(tmp_path, text))
    assert found.startswith("5:13: YAML syntax error: quote opened at 5:13 is never closed")


def test_quote_running_into_the_next_one_is_pointed_at(tmp_path: Path, parser: str) -> None:
    text = HEAD + '    prompt: "A beach at dawn\n  - id: b\n    prompt: "fine"\n'
    (found,) = problems(write(tmp_path, text))
    assert "the quote opened at 5:13 is never closed on its line" in found


def test_duplicate_key_does_not_hide_the_other_problems(tmp_path: Path, parser: str) -> None:
    text = (
        "version: 1\ndefaults: {model: sora-2-text-to-video}\njobs:\n"
        "  - id: a\n    prompt: one\n    prompt: two\n"
        "  - id: b\n    prompt: hi\n    aspect_ratio: square\n"
        "  - id: c\n    promt: hi\n"
    )
    found = problems(write(tmp_path, text))
    assert found[0].startswith("6:5: duplicate key 'prompt' (first defined at line 5)")
    assert any(f.startswith('9:19: jobs[1] (b).aspect_ratio is "square"') for f in found)
    assert any(f.startswith("11:5: unknown key 'promt' in jobs[2] (c)") for f in found)


def test_errors_name_the_job(tmp_path: Path) -> None:
    text = HEAD.replace("beach", "hero-film") + "    prompt: hi\n    resolution: 8K\n"
    (found,) = problems(write(tmp_path, text))
    assert found.startswith('6:17: jobs[0] (hero-film).resolution is "8K"')


def test_latin1_prompt_file_gets_the_save_as_utf8_hint(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_bytes("Un café au lever du soleil".encode("latin-1"))
    (found,) = problems(write(tmp_path, HEAD + "    prompt_file: p.txt\n"))
    assert "is not valid UTF-8 text" in found and "Latin-1" in found
    assert found.endswith("save it as UTF-8")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/hook",
        "http://127.0.0.1/hook",
        "https://192.168.1.20/kie",
        "http://10.0.0.5/kie",
        "http://[::1]/hook",
        "http://studio.local/hook",
    ],
)
def test_unreachable_callback_is_warned_about(tmp_path: Path, url: str) -> None:
    manifest = load_manifest(write(tmp_path, HEAD + f"    prompt: hi\n    callback_url: {url}\n"))
    (warning,) = manifest.warnings
    assert (warning.line, warning.severity) == (6, "warning")
    assert "Kie's servers cannot reach it" in warning.message
    assert manifest.jobs[0].callback_url == url


def test_public_callback_is_fine(tmp_path: Path) -> None:
    text = HEAD + "    prompt: hi\n    callback_url: https://hooks.example.com/kie\n"
    assert load_manifest(write(tmp_path, text)).warnings == ()
