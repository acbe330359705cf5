"""The bad-input corpus: every case is refused with one clear, located line per problem."""

from __future__ import annotations

import os
import re
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pipeline.manifest import ManifestError, load_manifest, yamlsource

CORPUS = Path(__file__).parent / "corpus"
INVALID = sorted(p.name for p in (CORPUS / "invalid").iterdir() if p.is_dir())
_EXPECTED = re.compile(r"^(\d+):(\d+|\*): (.+)$")
JOB = "version: 1\ndefaults: {model: bytedance/v1-lite-text-to-video}\njobs:\n  - id: a\n"


def _prompt_too_long(folder: Path) -> None:
    (folder / "manifest.yaml").write_text(JOB + "    prompt: " + "x" * 10001 + "\n")


def _symlink_outside(folder: Path) -> None:
    outside = folder.parent / "outside.txt"
    outside.write_text("a prompt that lives outside the manifest's folder\n")
    (folder / "escape.txt").symlink_to(outside)
    (folder / "manifest.yaml").write_text(JOB + "    prompt_file: escape.txt\n")


def _prompt_file_too_long(folder: Path) -> None:
    (folder / "long.txt").write_text("y" * 10001 + "\n")
    (folder / "manifest.yaml").write_text(JOB + "    prompt_file: long.txt\n")


def _prompt_file_not_utf8(folder: Path) -> None:
    (folder / "latin1.txt").write_bytes("Un caf\u00e9 au lever du soleil".encode("latin-1"))
    (folder / "manifest.yaml").write_text(JOB + "    prompt_file: latin1.txt\n")


def _over_10_mb(folder: Path) -> None:
    # Valid YAML all the way: the size alone must refuse it, before any parsing.
    padding = "# " + "p" * 98 + "\n"
    body = JOB + "    prompt: hi\n" + padding * (10 * 1024 * 1024 // len(padding) + 1)
    (folder / "manifest.yaml").write_text(body)


def _non_utf8(folder: Path) -> None:
    (folder / "manifest.yaml").write_bytes((JOB + "    prompt: caf\u00e9\n").encode("latin-1"))


def _utf16(folder: Path) -> None:
    (folder / "manifest.yaml").write_bytes((JOB + "    prompt: hi\n").encode("utf-16"))


def _control_character(folder: Path) -> None:
    (folder / "manifest.yaml").write_text(JOB + "    prompt: hi\x07there\n")


def _huge_integer(folder: Path) -> None:
    (folder / "manifest.yaml").write_text(
        "version: 1\nsettings:\n  concurrency: "
        + "9" * 5000
        + "\njobs:\n  - id: a\n    prompt: hi\n"
    )


def _alias_bomb_text(folder: Path) -> None:
    # Few values but a 1 MB string repeated through aliases: 30 MB of text once expanded.
    big = "z" * (1024 * 1024)
    jobs = "".join(f"  - {{id: j{i}, prompt: *big}}\n" for i in range(30))
    (folder / "manifest.yaml").write_text(f"version: 1\nx-big: &big {big}\njobs:\n{jobs}")


# Cases whose files are written at run time (see corpus/README.md).
GENERATED: dict[str, Callable[[Path], None]] = {
    "prompt-too-long": _prompt_too_long,
    "prompt-file-symlink-outside": _symlink_outside,
    "prompt-file-too-long": _prompt_file_too_long,
    "prompt-file-not-utf8": _prompt_file_not_utf8,
    "file-over-10mb": _over_10_mb,
    "non-utf8": _non_utf8,
    "utf16": _utf16,
    "control-character": _control_character,
    "huge-integer": _huge_integer,
    "alias-bomb-text": _alias_bomb_text,
}


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run under both parsers: PyYAML may or may not have been built with libyaml."""
    if request.param == "pure-python":
        monkeypatch.setattr(yamlsource, "_Loader", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    return str(request.param)


def materialise(case: str, tmp_path: Path) -> Path:
    """Copy the case into a fresh folder (generated files included); return its manifest."""
    folder = tmp_path / "case"
    shutil.copytree(CORPUS / "invalid" / case, folder, symlinks=True)
    if case in GENERATED:
        GENERATED[case](folder)
    manifest = folder / "manifest.yaml"
    assert manifest.exists(), f"{case}: no manifest.yaml and no generator"
    return manifest


def expected_lines(case: str) -> list[tuple[int, int | None, str]]:
    out = []
    for text in (CORPUS / "invalid" / case / "expected.txt").read_text().splitlines():
        match = _EXPECTED.match(text)
        assert match, f"{case}/expected.txt: bad line {text!r}"
        line, col, fragment = match.groups()
        out.append((int(line), None if col == "*" else int(col), fragment))
    assert out, f"{case}/expected.txt is empty"
    return out


def test_every_case_is_complete() -> None:
    assert len(INVALID) >= 70
    assert set(GENERATED) <= set(INVALID)
    for case in INVALID:
        folder = CORPUS / "invalid" / case
        assert (folder / "expected.txt").is_file(), case
        assert (folder / "manifest.yaml").is_file() or case in GENERATED, case


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", INVALID)
def test_invalid_case_is_refused(case: str, tmp_path: Path, yaml_parser: str) -> None:
    manifest = materialise(case, tmp_path)
    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    issues = caught.value.issues
    report = "\n".join(str(i) for i in issues)
    expected = expected_lines(case)
    assert len(issues) == len(expected), f"{case}: expected {len(expected)} issues:\n{report}"
    unmatched = list(issues)
    for line, col, fragment in expected:
        hit = next(
            (
                i
                for i in unmatched
                if i.line == line and col in (None, i.column) and fragment in i.message
            ),
            None,
        )
        assert hit is not None, f"{case}: nothing matches {line}:{col}: {fragment}\n{report}"
        unmatched.remove(hit)
    for issue in issues:
        assert issue.path == str(manifest)
        assert "\n" not in str(issue) and "\r" not in str(issue)
        assert len(issue.message) <= 400
        assert re.match(r"^.+:\d+:\d+: \S", str(issue))


@pytest.mark.timeout(10)
def test_alias_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """9 levels of 9: about 430 million values if expanded. Refused without expanding."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("version: 1\n" + "\n".join(lines) + "\njobs:\n  - id: a\n    prompt: *a9\n")
    tracemalloc.start()
    try:
        with pytest.raises(ManifestError, match="alias bomb"):
            load_manifest(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


@pytest.mark.timeout(10)
def test_merge_key_bomb_is_refused(tmp_path: Path) -> None:
    """`<<` chains double at each level; the alias budget counts them before merging."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, 40)]
    path = tmp_path / "merge-bomb.yaml"
    path.write_text(
        "version: 1\nx:\n"
        + "".join(f"  {line}\n" for line in lines)
        + "jobs:\n  - id: a\n    prompt: hi\n"
    )
    with pytest.raises(ManifestError, match="alias bomb"):
        load_manifest(path)


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.yaml")
    with pytest.raises(ManifestError, match="is a directory"):
        load_manifest(tmp_path)


@pytest.mark.skipif(
    os.geteuid() == 0 if hasattr(os, "geteuid") else True,
    reason="root reads any file; POSIX permissions only",
)
def test_unreadable_prompt_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hi\n")
    secret.chmod(0)
    path = tmp_path / "m.yaml"
    path.write_text(JOB + "    prompt_file: secret.txt\n")
    with pytest.raises(ManifestError, match="cannot be read"):
        load_manifest(path)
