"""Which JSON Schema keywords of a catalog document a model file keeps, and how far its
conversion may go (issue 26).

A model file's `input` is evaluated against every manifest, so it may hold only what
`jsonschema` evaluates quickly and without surprises. A hostile (or broken) catalog document
could otherwise stop `validate`:
- `$dynamicRef`, `$id`, `$anchor`, `$defs` and the like reach outside the one inlined
  schema (an unresolvable reference ended in exit 70): dropped, as is every keyword not
  listed here;
- a `pattern` is a regular expression run on the user's text: one with a quantified group
  that itself repeats (`^(a+)+$`) or a back-reference backtracks exponentially (over 60 s on
  a 36-character prompt). Such patterns, and very long ones, are dropped (noted in the
  field's `$comment`); the simple ones Kie writes (`^(https?|oss)://`) are kept.
  `patternProperties` (its keys are patterns too) is dropped altogether.
"""

from __future__ import annotations

from typing import Any

from pipeline.models import prose

# Keywords whose value is a schema (or a list of schemas) to convert in turn.
SUBSCHEMA = {"items", "not", "additionalProperties", "contains", "oneOf", "anyOf", "allOf"}
SUBSCHEMA |= {"prefixItems", "if", "then", "else", "propertyNames"}
# Keywords kept as they are: all evaluated by jsonschema in time linear in the value.
PLAIN = {"type", "enum", "const", "required", "properties", "default", "format"}
PLAIN |= {"description", "title", "deprecated", "$comment"}
PLAIN |= {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
PLAIN |= {"minLength", "maxLength", "minItems", "maxItems", "uniqueItems"}
PLAIN |= {"minProperties", "maxProperties", "minContains", "maxContains", "dependentRequired"}
EXTENSIONS = {"x-media", "x-max-bytes", "x-unresolved-ref", prose.FROM_TEXT}
MAX_PATTERN = 200  # characters: the longest pattern Kie writes is under 30

PATTERN_RISK = (
    "it could make validation backtrack for minutes (nested repetition, a back-reference, "
    "or over 200 characters)"
)
PATTERN_DROPPED = f"pattern dropped: {PATTERN_RISK}"


class Overgrown(Exception):
    """A document whose schema would grow past the Budget."""


class Budget:
    """How far one conversion may go: $refs are inlined, so a small document can stand for
    an enormous schema (32 components each naming the next twice: 2^32 nodes from 8 KB),
    and a chain of 3,000 $refs or 440 nested objects for a recursion Python cannot finish.
    Both are capped far above any real model's input (the bundled ones: 340 nodes, depth 9)."""

    MAX_NODES = 20_000
    MAX_DEPTH = 48  # nested schema objects, each $ref followed counting as one more

    def __init__(self) -> None:
        self.nodes = 0

    def enter(self, depth: int) -> int:
        self.nodes += 1
        if self.nodes > self.MAX_NODES:
            raise Overgrown(
                f"the document's schema expands to more than {self.MAX_NODES:,} nodes once "
                "its $refs are inlined; no model input is that large"
            )
        if depth > self.MAX_DEPTH:
            raise Overgrown(
                f"the document's schema nests deeper than {self.MAX_DEPTH} levels (objects "
                "or $refs); no model input is that deep"
            )
        return depth + 1


def kept(key: str, value: Any) -> bool:
    """Whether `key` (with `value`) stays in a converted schema."""
    if key == "pattern":
        return isinstance(value, str) and safe_pattern(value)
    return key in PLAIN or key in SUBSCHEMA or key in EXTENSIONS


def safe_pattern(pattern: str) -> bool:
    """Whether `pattern` can be matched without catastrophic backtracking: no group that
    repeats (`*`, `+`, `{n,}`) while holding a repetition or an alternation of its own, no
    back-reference, and short. Conservative: it may drop a harmless pattern, never keep
    `^(a+)+$`, `(a|aa)*` or `(\\w+\\s?)*`."""
    if len(pattern) > MAX_PATTERN or "(?P=" in pattern:
        return False
    groups: list[bool] = []  # per open group: holds a repetition or an alternation
    inner = False  # the last closed group (or atom) held one
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 < len(pattern) and pattern[i + 1].isdigit() and pattern[i + 1] != "0":
                return False  # a back-reference
            i += 2
            inner = False
            continue
        if char == "[":  # a character class: one atom, whatever it holds
            i = _class_end(pattern, i)
            inner = False
            continue
        if char == "(":
            groups.append(False)
            inner = False
            i += _extension_length(pattern, i + 1) + 1
            continue
        elif char == ")":
            inner = groups.pop() if groups else False
            if inner and groups:
                groups[-1] = True  # the enclosing group holds a repetition too
            i += 1
            if i < len(pattern) and pattern[i] in "*+{" and inner:
                return False
            continue
        elif char in "*+{?|":
            if groups:  # `?` too: `(a?a?)+` backtracks like `(a+)+`
                groups[-1] = True
            inner = False
        i += 1
    return True


def _extension_length(pattern: str, at: int) -> int:
    """How many characters after `(` say what kind of group it is (`?:`, `?P<name>`...)."""
    if not pattern.startswith("?", at):
        return 0
    if pattern.startswith(("?P<", "?<"), at) and not pattern.startswith(("?<=", "?<!"), at):
        end = pattern.find(">", at)
        return end - at + 1 if end >= 0 else len(pattern) - at
    return 3 if pattern.startswith(("?<=", "?<!"), at) else 2


def _class_end(pattern: str, start: int) -> int:
    """The index just past the character class opening at `start`."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


# Keywords that point elsewhere: a model file's input is one inlined schema, so jsonschema
# would have to resolve them from nowhere (an error at validation time, not at load).
REFERENCES = {"$ref", "$dynamicRef", "$recursiveRef", "$id", "$anchor", "$dynamicAnchor"}
_NAMED = {"properties", "patternProperties", "$defs", "dependentSchemas"}  # name -> schema
_DATA = {"enum", "const", "default", "examples", "required", "dependentRequired"}


def unsafe(schema: Any) -> str | None:
    """Why a model file's `input` cannot be evaluated safely (a reference, a pattern that
    may backtrack without end, too many nodes), or None. Walked without recursion."""
    stack: list[Any] = [schema]
    nodes = 0
    while stack:
        node = stack.pop()
        nodes += 1
        if nodes > Budget.MAX_NODES:
            return f"`input` holds more than {Budget.MAX_NODES:,} schemas"
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key in REFERENCES:
                return f"`input` uses {key}, which a model file cannot (inline the schema)"
            if key in ("pattern", "patternProperties"):
                patterns = [value] if key == "pattern" else list(value or ())
                for pattern in patterns:
                    if not isinstance(pattern, str) or not safe_pattern(pattern):
                        return f"`input` has the pattern {str(pattern)[:60]!r}: {PATTERN_RISK}"
            if key in _NAMED and isinstance(value, dict):
                stack.extend(value.values())
            elif key not in _DATA and isinstance(value, dict | list):
                stack.append(value)
    return None
