"""From raw job mappings to drafts: defaults, matrix, prompt, model input, references.

Every problem of a job is collected (an unknown key is reported even when the prompt is
missing too), so a user fixes a manifest in one pass.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.manifest.errors import Issue, short
from pipeline.manifest.files import InputFiles
from pipeline.manifest.graph import Draft
from pipeline.manifest.hints import callback_warning
from pipeline.manifest.inputs import RefReader, Slot, slots
from pipeline.manifest.prompts import PromptFiles
from pipeline.manifest.schema import RUNNER_KEYS, did_you_mean, label, schema_issues, unsafe_id
from pipeline.manifest.yamlsource import Located, Path_
from pipeline.models.registry import MODEL_NAME, Model, ModelFileError, ModelRegistry

# Job fields a matrix may not vary: identity, where the prompt comes from, and where the
# result is announced (the prompt would make unreadable ids; write one job per prompt).
NOT_IN_MATRIX = frozenset({"id", "matrix", "prompt", "prompt_file", "callback_url"})
# Bounds on expansion, so a few lines of matrix cannot ask for billions of jobs.
MAX_VARIANTS = 1000
MAX_JOBS = 100_000
PROMPT_KEYS = ("prompt", "prompt_file")
# Runner keys a default always applies; the others apply only where the model has the field.
_ALWAYS = frozenset({"model", "callback_url"})
# Models a manifest without one is pointed to (those of them that are bundled and running).
SUGGESTED = (
    "nano-banana-pro",
    "kling-2.6/text-to-video",
    "bytedance/seedance-2-fast",
    "kling-2.6/image-to-video",
)


def _slug(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return key.replace("_", "-") if value else "no-" + key.replace("_", "-")
    return re.sub(r"[^a-z0-9._]+", "-", str(value).lower()).strip("-") or "x"


def _listed(names: list[str], most: int = 5) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


class Expander:
    """Turns raw job mappings into Drafts, collecting issues instead of stopping at the first."""

    def __init__(
        self,
        located: Located,
        folder: Path,
        registry: ModelRegistry,
        defaults: Mapping[str, Any],
    ) -> None:
        self.located = located
        self.registry = registry
        self.defaults = defaults
        self.issues: list[Issue] = []
        self.warnings: list[Issue] = []
        self.prompt_files = PromptFiles(folder)
        self.refs = RefReader(located, InputFiles(folder))
        # job id -> (line of the job that made it, index of that job in `jobs`)
        self.seen: dict[str, tuple[int, int]] = {}
        self.count = 0
        self.models: dict[str, Model] = {}  # every model a job uses, by name
        self.used_defaults: set[str] = set()
        self.paused: set[str] = set()
        self.modelless: int | None = None  # the line of the first job that names no model
        self._slots: dict[str, dict[str, Slot]] = {}
        # A default a model refuses is reported once, at the default, naming the models it
        # does not fit and their jobs: (line, column, message) -> model -> job ids.
        self._spots = {pos for path, pos in located.values.items() if path[:1] == ("defaults",)}
        self._broken: dict[tuple[int, int, str], dict[str, list[str]]] = {}
        self.set_aside = 0  # of the last job's issues, those at a default

    def add(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.issues.append(self.located.issue(path, message, key=key))

    def expand_all(self, jobs_raw: list[Any]) -> list[Draft]:
        drafts: list[Draft] = []
        for index, raw in enumerate(jobs_raw):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue  # the manifest schema already reported it
            for variant in self.variants(index, raw):
                self.count += 1
                if self.count > MAX_JOBS:
                    self.add(
                        ("jobs", index),
                        f"the manifest makes more than {MAX_JOBS:,} "
                        "jobs; split it into several manifests",
                    )
                    return drafts
                draft = self.job(index, raw, variant)
                if draft is not None:
                    drafts.append(draft)
        self.unused_defaults()
        self.issues += self.refs.issues
        self.issues += self.broken_defaults()
        return drafts

    def note_defaults(self, issues: list[Issue], model: str, job_id: str) -> list[Issue]:
        """Of a job's issues, keep those about its own fields; set aside those at a default
        (see `broken_defaults`)."""
        own = []
        self.set_aside = len(issues)
        for issue in issues:
            if (issue.line, issue.column) in self._spots:
                models = self._broken.setdefault((issue.line, issue.column, issue.message), {})
                models.setdefault(model, []).append(job_id)
            else:
                own.append(issue)
        self.set_aside -= len(own)
        return own

    def broken_defaults(self) -> list[Issue]:
        """Each default a model refuses, once, with the models and jobs it breaks (a default
        applies only where the model has the field, so the others are fine)."""
        out = []
        for (line, column, message), models in self._broken.items():
            broken = "; ".join(
                f"{model} (job{'s' if len(jobs) > 1 else ''} {_listed(jobs)})"
                for model, jobs in models.items()
            )
            text = f"{message} (it does not fit {broken}: set it on those jobs instead)"
            out.append(Issue(self.located.source, line, column, text))
        return out

    def unused_defaults(self) -> None:
        """A default no job's model has is a typo (or a field of a model nobody uses)."""
        if not self.models:
            return  # no job has a known model: those errors come first
        fields = {f for m in self.models.values() for f in m.fields} | RUNNER_KEYS
        for key in self.defaults:
            if key in RUNNER_KEYS or key in self.used_defaults:
                continue
            hint = did_you_mean(key, fields)
            names = ", ".join(repr(n) for n in sorted(self.models))
            why = hint or f": not an input of any model the jobs use ({short(names, 200)})"
            self.add(("defaults", key), f"unknown key {short(key)} in defaults{why}", key=True)

    def variants(self, index: int, raw: Mapping[str, Any]) -> list[dict[str, tuple[int, Any]]]:
        """The job's matrix combinations as {field: (position in its list, value)}."""
        matrix = raw.get("matrix") or {}
        if not isinstance(matrix, dict) or not all(
            isinstance(v, list) and v for v in matrix.values()
        ):
            return []  # the manifest schema already reported it
        for bad in sorted(set(matrix) & NOT_IN_MATRIX):
            self.add(
                ("jobs", index, "matrix", bad),
                f"matrix cannot vary {bad!r}"
                + (": write one job per prompt" if bad.startswith("prompt") else ""),
                key=True,
            )
        keys = [k for k in matrix if k not in NOT_IN_MATRIX]
        total = math.prod(len(matrix[k]) for k in keys)
        if total > MAX_VARIANTS:
            self.add(
                ("jobs", index, "matrix"),
                f"matrix makes {total:,} variants, over the limit of {MAX_VARIANTS:,} per job",
                key=True,
            )
            return []
        lists = [list(enumerate(matrix[k])) for k in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]

    def job(
        self, index: int, raw: Mapping[str, Any], variant: Mapping[str, tuple[int, Any]]
    ) -> Draft | None:
        base: Path_ = ("jobs", index)
        values = {k: v for k, (_, v) in variant.items()}
        job_id = "-".join([raw["id"], *(_slug(k, v) for k, v in values.items())])
        id_at: Path_ = (*base, "matrix") if variant else (*base, "id")
        if (why := unsafe_id(job_id)) is not None:
            # Same words as the schema's message for a plain id, so the two merge into one.
            self.add(id_at, f"matrix makes {why}" if variant else why, key=bool(variant))
            return None
        line = self.located.where(base)[0]
        if job_id in self.seen:
            first_line, first_index = self.seen[job_id]
            self.add(
                id_at,
                f"matrix makes job id {job_id!r} more than once (repeated values?)"
                if first_index == index
                else f"duplicate job id {job_id!r} (also at line {first_line})",
                key=bool(variant),
            )
            return None
        self.seen[job_id] = (line, index)
        name = label(base, raw["id"])

        def source(field: str) -> Path_:
            """The node that set `field` for this job: matrix, job, then defaults."""
            if field in variant:
                return (*base, "matrix", field, variant[field][0])
            if field in raw:
                return (*base, field)
            if field in self.defaults:
                return ("defaults", field)
            return base

        model_name = values.get("model", raw.get("model", self.defaults.get("model")))
        model = self.model(model_name, source("model")) if model_name is not None else None
        if model_name is None:
            self.add(base, self.no_model(raw["id"], line))
        fields = set(model.fields) if model is not None else set()
        takes_prompt = model is None or "prompt" in fields
        applied = {
            k: v
            for k, v in self.defaults.items()
            if k in _ALWAYS or (k in fields) or (k in PROMPT_KEYS and takes_prompt)
        }
        self.used_defaults.update(applied)
        merged = {**applied, **{k: v for k, v in raw.items() if k != "matrix"}, **values}
        count = len(self.issues)
        prompt_at = self.prompt_source(base, raw, applied, model, takes_prompt)
        prompt = self.prompt(prompt_at, raw)
        callback = merged.get("callback_url")
        if isinstance(callback, str) and (warning := callback_warning(callback)):
            self.warnings.append(self.located.issue(source("callback_url"), warning).as_warning())
        if model is None:
            return None
        if (message := model.paused) is not None and model.name not in self.paused:
            self.paused.add(model.name)  # once per model, where it is first used
            self.warnings.append(
                self.located.issue(
                    source("model"), f"model {model.name!r} is paused: {message}"
                ).as_warning()
            )
        task_input = {
            **model.defaults(),
            **{k: v for k, v in merged.items() if k not in RUNNER_KEYS},
        }
        if prompt is not None:
            task_input["prompt"] = prompt

        def at(field: str) -> Path_:
            return prompt_at or base if field == "prompt" else source(field)

        def where(path: Path_) -> Path_:
            # Model schema paths are relative to the input: map the field to its source.
            if len(path) <= 2:
                return base
            node = at(str(path[2]))
            return (*node, *path[3:]) if node != base and node[-1] == path[2] else node

        job_slots = self.slots(model)
        ref_issues = len(self.refs.issues)
        checked, refs = self.refs.read(task_input, job_slots, at, lambda p: label(p, raw["id"]))
        self.issues += self.note_defaults(
            schema_issues(
                self.located,
                model.validator,
                checked,
                base,
                where=where,
                model=model.name,
                job=raw["id"],
                # A missing or unreadable prompt is reported above, in the manifest's words.
                known_missing=frozenset() if prompt is not None else frozenset({"prompt"}),
            ),
            model.name,
            job_id,
        )
        if len(self.issues) > count or self.set_aside or len(self.refs.issues) > ref_issues:
            return None
        return Draft(
            id=job_id,
            model=model,
            input=task_input,
            callback_url=callback if isinstance(callback, str) else None,
            line=line,
            name=name,
            slots=job_slots,
            refs=refs,
        )

    def slots(self, model: Model) -> dict[str, Slot]:
        if model.name not in self._slots:
            self._slots[model.name] = slots(model.schema)
        return self._slots[model.name]

    def no_model(self, job_id: str, line: int) -> str:
        """There is no default model (Sora 2, the old one, is gone): say how to name one,
        in full at the first job that names none, shortly at the others."""
        if self.modelless is not None:
            return f"job {short(job_id)} names no model either (see line {self.modelless})"
        self.modelless = line
        running = [
            name
            for name in SUGGESTED
            if (model := self.registry.get(name)) is not None and model.paused is None
        ]
        examples = f" (for example {', '.join(running)})" if running else ""
        return (
            f"job {short(job_id)} names no model: add `model: NAME` to the job, or to "
            f"`defaults` for every job{examples}; `run-pipeline models list` lists them all"
        )

    def model(self, name: Any, at: Path_) -> Model | None:
        """The job's Model, or None (reported) when unknown or its file is broken."""
        if not isinstance(name, str):
            return None  # type error already reported by the manifest schema
        if name in self.models:
            return self.models[name]
        try:
            # A name becomes a file name: past a sane length the OS refuses to look it up.
            plain = len(name) <= 200 and MODEL_NAME.fullmatch(name)
            model = self.registry.get(name) if plain else None
        except ModelFileError as exc:
            self.add(at, str(exc))
            return None
        except OSError:
            model = None
        if model is None:
            known = self.registry.names()
            listed = f" (known: {', '.join(known)})" if len(known) <= 12 else ""
            hint = did_you_mean(name, known)
            if not hint and not listed:
                hint = "; see `run-pipeline models list`, then `run-pipeline models pull`"
            self.add(at, f"unknown model {short(name)}{hint}{listed}")
            return None
        self.models[name] = model
        return model

    def prompt_source(
        self,
        base: Path_,
        raw: Mapping[str, Any],
        applied: Mapping[str, Any],
        model: Model | None,
        takes_prompt: bool,
    ) -> Path_ | None:
        """Where the job's prompt is set: its own prompt or prompt_file, else the defaults'.

        Exactly one of the two must be given where the model takes a prompt, none where it
        does not; otherwise report it and return None.
        """
        own = [k for k in PROMPT_KEYS if k in raw]
        if model is not None and not takes_prompt:
            for key in own:
                self.add((*base, key), f"model {model.name!r} takes no prompt: remove {key!r}")
            return None
        chosen = own or [k for k in PROMPT_KEYS if k in applied]
        at: Path_ = (*base, chosen[0]) if own else ("defaults", chosen[0]) if chosen else base
        if len(chosen) == 1:
            return at
        required = model is None or "prompt" in model.schema.get("required", ())
        if chosen or required:
            what = (
                "both 'prompt' and 'prompt_file'"
                if chosen
                else "neither 'prompt' nor 'prompt_file'"
            )
            self.add(at, f"job has {what}: give exactly one")
        return None

    def prompt(self, at: Path_ | None, raw: Mapping[str, Any]) -> str | None:
        """The job's prompt text, read from the node `prompt_source` found."""
        if at is None:
            return None
        value = (self.defaults if at[0] == "defaults" else raw)[str(at[-1])]
        if not isinstance(value, str):
            return None  # type error already reported by the manifest schema
        if at[-1] == "prompt":
            # Outer whitespace is YAML layout (a `|` block ends with a newline), not meaning:
            # strip it, as for prompt files, so the request and fingerprint do not depend on
            # the scalar style. A blank prompt stays as written, for the schema to refuse.
            return value.strip() or value
        if not value:
            return None  # an empty prompt_file is reported by the manifest schema
        text, problem = self.prompt_files.read(value)
        if problem is not None:
            self.add(at, problem)
        return text
