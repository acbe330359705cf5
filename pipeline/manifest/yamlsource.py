"""Safe YAML reading that remembers where every value came from.

PyYAML's composer gives nodes with marks; we build plain Python values from those nodes
ourselves so that we can (1) keep a map from each value's path to its line and column,
(2) reject duplicate keys, which PyYAML silently overwrites, and (3) bound the work done on
aliases, so a "billion laughs" document is refused in milliseconds instead of eating memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.manifest.errors import Issue, ManifestError

MAX_BYTES = 10 * 1024 * 1024
# Values built from the node graph, aliases expanded. A real manifest of 10,000 jobs has
# around 100,000; an alias bomb has billions.
MAX_VALUES = 1_000_000
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    """A YAML document as Python values plus the position of every path in it."""

    source: str
    data: Any
    # path -> (line, column) of the value; for mapping entries also of the key.
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Line and column of `path`, falling back to its nearest known parent."""
        table = self.keys if key and path in self.keys else self.values
        probe = tuple(path)
        while probe not in table and probe:
            probe = probe[:-1]
            table = self.values
        return table.get(probe, (1, 1))

    def issue(self, path: Path_, message: str, *, key: bool = False) -> Issue:
        line, col = self.where(path, key=key)
        return Issue(self.source, line, col, message)


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def check_size(path: str, size: int) -> None:
    if size > MAX_BYTES:
        raise ManifestError([Issue(path, 1, 1, f"file is {size / 1e6:.1f} MB, over the "
                                   f"{MAX_BYTES // (1024 * 1024)} MB limit for a manifest")])


def read_text(path: str, raw: bytes) -> str:
    """Decode a manifest's bytes as UTF-8, or explain where it is not."""
    check_size(path, len(raw))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ManifestError([Issue(path, line, col, f"file is not valid UTF-8 (byte "
                                   f"0x{raw[exc.start]:02x}); save it as UTF-8")]) from None


def _yaml_error(path: str, exc: yaml.MarkedYAMLError) -> ManifestError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    if "\\t" in problem or "'\\t'" in str(exc) or "tab" in problem:
        problem += " (YAML does not allow tabs for indentation: use spaces)"
    context = f" ({exc.context})" if exc.context and "\\t" not in problem else ""
    return ManifestError([Issue(path, line, col, f"YAML syntax error: {problem}{context}")])


def _expanded_size(root: Node) -> int:
    """How many values building `root` would make, aliases expanded, without expanding them.

    Memoised per node, so a billion-laughs document costs a few dozen steps. Raises on a
    recursive alias (`&a [*a]`), which would otherwise never finish building.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ValueError("recursive YAML alias")
        if depth > MAX_DEPTH:
            raise ValueError("document is nested too deeply")
        open_nodes.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        open_nodes.discard(key)
        sizes[key] = min(total, MAX_VALUES + 1)
        return sizes[key]

    return size(root, 0)


class _Builder:
    def __init__(self, located: Located, loader: yaml.SafeLoader) -> None:
        self.located = located
        self.loader = loader
        self.count = 0
        self.issues: list[Issue] = []

    def build(self, node: Node, path: Path_, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_VALUES or depth > MAX_DEPTH:
            line, col = _pos(node)
            raise ManifestError([Issue(self.located.source, line, col,
                                       "document expands to too many values through YAML "
                                       "aliases or nesting (an alias bomb?); refused")])
        self.located.values.setdefault(path, _pos(node))
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node, deep=True)
        if isinstance(node, SequenceNode):
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        raise ManifestError([self.located.issue(path, "unsupported YAML node")])

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<:` merge keys
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line, col = _pos(key_node)
            if not isinstance(key_node, ScalarNode):
                self.issues.append(Issue(self.located.source, line, col,
                                         "mapping keys must be plain strings"))
                continue
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                first = self.located.keys[(*path, key)]
                self.issues.append(Issue(self.located.source, line, col,
                                         f"duplicate key {key!r} (first defined at line "
                                         f"{first[0]})"))
                continue
            self.located.keys[(*path, key)] = (line, col)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result


def load_yaml(path: str, text: str) -> Located:
    """Parse one YAML document into values with positions; raise ManifestError on any problem."""
    located = Located(source=path, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ManifestError([Issue(path, 1, 1, "manifest is empty: expected a mapping with "
                                       "'version: 1' and 'jobs'")])
        try:
            if _expanded_size(node) > MAX_VALUES:
                raise ValueError("document expands to too many values through YAML aliases "
                                 "(an alias bomb?)")
        except ValueError as exc:
            line, col = _pos(node)
            raise ManifestError([Issue(path, line, col, f"{exc}; refused")]) from None
        builder = _Builder(located, loader)
        located.data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(path, exc) from None
    except yaml.YAMLError as exc:
        raise ManifestError([Issue(path, 1, 1, f"YAML error: {exc}")]) from None
    except RecursionError:
        raise ManifestError([Issue(path, 1, 1, "document is nested too deeply")]) from None
    finally:
        loader.dispose()
    if builder.issues:
        raise ManifestError(builder.issues)
    return located
