"""Read a Kie catalog `pricingDesc` prose text into a price rule (format v2, see pricing.py).

Forms read (any case and spacing; "1,200" and "24.8" numbers):
* "N credits per second" / "credits/s" / "/sec", "$x per second" / "$x/s" -> per_second
  on the duration field; with "for 720p", "(1080 P)", "at 4K": a table on the resolution
  field (enum value matched ignoring case and spaces), default null;
* "A 5-second video costs N credits" -> a table row on the duration field ("5" or 5, as
  its schema says), or flat N for a model with no field that could set a video's length;
* per image / video / output -> per_result on the count field (num_images, n, ...), else
  flat (one result per task, as the model file's `output` assumes); per request / task /
  generation -> flat (one task, whatever it yields); "costs N credits" with no unit -> flat
  for a model without a count field (with one, per task or per image is anyone's guess);
* per 1000 / 1,000 / 1K / N characters, per character -> per_1000_chars on text/prompt.
Credits win over an approximate USD amount ("~$0.06"); an exact one must agree with them
(x200). USD alone is converted exactly (x200), never when approximate.

It never guesses: a wrong price is worse than none. The text is split into clauses (";",
sentence ends, ", ", "and", "or"). A priced clause must be read whole: any word outside a
short list of fillers ("a", "costs", "of video", ...), a stray number, two prices, a price
without a unit or cost verb, or USD that contradicts the credits voids the whole text. So
do words for conditions not modelled ("with", "extra", "varies", "from", "up to", ...),
conflicting or overlapping prices, a value the field's enum lacks, and a unit the model
has no field for. A text without a closing period may be cut ("... and 20 cred"): its last
clause is dropped when unreadable, or when the cut may have taken its unit or digits ("It
costs 40 credits", "$0.1"); once anything was dropped, an unconditioned price is not
trusted either (the lost part may have been its exception). A qualifier standing alone
("For 720p, 12 credits/s") binds the next price, unless it follows a price with a comma or
"and" ("12 credits/s for 720p and 1080p, ..."), where it could belong to either. A sentence
without a price is ignored only before the first price and only when it names nothing the
input can vary (a field, an enum value, a resolution or a length): "Kling 2.1 Master."
Rows bound to a resolution or duration go in a table whose default is null, so whatever
was dropped reads as unknown, never as a wrong price.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_NUM = r"(?<![\w.,])((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?![\w,.]?\d)"
_CREDITS = re.compile(_NUM + r"\s*credits?\b")
_APPROX = r"(~|≈|\bapprox(?:\.|imately)?\s*|\babout\s+|\baround\s+|\broughly\s+)?"
_USD = re.compile(_APPROX + rf"(?:\$\s*{_NUM}|{_NUM}\s*(?:usd|dollars?)\b|\busd\s*{_NUM})")
_CHARS = re.compile(
    r"\bper\s+(?:(one thousand|\d{1,3}(?:,\d{3})+|\d+)\s*(k\b)?\s*)?(?:char(?:acter)?s?)\b"
)
_RES = re.compile(r"(?:\b(?:for|at|in)\s+|@\s*)?(?<![\w.])(\d{3,4}\s*p|[1248]\s*k)\b")
_DUR = re.compile(
    r"(?:\b(?:for|per|a|an|each|every)\s+)*(?<![\w.])(\d+)\s*-?\s*(?:seconds?|secs?|s)\b"
    r"(?:\s+(?:videos?|clips?|generations?|outputs?))?"
)
_EVERY = r"(?:\bper|\beach|\bevery|/)\s*"
_SECOND = re.compile(r"\bper[\s-]+sec(?:ond)?\b|/\s*s(?:ec(?:ond)?)?\b|" + _EVERY + "second")
_RESULT = re.compile(_EVERY + r"(?:image|picture|photo|video|output|result|clip|song|track)s?\b")
_TASK = re.compile(_EVERY + r"(?:request|task|call|run|job|generation)s?\b")
_UNITS = (("second", _SECOND), ("result", _RESULT), ("task", _TASK))
_VERB = re.compile(r"\b(?:costs?|costing|priced?|pricing|charged?|charges|billed)\b")
_PRICEY = re.compile(r"\bcred|\$|\busd\b|\bcost|\bpric|\bcharg|\bbill")
_VOID = re.compile(  # words that make a price conditional in ways not modelled here
    r"\b(?:with|without|if|when|unless|except|plus|extra|additional|surcharge|discount"
    r"|doubled?|twice|triple|vary|varies|varying|depends?|depending|minimum|maximum"
    r"|min|max|from|starting|least|most|up\s+to|beyond|after|first|not|only|more|less"
    r"|higher|lower|cheaper)\b|\+"
)
# The delimiter is kept (a group): after ";", "." or a line end a lone qualifier starts a
# new statement; after "," or "and" it may still belong to the price before it.
_SPLIT = re.compile(r"(;|\n|(?<!approx)\.(?=\s|$)|,\s+|\s+(?:and|or|but|while|whereas)\s+)")
_STRONG = re.compile(r"[;\n.]")
# The only words a priced clause may hold besides what was read: anything else ("input
# video", "fast mode", "HD") might be a condition or another quantity.
_FILLER = frozenset(
    re.findall(
        r"\w+",
        "a an the it its this each every one is are be will cost costs costing price priced"
        " pricing charge charged charges billed of video videos image images picture pictures"
        " photo photos clip clips output outputs result results generation generations"
        " generated song songs track tracks resolution otherwise",
    )
)
_TOKEN = re.compile(r"[a-z]+|[^\sa-z;:,.()!-]")
_LENGTH = re.compile(r"duration|second|frame|length|time")  # names that may set a length
_COUNTS = ("max_images", "num_images", "n", "num_outputs", "num_videos")

Fields = Mapping[str, Mapping[str, Any]]  # the input schema's properties


@dataclass(frozen=True)
class _Clause:
    kind: str  # "second", "result", "task", "chars" or "bare" (a price with no unit)
    price: Decimal
    res: tuple[str, ...]  # resolutions it is bound to, as written ("720p")
    seconds: int | None  # the video length it is the price of ("a 5-second video")
    otherwise: bool  # "... otherwise": a default, kept only as the null it becomes


class _UnreadableError(Exception):
    """The text cannot be read safely for this model: the answer is None."""


def _dec(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def _json_num(value: Decimal) -> int | float:
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) != value:  # not exact as JSON: never round a price
        raise _UnreadableError
    return as_float


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " ; " + text[end:]
    return text


def _at_end(text: str, match: re.Match[str]) -> bool:
    return not text[match.end() :].strip()


def _usd_credits(match: re.Match[str]) -> Decimal:
    return _dec(next(g for g in match.groups()[1:] if g)) * 200


def _price(text: str, cut: bool) -> tuple[Decimal, re.Match[str]] | None:
    """The clause's one price in credits and where it stands, or None (none, two, an
    approximate USD alone, USD that contradicts the credits, or digits a cut may have
    shortened: "$0.1" of "$0.15")."""
    found = list(_CREDITS.finditer(text))
    exact = [m for m in _USD.finditer(text) if not m.group(1)]
    if len(found) > 1:
        return None
    if found:
        price = _dec(found[0].group(1))
        for usd in exact:
            if not (cut and _at_end(text, usd)) and _usd_credits(usd) != price:
                return None  # "12 credits ($0.10)": which one is it?
        return price, found[0]
    usd_all = list(_USD.finditer(text))
    if len(usd_all) != 1 or not exact or (cut and _at_end(text, exact[0])):
        return None
    return _usd_credits(exact[0]), exact[0]


def _clause(text: str, cut: bool) -> _Clause | None:
    """Read one priced clause whole, or None. `cut`: it ends a text that may be cut."""
    priced = _price(text, cut)
    if priced is None:
        return None
    price, where = priced
    rest = _cut(text, [m.span() for m in [*_CREDITS.finditer(text), *_USD.finditer(text)]])
    chars = _CHARS.search(rest)
    kind = "second"
    if chars:
        per = _dec((chars.group(1) or "1").replace("one thousand", "1000"))
        per *= 1000 if chars.group(2) else 1
        if per == 0:
            return None
        price, kind = price * 1000 / per, "chars"
        rest = _cut(rest, [chars.span()])  # offsets in `rest`, not in `text`
    res = tuple(re.sub(r"\s+", "", m.group(1)) for m in _RES.finditer(rest))
    rest = _RES.sub(" ; ", rest)
    durs = [int(m.group(1)) for m in _DUR.finditer(rest)]
    rest = _DUR.sub(" ; ", rest)
    if len(durs) > 1:
        return None
    if kind != "chars":
        units = [k for k, p in _UNITS if p.search(rest)]
        if len(units) > 1:
            return None
        kind = units[0] if units else "bare"
        rest = _SECOND.sub(" ; ", _RESULT.sub(" ; ", _TASK.sub(" ; ", rest)))
    if kind == "bare" and not durs and (not _VERB.search(rest) or (cut and _at_end(text, where))):
        return None  # "... 20 credits" may be a cut "20 credits per second"
    if durs and kind not in ("bare", "result", "task"):
        return None
    if any(token not in _FILLER for token in _TOKEN.findall(rest)):
        return None  # something unread could change the meaning
    otherwise = "otherwise" in rest.split()
    return _Clause(kind, price, res, durs[0] if durs else None, otherwise)


def _names_input(text: str, fields: Fields) -> bool:
    """Whether `text` mentions something the input can vary: a field, an enum value, a
    resolution or a length ("Pro mode." may be the condition of the price after it)."""
    if _RES.search(text) or _DUR.search(text):
        return True
    tokens = set(re.findall(r"[\w:.]+", text)) | set(re.findall(r"[a-z0-9]+", text))
    for name, schema in fields.items():
        spoken = re.escape(name.lower().replace("_", " "))
        if name.lower() in tokens or re.search(rf"\b{spoken}\b", text):
            return True
        enum = schema.get("enum") or ()
        if any(_norm(v) in tokens for v in enum if not isinstance(v, bool | dict | list)):
            return True
    return False


def _clauses(prose: str, fields: Fields) -> tuple[list[_Clause], bool]:
    """Read each clause; anything unread voids the text, bar a possibly cut last one.
    Also says whether anything was dropped."""
    parts = _SPLIT.split(prose.lower())
    pieces, links = parts[0::2], ["", *parts[1::2]]
    may_be_cut = not prose.rstrip().endswith((".", "!"))
    out: list[_Clause] = []
    dropped = False
    pending, pending_loose = "", False
    for i, (piece, link) in enumerate(zip(pieces, links, strict=True)):
        if not piece.strip():
            continue
        text, loose = (pending + " " + piece, pending_loose) if pending else (piece, False)
        pending, pending_loose = "", False
        forgive = may_be_cut and i == len(pieces) - 1
        if not _CREDITS.search(text) and not _USD.search(text):
            if not re.sub(r"[\s:,(]+", "", _DUR.sub("", _RES.sub("", text))):
                # a lone qualifier binds the next price: "For 720p, 12 credits/s"
                pending, pending_loose = text, loose or (bool(out) and not _STRONG.search(link))
            elif out or _PRICEY.search(text) or _names_input(text, fields):
                if not forgive:
                    raise _UnreadableError  # a condition or a price we cannot read
                dropped = True
            continue  # a heading such as "Kling 2.1 Master."
        parsed = None if loose else _clause(text, forgive)
        if parsed is not None:
            out.append(parsed)
        elif forgive:
            dropped = True
        else:
            raise _UnreadableError
    return out, dropped or bool(pending)


def _norm(value: Any) -> str:
    return re.sub(r"\s+", "", str(value)).lower()


def _duration_field(fields: Fields) -> str | None:
    if "duration" in fields:
        return "duration"
    named = [n for n in fields if re.search("duration|seconds", n.lower())]
    return named[0] if len(named) == 1 else None


def _duration_value(schema: Mapping[str, Any], seconds: int) -> Any:
    enum = schema.get("enum")
    if isinstance(enum, list):
        ok = (str(seconds), f"{seconds}s")
        hits = [v for v in enum if not isinstance(v, bool) and _norm(v) in ok]
        if len(hits) != 1:
            raise _UnreadableError
        return hits[0]
    kind = schema.get("type")
    if kind is None and "default" in schema:
        kind = "string" if isinstance(schema["default"], str) else "integer"
    if kind == "string":
        return str(seconds)
    if kind in ("integer", "number"):
        return seconds
    raise _UnreadableError  # "5" or 5? unknown: do not guess


def _resolution_field(fields: Fields, wanted: set[str]) -> tuple[str, dict[str, Any]]:
    names = ["resolution"] + [n for n in fields if "resolution" in n.lower()]
    names += [n for k in ("quality", "mode", "size") for n in fields if k in n.lower()]
    for name in dict.fromkeys(names):
        enum = fields.get(name, {}).get("enum")
        if isinstance(enum, list):
            by_norm = {_norm(v): v for v in enum if isinstance(v, str)}
            if wanted <= by_norm.keys():
                return name, by_norm
    raise _UnreadableError


def _body(kind: str, price: Decimal, fields: Fields, flat: str) -> dict[str, Any]:
    amount = _json_num(price)
    if kind == "second":
        field = _duration_field(fields)
        if field is None:
            raise _UnreadableError
        return {"per_second": amount, "field": field}
    if kind == "chars":
        text = next((n for n in ("text", "prompt") if n in fields), None)
        text = text or next((n for n in fields if "text" in n.lower()), None)
        if text is None:
            raise _UnreadableError
        return {"per_1000_chars": amount, "field": text}
    count = next((n for n in _COUNTS if n in fields), None)
    if kind == "bare" and count is not None:
        raise _UnreadableError  # "costs 40 credits": per task or per image?
    if kind == "result" and count is not None:
        return {"per_result": amount, "field": count}
    return {flat: amount}


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether one input could meet both `when`s (a value in common on every shared field)."""
    for name in a.keys() & b.keys():
        left = a[name] if isinstance(a[name], list) else [a[name]]
        right = b[name] if isinstance(b[name], list) else [b[name]]
        if not any(type(x) is type(y) and x == y for x in left for y in right):
            return False
    return True


def _build(clauses: list[_Clause], dropped: bool, fields: Fields) -> dict[str, Any] | None:
    dur_field = _duration_field(fields)
    wanted = {r for c in clauses for r in c.res}
    res_field, by_norm = _resolution_field(fields, wanted) if wanted else ("", {})
    plain: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for clause in clauses:
        kind = "task" if clause.seconds is not None else clause.kind  # a whole video's price
        when: dict[str, Any] = {}
        if clause.res:
            values = list(dict.fromkeys(by_norm[r] for r in clause.res))
            when[res_field] = values[0] if len(values) == 1 else values
        if clause.seconds is not None and dur_field is not None:
            when[dur_field] = _duration_value(fields[dur_field], clause.seconds)
        elif clause.seconds is not None and any(_LENGTH.search(n.lower()) for n in fields):
            raise _UnreadableError  # some field sets the length, but which one?
        if not when:
            dropped |= clause.otherwise  # a default: never the price of every input
            plain.append(_body(kind, clause.price, fields, "flat"))
            continue
        row = {"when": when, **_body(kind, clause.price, fields, "credits")}
        if any(_overlap(r["when"], when) and r != row for r in rows):
            raise _UnreadableError  # two prices for one input
        if row not in rows:
            rows.append(row)
    # unconditioned clauses beside rows are dropped: the null default stays honest
    if rows:
        return {"table": rows, "default": None}
    if dropped:
        return None  # what was dropped may have been the exception to this price
    if plain and all(p == plain[0] for p in plain):
        return plain[0]
    return None


def rule_from_prose(prose: str | None, fields: Fields) -> dict[str, Any] | None:
    """The rule `prose` states for a model with input `fields` (the input schema's
    properties), or None when the text holds no price this reader can trust."""
    if not prose or _VOID.search(prose.lower()):
        return None
    try:
        clauses, dropped = _clauses(prose, fields)
        return _build(clauses, dropped, fields)
    except _UnreadableError:
        return None
