"""Safe YAML reading that remembers where every value came from.

PyYAML's composer gives nodes with marks; we build plain Python values from those nodes
ourselves so that we can (1) keep a map from each value's path to its line and column,
(2) reject duplicate keys, which PyYAML silently overwrites, (3) bound the work done on
aliases, so a "billion laughs" document is refused in milliseconds instead of eating memory,
and (4) produce only JSON values (str, int, float, bool, None, list, dict): the manifest
describes JSON requests, and a date or a byte string has no place in one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.manifest.errors import Issue, ManifestError, short
from pipeline.manifest.hints import PROSE_KEY, comment_warning
from pipeline.manifest.yamlerrors import LINE_BREAK, clamp, reader_error, text_end, yaml_error

MAX_BYTES = 10 * 1024 * 1024
# Values built from the node graph, aliases expanded. A real manifest of 10,000 jobs has
# around 100,000; an alias bomb has billions.
MAX_VALUES = 1_000_000
# Characters of scalar text, aliases expanded: a few aliases of a large string can be as
# costly as a bomb of small ones. Without aliases the text is at most the file's size.
MAX_CHARS = 2 * MAX_BYTES
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]

_T = "tag:yaml.org,2002:"
# Scalars kept as their source text. A timestamp (`2024-01-01`) is text for a manifest: JSON
# has no dates. `<<` and `=` are only special as mapping keys.
_TEXT_TAGS = frozenset({_T + "str", _T + "timestamp", _T + "value", _T + "merge"})
_VALUE_TAGS = frozenset({_T + "int", _T + "float", _T + "bool", _T + "null"})
_MERGE = _T + "merge"

# libyaml's parser when PyYAML was built with it (the usual wheels): about 7 times faster
# than the pure-Python one on big manifests. Both give the same nodes and marks; messages
# differ a little, so the tests match on fragments both share.
# (CSafeLoader is not a SafeLoader subclass, but offers the same methods used here.)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Located:
    """A YAML document as Python values plus the position of every path in it."""

    source: str
    data: Any
    # path -> (line, column) of the value; for mapping entries also of the key.
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    # Problems found while reading that leave the document readable (a duplicate key keeps
    # its first value), reported with everything else; and warnings.
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

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


def _tag(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


def check_size(path: str, size: int) -> None:
    if size > MAX_BYTES:
        raise ManifestError(
            [
                Issue(
                    path,
                    1,
                    1,
                    f"file is {size / 1e6:.1f} MB, over the "
                    f"{MAX_BYTES // (1024 * 1024)} MB limit for a manifest",
                )
            ]
        )


def read_text(path: str, raw: bytes) -> str:
    """Decode a manifest's bytes as UTF-8, or explain where it is not."""
    check_size(path, len(raw))
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ManifestError([Issue(path, 1, 1, "file is UTF-16 text; save it as UTF-8")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ManifestError(
            [
                Issue(
                    path,
                    line,
                    col,
                    f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8",
                )
            ]
        ) from None


def _expanded_size(root: Node) -> tuple[int, int]:
    """(values, characters) building `root` would make, aliases expanded, without expanding.

    Memoised per node, so a billion-laughs document costs a few dozen steps. Raises on a
    recursive alias (`&a [*a]`), which would otherwise never finish building.
    """
    sizes: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()

    def size(node: Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ValueError("recursive YAML alias (a node that contains itself)")
        if depth > MAX_DEPTH:
            raise ValueError(f"document is nested more than {MAX_DEPTH} levels deep")
        open_nodes.add(key)
        values, chars = 1, 0
        if isinstance(node, ScalarNode):
            chars = len(node.value)
        else:
            children = (
                node.value
                if isinstance(node, SequenceNode)
                else [n for pair in node.value for n in pair]
            )
            for child in children:
                v, c = size(child, depth + 1)
                values, chars = values + v, chars + c
        open_nodes.discard(key)
        sizes[key] = min(values, MAX_VALUES + 1), min(chars, MAX_CHARS + 1)
        return sizes[key]

    return size(root, 0)


class _Builder:
    def __init__(self, located: Located, loader: yaml.SafeLoader, text: str) -> None:
        self.located = located
        self.loader = loader
        self.text = text
        self.end = text_end(text)
        self.count = 0
        self.issues: list[Issue] = []
        self._lines: list[str] | None = None

    def pos(self, node: Node) -> tuple[int, int]:
        # An empty value at the very end of a file starts past its last line: clamp it.
        return clamp(self.end, *_pos(node))

    def add(self, node: Node, message: str) -> None:
        line, col = self.pos(node)
        self.issues.append(Issue(self.located.source, line, col, message))

    def build(self, node: Node, path: Path_, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_VALUES or depth > MAX_DEPTH:
            line, col = self.pos(node)
            problem = (
                f"document is nested more than {MAX_DEPTH} levels deep"
                if depth > MAX_DEPTH
                else f"document has more than {MAX_VALUES:,} values"
            )
            raise ManifestError([Issue(self.located.source, line, col, f"{problem}; refused")])
        self.located.values.setdefault(path, self.pos(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _T + "seq":
                self.add(node, f"unsupported YAML tag {_tag(node.tag)!r}: use a plain list")
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if node.tag != _T + "map":
                self.add(node, f"unsupported YAML tag {_tag(node.tag)!r}: use a plain mapping")
            return self._mapping(node, path, depth)
        raise ManifestError([self.located.issue(path, "unsupported YAML node")])

    def _scalar(self, node: ScalarNode, path: Path_ = ()) -> Any:
        if node.tag in _TEXT_TAGS:
            return self._text(node)
        if node.tag not in _VALUE_TAGS:
            self.add(
                node,
                f"unsupported YAML tag {_tag(node.tag)!r}: manifests hold only "
                "strings, numbers, booleans, lists and mappings",
            )
            return None
        try:
            value = self.loader.construct_object(node, deep=True)
        except ValueError:  # e.g. an integer of 5,000 digits (Python's int() refuses it)
            self.add(node, f"number {short(node.value, 40)} is too large")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.add(node, f"{node.value} is not a finite number (JSON has no NaN or infinity)")
            return None
        if isinstance(value, int | float) and ":" in node.value:
            # YAML 1.1 reads 16:9 as a base-60 number (969): never what a manifest means.
            key = next((str(p) for p in reversed(path) if isinstance(p, str)), "value")
            self.add(
                node,
                f"{key}: {node.value} reads as the number {value} in YAML (base 60, as "
                f'1:30 is 90): write {key}: "{node.value}" (quoted)',
            )
            return node.value
        return value

    def _text(self, node: ScalarNode) -> str:
        # The Python parser lets "\ud800" through; such text cannot be encoded as UTF-8.
        if _SURROGATE.search(node.value):
            self.add(
                node, "text holds an invalid Unicode escape (a lone surrogate such as \\ud800)"
            )
            return ""
        return str(node.value)

    def _key(self, node: Node) -> str | None:
        """A mapping key as text, exactly as written (`5`, `yes` and `~` stay as typed)."""
        if not isinstance(node, ScalarNode):
            self.add(node, "mapping keys must be plain strings")
            return None
        if node.tag not in _TEXT_TAGS | _VALUE_TAGS:
            self.add(node, f"unsupported YAML tag {_tag(node.tag)!r} on a mapping key")
            return None
        return self._text(node)

    def _pairs(self, node: MappingNode) -> list[tuple[str, Node, Node]]:
        """The entries of a mapping: its own keys, then the ones `<<` merges in.

        YAML merge keys: the mapping's own keys win over merged ones, and an earlier merge
        source wins over a later one; only the mapping's own keys may not repeat.
        """
        entries: list[tuple[str, Node, Node]] = []
        seen: dict[str, Node] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = self._key(key_node)
            if key is None:
                continue
            if key in seen:
                # Not fatal: the first value is kept, so the rest of the file is still checked.
                line, col = self.pos(key_node)
                first = self.pos(seen[key])[0]
                self.located.issues.append(
                    Issue(
                        self.located.source,
                        line,
                        col,
                        f"duplicate key {short(key)} (first defined at line {first}); "
                        "remove one of them",
                    )
                )
                continue
            seen[key] = key_node
            entries.append((key, key_node, value_node))
        for value_node in merges:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.add(source, "'<<' (merge) takes a mapping or a list of mappings")
                    continue
                for key, key_node, merged in self._pairs(source):
                    if key not in seen:
                        seen[key] = key_node
                        entries.append((key, key_node, merged))
        return entries

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, key_node, value_node in self._pairs(node):
            self.located.keys[(*path, key)] = self.pos(key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
            if (
                isinstance(value_node, ScalarNode)
                and not value_node.style  # plain: None (Python parser) or "" (libyaml)
                and PROSE_KEY.search(key)
                and isinstance(result[key], str)
            ):
                self._comment_after(key, result[key], value_node)
        return result

    def _comment_after(self, key: str, value: str, node: ScalarNode) -> None:
        """Warn when a `#` comment follows a plain prompt: hashtags vanish silently."""
        if self._lines is None:
            self._lines = LINE_BREAK.split(self.text)
        end = node.end_mark
        if end.line >= len(self._lines):
            return
        warning = comment_warning(key, value, self._lines[end.line][end.column :])
        if warning:
            line, col = self.pos(node)
            self.located.warnings.append(Issue(self.located.source, line, col, warning, "warning"))


def load_yaml(path: str, text: str) -> Located:
    """Parse one YAML document into values with positions; raise ManifestError on any problem."""
    located = Located(source=path, data=None)
    loader: yaml.SafeLoader | None = None
    try:
        loader = _Loader(text)  # checks every character up front: may raise
        node = loader.get_single_node()
        if node is None or (
            isinstance(node, ScalarNode) and node.tag == _T + "null" and not node.value
        ):  # nothing, or only `---`
            raise ManifestError(
                [
                    Issue(
                        path,
                        1,
                        1,
                        "manifest is empty: expected a mapping with 'version: 1' and 'jobs'",
                    )
                ]
            )
        try:
            # Without an anchor there is no alias, so nothing can expand beyond the text
            # itself; the builder still bounds values and depth. Saves a full pass.
            values, chars = _expanded_size(node) if "&" in text else (0, 0)
            if values > MAX_VALUES:
                raise ValueError(
                    f"document has more than {MAX_VALUES:,} values once YAML "
                    "aliases are expanded (an alias bomb?)"
                )
            if chars > MAX_CHARS:
                raise ValueError(
                    f"document has more than {MAX_CHARS:,} characters of text "
                    "once YAML aliases are expanded (an alias bomb?)"
                )
        except ValueError as exc:
            line, col = clamp(text_end(text), *_pos(node))
            raise ManifestError([Issue(path, line, col, f"{exc}; refused")]) from None
        builder = _Builder(located, loader, text)
        located.data = builder.build(node, ())
    except yaml.reader.ReaderError as exc:
        raise reader_error(path, text, exc) from None
    except yaml.MarkedYAMLError as exc:
        raise yaml_error(path, text, exc) from None
    except yaml.YAMLError as exc:
        raise ManifestError([Issue(path, 1, 1, f"YAML error: {exc}")]) from None
    except RecursionError:
        raise ManifestError([Issue(path, 1, 1, "document is nested too deeply")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if builder.issues:
        raise ManifestError(builder.issues)
    return located
