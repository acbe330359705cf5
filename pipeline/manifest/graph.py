"""Jobs that take other jobs' results: check the references, then fingerprint in order.

A downstream job's fingerprint covers its upstream jobs' fingerprints, so an edit anywhere
upstream changes every fingerprint below it (and nothing above): the rerun redoes exactly
what the edit invalidated. That needs the upstream fingerprints first, hence the order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.manifest.errors import Issue
from pipeline.manifest.fingerprint import fingerprint
from pipeline.manifest.inputs import Slot, a_media
from pipeline.manifest.model import Job
from pipeline.manifest.refs import FileRef, OutputRef, Ref, TaskRef, identity
from pipeline.manifest.schema import did_you_mean
from pipeline.manifest.tasksource import task_media
from pipeline.manifest.yamlsource import Located
from pipeline.models.registry import Model


@dataclass
class Draft:
    """A job that passed its own checks, waiting for its references to be checked."""

    id: str
    model: Model
    input: dict[str, Any]
    callback_url: str | None
    line: int
    name: str  # "jobs[3] (hero-film)", for messages
    slots: Mapping[str, Slot] = field(default_factory=dict)
    # (field, reference) for every reference of the input, in input order.
    refs: list[tuple[str, Ref]] = field(default_factory=list)


def link(
    located: Located, drafts: list[Draft], ids: Collection[str]
) -> tuple[list[Job], list[Issue]]:
    """Check every reference among `drafts` (`ids`: every job id the manifest makes, also
    of jobs refused for other reasons); return the Jobs, fingerprinted, or the problems."""
    by_id = {d.id: d for d in drafts}
    issues: list[Issue] = []
    edges: dict[str, list[tuple[str, Ref]]] = {}
    for draft in drafts:
        for key, ref in draft.refs:
            if isinstance(ref, FileRef):
                continue
            problem = _check(draft, key, ref, by_id, ids)
            if problem:
                issues.append(Issue(located.source, ref.line, ref.col, problem))
            elif ref.job in by_id:
                edges.setdefault(draft.id, []).append((ref.job, ref))
    issues += _cycles(located, edges, by_id)
    if issues:
        return [], issues
    fingerprints: dict[str, str] = {}
    for job_id in _order(drafts, edges):
        draft = by_id[job_id]
        try:
            seen = identity(draft.input, fingerprints) if draft.refs else draft.input
        except KeyError:
            continue  # an upstream job was refused (and reported): so is this one, silently
        fingerprints[job_id] = fingerprint(draft.model.name, seen)
    jobs = [
        _job(d, fingerprints[d.id], edges.get(d.id, ()), by_id)
        for d in drafts
        if d.id in fingerprints
    ]
    return jobs, []


def _check(
    draft: Draft,
    key: str,
    ref: OutputRef | TaskRef,
    by_id: Mapping[str, Draft],
    ids: Collection[str],
) -> str | None:
    what = "output" if isinstance(ref, OutputRef) else "task"
    where = f"{draft.name}.{key}"
    if ref.job == draft.id:
        return f"{where}: job {draft.id!r} cannot take its own {what}"
    if ref.job not in ids:
        variants = [i for i in ids if i.startswith(ref.job + "-")][:3]
        hint = (
            f"; {ref.job!r} is a matrix job: name one of its variants, e.g. "
            + ", ".join(repr(v) for v in sorted(variants))
            if variants
            else did_you_mean(ref.job, ids)
        )
        return f"{where}: no job {ref.job!r} in this manifest{hint}"
    upstream = by_id.get(ref.job)
    if upstream is None:
        return None  # that job has its own errors, reported where it is written
    if isinstance(ref, TaskRef) and upstream.model.family != draft.model.family:
        # A task id means something only to the endpoints that made it.
        return (
            f"{where}: {draft.model.name} takes the task of a {draft.model.family} job, but "
            f"job {ref.job!r} ({upstream.model.name}) runs on {upstream.model.family}"
        )
    if isinstance(ref, OutputRef):
        most = upstream.model.max_results(upstream.input)
        if most is not None and ref.index > most:
            return (
                f"{where}: index {ref.index} of job {ref.job!r}, but its model "
                f"{upstream.model.name!r} yields at most {most} result(s)"
            )
        slot = draft.slots.get(key)
        made = upstream.model.media
        if slot is not None and slot.media and made and made != slot.media:
            return (
                f"{where} takes {a_media(slot.media)} but job {ref.job!r} "
                f"({upstream.model.name}) makes {a_media(made)}"
            )
    else:
        wanted, made = task_media(draft.model, key), upstream.model.media
        if wanted and made and made != wanted:
            return (
                f"{where} takes the task of a model that makes {a_media(wanted)} (its model "
                f"file says so), but job {ref.job!r} ({upstream.model.name}) makes "
                f"{a_media(made)}"
            )
    return None


def _cycles(
    located: Located, edges: Mapping[str, list[tuple[str, Ref]]], by_id: Mapping[str, Draft]
) -> list[Issue]:
    """One issue per reference cycle, as `a -> b -> c -> a` with each reference's line."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    issues: list[Issue] = []
    for start in edges:
        if state.get(start):
            continue
        # Iterative depth-first search: a chain of 10,000 jobs must not hit the recursion limit.
        path: list[tuple[str, int]] = [(start, 0)]
        via: list[Ref] = []
        state[start] = 1
        while path:
            node, i = path[-1]
            out = edges.get(node, [])
            if i == len(out):
                state[node] = 2
                path.pop()
                if via:
                    via.pop()
                continue
            path[-1] = (node, i + 1)
            nxt, ref = out[i]
            if state.get(nxt) == 1:
                names = [n for n, _ in path]
                first = names.index(nxt)
                cycle = names[first:]
                refs = [*via[first:], ref]
                steps = " -> ".join(
                    f"{n} (line {r.line})" for n, r in zip(cycle, refs, strict=True)
                )
                top = refs[0]
                issues.append(
                    Issue(
                        located.source,
                        top.line,
                        top.col,
                        f"{by_id[cycle[0]].name}: jobs take each other's results in a cycle: "
                        f"{steps} -> {nxt}; no job of it can ever start",
                    )
                )
            elif not state.get(nxt):
                state[nxt] = 1
                path.append((nxt, 0))
                via.append(ref)
    return issues


def _order(drafts: list[Draft], edges: Mapping[str, list[tuple[str, Ref]]]) -> list[str]:
    """Job ids with every upstream before its downstream (the graph has no cycle)."""
    done: set[str] = set()
    order: list[str] = []
    for draft in drafts:
        stack = [draft.id]
        while stack:
            node = stack[-1]
            if node in done:
                stack.pop()
                continue
            waiting = [up for up, _ in edges.get(node, ()) if up not in done]
            if waiting:
                stack.extend(waiting)
                continue
            done.add(node)
            order.append(node)
            stack.pop()
    return order


def _job(
    draft: Draft, fp: str, edges: Collection[tuple[str, Ref]], by_id: Mapping[str, Draft]
) -> Job:
    upstream = tuple(dict.fromkeys(up for up, _ in edges))
    files = tuple(r for _, r in draft.refs if isinstance(r, FileRef))
    sources = tuple(
        (name, by_id[r.job].model.name)
        for name, r in draft.refs
        if isinstance(r, TaskRef) and r.job in by_id
    )
    return Job(
        id=draft.id,
        model=draft.model.name,
        input=draft.input,
        callback_url=draft.callback_url,
        fingerprint=fp,
        line=draft.line,
        credits=draft.model.price_for(draft.input),
        media=draft.model.media,
        paused=draft.model.paused,
        download_mb=draft.model.max_download_mb,
        files=files,
        upstream=upstream,
        family=draft.model.family,
        sources=sources,
    )
