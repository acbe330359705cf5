"""`{file: ...}`, `{output: ...}` and `{task: ...}` in a job's input: parsed and checked.

Which fields may hold a reference is read from the model's input schema: any field that
takes a string, or a list of strings (the prompt excepted: it takes text, see prompt_file).
What a field takes (image, video, audio) is its `x-media`, else guessed from its name
(`image_urls`, `video_url`); its size limit is `x-max-bytes`, else a default per media.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.manifest.errors import Issue, short
from pipeline.manifest.files import DEFAULT_MAX_BYTES, KIND_NAMES, InputFiles, size_text
from pipeline.manifest.refs import FileRef, OutputRef, Ref, TaskRef
from pipeline.manifest.schema import did_you_mean
from pipeline.manifest.yamlsource import Located, Path_

REF_KEYS = ("file", "output", "index", "task")
FORMS = "a string, {file: PATH}, {output: JOB}, {output: JOB, index: N} or {task: JOB}"
MEDIA = ("image", "video", "audio")


@dataclass(frozen=True)
class Slot:
    """What one input field accepts, as far as references are concerned."""

    media: str | None  # what a file or result put there must be; None: not known
    max_bytes: int | None  # the model's own limit on a file there


def _takes(schema: Any, kind: str) -> bool:
    if not isinstance(schema, Mapping):
        return False
    types = schema.get("type")
    if types == kind or (isinstance(types, list) and kind in types):
        return True
    return any(_takes(s, kind) for key in ("anyOf", "oneOf") for s in schema.get(key, ()))


def _items(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return None
    if _takes(schema, "array"):
        return schema.get("items")
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, ()):
            if _takes(branch, "array"):
                return branch.get("items") if isinstance(branch, Mapping) else None
    return None


def slots(schema: Mapping[str, Any]) -> dict[str, Slot]:
    """The input fields that may hold a reference, with what each accepts."""
    out: dict[str, Slot] = {}
    props = dict(schema.get("properties") or {})
    for key in ("oneOf", "anyOf"):  # a field of any input form may hold a reference
        for branch in schema.get(key) or ():
            if isinstance(branch, Mapping):
                props.update(
                    {k: v for k, v in (branch.get("properties") or {}).items() if k not in props}
                )
    for name, prop in props.items():
        if name == "prompt" or not isinstance(prop, Mapping):
            continue
        items = _items(prop)
        target = items if _takes(items, "string") else prop if _takes(prop, "string") else None
        if target is None:
            continue
        media = target.get("x-media", prop.get("x-media"))
        if media not in MEDIA:
            media = next((m for m in MEDIA if m in name.lower()), None)
        limit = target.get("x-max-bytes", prop.get("x-max-bytes"))
        out[name] = Slot(media, limit if isinstance(limit, int) else None)
    return out


def placeholder(ref: Ref | None) -> str:
    """A string the model's schema can check in the reference's place."""
    if isinstance(ref, FileRef):
        return f"https://files.invalid/{ref.sha256}.{ref.extension}"
    if isinstance(ref, OutputRef):
        return f"https://results.invalid/{ref.job}/{ref.index}"
    if isinstance(ref, TaskRef):
        return f"task-of-{ref.job}"
    return "https://invalid.invalid/reference"


class RefReader:
    """Turns the reference mappings of one job's input into Refs, reporting what is wrong."""

    def __init__(self, located: Located, files: InputFiles) -> None:
        self.located = located
        self.files = files
        self.issues: list[Issue] = []

    def read(
        self,
        task_input: dict[str, Any],
        fields: Mapping[str, Slot],
        at: Callable[[str], Path_],
        name: Callable[[Path_], str],
    ) -> tuple[dict[str, Any], list[tuple[str, Ref]]]:
        """Replace reference mappings in `task_input` by Refs (in place); return a copy
        with placeholders, for the model's schema to check, and the (field, Ref) pairs.
        `at(field)` is where a field's value sits; `name(path)` labels it for messages."""
        checked = dict(task_input)
        found: list[tuple[str, Ref]] = []
        for field, value in task_input.items():
            slot = fields.get(field)
            if slot is None:
                continue
            if isinstance(value, dict):
                ref = self.one(value, at(field), slot, name(at(field)))
                task_input[field], checked[field] = ref or value, placeholder(ref)
                found += [(field, ref)] if ref else []
            elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
                new, check = [], []
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        path = (*at(field), i)
                        ref = self.one(item, path, slot, name(path))
                        found += [(field, ref)] if ref else []
                        new.append(ref or item)
                        check.append(placeholder(ref))
                    else:
                        new.append(item)
                        check.append(item)
                task_input[field], checked[field] = new, check
        return checked, found

    def one(self, value: dict[str, Any], path: Path_, slot: Slot, name: str) -> Ref | None:
        line, col = self.located.where(path)
        keys = set(value)
        if keys == {"file"}:
            return self.file(value["file"], path, slot, name, line, col)
        if keys in ({"output"}, {"output", "index"}):
            job, index = value["output"], value.get("index", 1)
            if not isinstance(index, int) or isinstance(index, bool) or index < 1:
                self.add((*path, "index"), f"{name}: index must be 1 or more, not {short(index)}")
                return None
            return OutputRef(job, index, line, col) if self.job_name(job, path, name) else None
        if keys == {"task"}:
            job = value["task"]
            return TaskRef(job, line, col) if self.job_name(job, path, name) else None
        odd = sorted(k for k in keys if k not in REF_KEYS)
        hint = did_you_mean(odd[0], REF_KEYS) if odd else ""
        what = f"unknown key {short(odd[0])}{hint} " if odd else ""
        self.add(path, f"{name}: {what}must be {FORMS}")
        return None

    def job_name(self, job: Any, path: Path_, name: str) -> bool:
        if isinstance(job, str) and job:
            return True
        self.add(path, f"{name}: a reference names a job by its id, not {short(job)}")
        return False

    def file(
        self, rel: Any, path: Path_, slot: Slot, name: str, line: int, col: int
    ) -> FileRef | None:
        if not isinstance(rel, str) or not rel:
            self.add((*path, "file"), f"{name}: file must be a path, not {short(rel)}")
            return None
        found = self.files.read(rel)
        if isinstance(found, str):
            self.add((*path, "file"), f"{name}: {found}")
            return None
        if slot.media is not None and found.media != slot.media:
            self.add(
                (*path, "file"),
                f"{name} takes {a_media(slot.media)}; file {short(rel)} is "
                f"{a_media(found.media)} ({KIND_NAMES[found.kind]})",
            )
            return None
        limit = slot.max_bytes or DEFAULT_MAX_BYTES[found.media]
        if found.size > limit:
            whose = "the model's limit" if slot.max_bytes else f"the limit for {found.media}"
            self.add(
                (*path, "file"),
                f"{name}: file {short(rel)} is {size_text(found.size)}, over "
                f"{whose} of {size_text(limit)}",
            )
            return None
        found = self.files.hashed(found, rel)
        if isinstance(found, str):
            self.add((*path, "file"), f"{name}: {found}")
            return None
        return FileRef(
            rel, found.path, found.sha256, found.media, found.kind, found.size, line, col
        )

    def add(self, path: Path_, message: str) -> None:
        self.issues.append(self.located.issue(path, message))


def a_media(media: str) -> str:
    """ "an image", "a video", "audio"."""
    return {"image": "an image", "video": "a video", "audio": "audio"}.get(media, media)
