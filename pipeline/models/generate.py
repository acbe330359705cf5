"""`python3 dev.py catalog`: Kie's docs snapshot + the reviewed overlay -> `schemas/models/`.

The bundled catalog is generated, not written: every createTask page of the snapshot
(`schemas/kie-docs/en-<date>/openapi_endpoint_catalog.json`) becomes one model file through
the conversion `models pull` uses (`docs.model_file` -> `openapi.model_file`), its source the
page's URL and the snapshot's date; the models of Kie's own-endpoint families (Veo 3.1,
Runway, Flux Kontext, GPT-4o Image, Suno) come from their operations (`familydocs`). What the
snapshot cannot say is a hand edit, kept in `schemas/catalog-overlay.json` (see
MODEL_FORMAT.md), each entry with its reason:
- `document`: the slug of a page whose schema copies another model's (`model.enum`);
- `file`: a whole model file the snapshot lacks (the paused Sora 2 models);
- `status`: a pause; `price`: a price rule (`{rule, prose, source}`); `patch`: a JSON merge
  patch (RFC 7386) on the file, for a limit Kie states only in prose.
A page and its translation declare the same model; the English page is read. Output is
deterministic (key order as built, `required` sorted, one format), so a rerun on the same
input rewrites nothing, and `tests/catalog/test_generate.py` fails when the committed
catalog is not what this generates.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.models import docs, familydocs
from pipeline.models.pull import dump
from pipeline.models.registry import ModelFileError, model_from_data
from pipeline.paths import schemas_dir

SNAPSHOT = "en-2026-08-19"
OVERLAY = "catalog-overlay.json"
CHANGES = ("document", "file", "status", "price", "patch")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}$")


class GenerateError(Exception):
    """The snapshot or the overlay cannot be turned into a catalog; nothing is written."""


def snapshot_date(snapshot: Path) -> str:
    match = _DATE.search(snapshot.name)
    if not match:
        raise GenerateError(f"{snapshot}: a snapshot folder is named <lang>-YYYY-MM-DD")
    return match.group(0)


def check_overlay(overlay: Any) -> list[dict[str, Any]]:
    """The overlay's entries, each checked: a model, a reason, exactly one change."""
    entries = overlay.get("entries") if isinstance(overlay, dict) else None
    if not isinstance(entries, list):
        raise GenerateError('the overlay must be {"entries": [...]}')
    for index, entry in enumerate(entries):
        where = f"overlay entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise GenerateError(f"{where}: needs a `model`")
        if not str(entry.get("reason") or "").strip():
            raise GenerateError(f"{where} ({entry['model']}): needs a `reason`")
        changes = [k for k in CHANGES if k in entry]
        unknown = sorted(set(entry) - {"model", "reason", *CHANGES})
        if len(changes) != 1 or unknown:
            raise GenerateError(
                f"{where} ({entry['model']}): exactly one of {', '.join(CHANGES)} "
                f"(found {changes or 'none'}{', unknown ' + str(unknown) if unknown else ''})"
            )
    return entries


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _sorted_required(node: Any) -> Any:
    """`required` is a set: sorted, so that the files do not depend on the page's order."""
    if isinstance(node, list):
        return [_sorted_required(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        k: sorted(v) if k == "required" and isinstance(v, list) else _sorted_required(v)
        for k, v in node.items()
    }


def pages(catalog: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """The page each model is read from: English first, then by URL; a second page of the
    same language claiming a model is an error the overlay must settle (`document`)."""
    jobs = [e for e in catalog.get("endpoints") or () if docs.is_job(e)]
    jobs.sort(key=lambda e: (docs.language(e) != "en", str(e.get("source_url"))))
    chosen: dict[str, Any] = {}
    for entry in jobs:
        url = str(entry.get("source_url"))
        name = renames.get(url) or docs.declared_model(entry)
        first = chosen.get(name)
        if first is None:
            chosen[name] = entry
        elif docs.language(first) == docs.language(entry):
            raise GenerateError(
                f"{url} and {first.get('source_url')} both declare {name}: add an overlay "
                "`document` entry naming the model one of them really documents"
            )
    return chosen


def build(snapshot: Path, overlay: Any) -> dict[str, dict[str, Any]]:
    """Every model file of the catalog, by model name (pure: reads, never writes)."""
    entries = check_overlay(overlay)
    fetched = snapshot_date(snapshot)
    catalog = json.loads((snapshot / "openapi_endpoint_catalog.json").read_text("utf-8"))
    renames = {e["document"]: e["model"] for e in entries if "document" in e}
    files: dict[str, dict[str, Any]] = {}
    for name, entry in pages(catalog, renames).items():
        url = str(entry.get("source_url"))
        data = docs.model_file(entry, fetched=fetched, model=renames.get(url))
        data["source"]["snapshot"] = f"schemas/kie-docs/{snapshot.name}"
        files[name] = data
    for name, data in familydocs.model_files(catalog, fetched=fetched).items():
        if name in files:
            raise GenerateError(f"{name} is both a createTask page and a family model")
        data["source"]["snapshot"] = f"schemas/kie-docs/{snapshot.name}"
        files[name] = data
    unused = set(renames.values()) - set(files)
    if unused:
        raise GenerateError(f"overlay `document` entries match no page: {sorted(unused)}")
    for entry in entries:
        name = entry["model"]
        if "file" in entry:
            if name in files:
                raise GenerateError(f"overlay `file` for {name}, which the snapshot has")
            files[name] = entry["file"]
        elif "document" in entry:
            continue
        elif name not in files:
            raise GenerateError(f"overlay entry for {name}, which is not in the catalog")
        elif "status" in entry or "price" in entry:
            key = "status" if "status" in entry else "price"
            files[name] = {**files[name], key: entry[key]}
        else:
            files[name] = merge_patch(files[name], entry["patch"])
    for name, data in files.items():
        try:
            model_from_data(data, Path(f"{name}.json"), name)  # refuse a broken file early
        except ModelFileError as exc:
            raise GenerateError(str(exc)) from None
    return {name: _sorted_required(files[name]) for name in sorted(files)}


def write(files: Mapping[str, Mapping[str, Any]], out: Path) -> list[str]:
    """Write the catalog into `out` (stale model files removed); the paths that changed."""
    changed: list[str] = []
    wanted = {out / f"{name}.json": dump(data) for name, data in files.items()}
    for path in sorted(out.rglob("*.json")) if out.is_dir() else ():
        if path not in wanted:
            path.unlink()
            changed.append(f"removed {path}")
    for path, text in wanted.items():
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(str(path))
    for folder in sorted((p for p in out.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    here = schemas_dir()
    parser = argparse.ArgumentParser(prog="dev.py catalog", description=__doc__.split("\n")[0])
    parser.add_argument("--snapshot", type=Path, default=here / "kie-docs" / SNAPSHOT)
    parser.add_argument("--overlay", type=Path, default=here / OVERLAY)
    parser.add_argument("--out", type=Path, default=here / "models")
    args = parser.parse_args(argv)
    try:
        overlay = json.loads(args.overlay.read_text(encoding="utf-8"))
        files = build(args.snapshot, overlay)
    except (OSError, ValueError, GenerateError, PipelineError) as exc:
        print(f"dev.py catalog: {exc}", file=sys.stderr)
        return 1
    changed = write(files, args.out)
    print("\n".join(changed) if changed else "no change", file=sys.stderr)
    print(f"{len(files)} models in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
