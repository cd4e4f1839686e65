"""The `entities` scorer: F1 of extracted (value, unit) pairs against the expected list.

Pairs come from, in order of preference: JSON in the answer (a list of objects such as
`{"value": 42, "unit": "km"}`, or of `[42, "km"]` pairs), "Value: 42, Unit: km" lines,
markdown table rows, else prose, where a number followed by a unit or noun is a pair
("42 km", "$18", "25%", "thirty thousand people", "1 package"). List numbering ("1.") is
not a value. Units are compared in canonical form (`moebench.scorers._units`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from moebench.scorers.schema import CaseFields, FiniteFloat
from moebench.scorers import describes, scorer
from moebench.scorers._numbers import format_number, normalize, numbers, parse_number
from moebench.scorers._units import canonical_unit, is_noun, is_stopword
from moebench.types import Score

Pair = tuple[float, str]

_JSON_START = re.compile(r"[\[{]")
_VALUE_KEYS = ("value", "amount", "number", "quantity", "count", "val")
_UNIT_KEYS = ("unit", "units", "currency", "measure", "noun")
_VALUE_UNIT = re.compile(
    r"value\s*[:=]\s*(?P<value>[^;\n|]+?)\s*[,;|]?\s*units?\s*[:=]\s*(?P<unit>[^,;\n|}]+)", re.I)
_LIST_MARKER = re.compile(r"^(\s*)(?:\(?\d{1,3}[.)](?!\d)|[-*•+])\s+", re.M)
_UNIT_AFTER = re.compile(r"\s?(°\s?[CF]\b|[A-Za-z][A-Za-z²³/.'-]*(?:\s+[A-Za-z]+){0,2})")
_MODIFIERS = frozenset({"square", "sq", "cubic", "cu", "metric", "fluid", "fl", "light",
                        "nautical", "short", "long", "us", "imperial"})
_CURRENCY_CODE_BEFORE = re.compile(r"\b(USD|EUR|GBP|JPY|CAD|AUD|INR|CHF|CNY)\s?$", re.I)
#: most numbers read from prose (each may cost a unit look-up); an answer lists a few
_MAX_PROSE_NUMBERS = 64
#: JSON starts tried (`[` or `{`); the answer's JSON is among the first few
_JSON_TRIES = 16
#: the pairs sit in the answer's last part; pint/lemma look-ups per number bound the rest
WINDOW = 4_096


def _pairs_from_json(obj: Any) -> list[Pair]:
    if isinstance(obj, Mapping):
        value = next((obj[k] for k in obj if str(k).lower() in _VALUE_KEYS), None)
        unit = next((obj[k] for k in obj if str(k).lower() in _UNIT_KEYS), "")
        if value is not None:
            num = parse_number(value)
            return [] if num is None else [(num, canonical_unit(str(unit)))]
        return [p for v in obj.values() if isinstance(v, list | dict) for p in _pairs_from_json(v)]
    if isinstance(obj, list):
        if len(obj) == 2 and not isinstance(obj[0], list | dict) and isinstance(obj[1], str):
            num = parse_number(obj[0])
            if num is not None:
                return [(num, canonical_unit(obj[1]))]
        return [p for item in obj for p in _pairs_from_json(item)]
    return []


def _json_pairs(text: str) -> list[Pair]:
    decoder = json.JSONDecoder()
    # Each failed decode may scan to the end: try a bounded number of starts (linear time on
    # `[[[[…`), and a nesting too deep for the decoder is just not JSON here.
    starts = (m.start() for m in _JSON_START.finditer(text))
    for _, start in zip(range(_JSON_TRIES), starts):
        try:
            obj, _ = decoder.raw_decode(text, start)
            pairs = _pairs_from_json(obj)
        except (ValueError, RecursionError):
            continue
        if pairs:
            return pairs
    return []


def _value_unit_pairs(text: str) -> list[Pair]:
    pairs = []
    for m in _VALUE_UNIT.finditer(text):
        num = parse_number(m.group("value").strip(" *\"'"))
        if num is not None:
            pairs.append((num, canonical_unit(m.group("unit").strip(" *\"'."))))
    return pairs


def _table_pairs(text: str) -> list[Pair]:
    pairs = []
    for line in text.splitlines():
        cells = [c.strip(" *`") for c in line.strip().strip("|").split("|")] if "|" in line else []
        nums = [i for i, c in enumerate(cells) if parse_number(c) is not None]
        if len(cells) >= 2 and nums and nums[0] + 1 < len(cells):
            unit = cells[nums[0] + 1]
            if unit and parse_number(unit) is None and not set(unit) <= set("-: "):
                pairs.append((parse_number(cells[nums[0]]) or 0.0, canonical_unit(unit)))
    return pairs


def _unit_after(text: str, end: int) -> str | None:
    m = _UNIT_AFTER.match(text, end)
    if not m:
        return None
    words = m.group(1).split()
    # A known unit first: "miles per hour", "square feet", "km²"; else a counted noun.
    spans = [3] if len(words) == 3 and words[1].lower() == "per" else []
    spans += [2] if len(words) >= 2 and words[0].lower() in _MODIFIERS else []
    for n in (*spans, 1):
        unit = canonical_unit(" ".join(words[:n]), nouns=False)
        if unit and not (n == 3 and " " in unit):  # "mph" yes, "2 hours per day" no
            return unit
    # "1 package", "3 large boxes" (one adjective skipped); not "in 2020 grew"
    for word in (w.rstrip(".'-") for w in words[:2]):
        if not word or is_stopword(word):
            return None
        if is_noun(word):
            return canonical_unit(word)
    return None


def _prose_pairs(text: str, unitless: bool) -> list[Pair]:
    text = normalize(_LIST_MARKER.sub(r"\1", text), threshold=0)
    pairs = []
    for num in list(numbers(text))[-_MAX_PROSE_NUMBERS:]:
        if num.currency:
            pairs.append((num.value, canonical_unit(num.currency)))
        elif num.percent:
            pairs.append((num.value, canonical_unit("%")))
        elif code := _CURRENCY_CODE_BEFORE.search(text, max(0, num.start - 5), num.start):
            pairs.append((num.value, canonical_unit(code.group(1))))
        elif (unit := _unit_after(text, num.end)) is not None:
            pairs.append((num.value, unit))
        elif unitless:
            pairs.append((num.value, ""))
    return pairs


def extract_pairs(text: str, unitless: bool = False) -> list[Pair]:
    """Distinct (value, canonical unit) pairs in `text`, in order of appearance.

    `unitless`: also keep bare numbers as pairs with unit "" (when a case expects some).
    """
    for source in (_json_pairs, _value_unit_pairs, _table_pairs):
        found = source(text)
        if found:
            return list(dict.fromkeys(found))
    return list(dict.fromkeys(_prose_pairs(text, unitless)))


def _expected(items: Iterable[Any]) -> list[Pair]:
    """Expected pairs: `{value, unit}` mappings, `[value, unit]` pairs or "42 km" strings."""
    pairs: list[Pair] = []
    for item in items:
        pairs += extract_pairs(item) if isinstance(item, str) else _pairs_from_json([item])
    return list(dict.fromkeys(pairs))


def _same(a: Pair, b: Pair) -> bool:
    return a[1] == b[1] and math.isclose(a[0], b[0], rel_tol=1e-6, abs_tol=1e-9)


def _f1(pred: list[Pair], gold: list[Pair]) -> tuple[float, int]:
    unmatched = list(gold)
    hits = 0
    for p in pred:
        match = next((g for g in unmatched if _same(p, g)), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    if not pred and not gold:
        return 1.0, 0
    return 2 * hits / (len(pred) + len(gold)), hits


def _show(pairs: list[Pair]) -> str:
    return "; ".join(f"{format_number(v)} {u}".strip() for v, u in pairs) or "-"


def _raw_pair(item: Any) -> str:
    if isinstance(item, Mapping):
        value = next((item[k] for k in item if str(k).lower() in _VALUE_KEYS), "?")
        unit = next((item[k] for k in item if str(k).lower() in _UNIT_KEYS), "")
        return f"{value} {unit}".strip()
    if isinstance(item, list | tuple):
        return " ".join(str(i) for i in item)
    return str(item)


@describes("entities")
def describe_expected(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The expected pairs as written in the suite: `42 km; 30000 people`."""
    raw = case.get("expected") or []
    pairs = [_raw_pair(item) for item in (raw if isinstance(raw, list) else [raw])]
    return f"{len(pairs)} pair{'s' if len(pairs) != 1 else ''}: " + ("; ".join(pairs) or "-")


class Entity(BaseModel):
    """One expected pair."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    value: FiniteFloat
    unit: str


class EntitiesCase(CaseFields):
    """Case fields `entities` reads."""

    expected: list[Entity] = Field(description="the pairs, each {value: NUMBER, unit: TEXT}")


@scorer("entities", case=EntitiesCase, window=WINDOW)
def entities(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """F1 of predicted vs expected (value, unit) pairs; passed iff F1 == 1."""
    raw = case.get("expected") or []
    gold = _expected(raw if isinstance(raw, list) else [raw])
    pred = extract_pairs(text, unitless=any(u == "" for _, u in gold))
    f1, hits = _f1(pred, gold)
    why = f"F1 {f1:.2f}: {hits} of {len(pred)} found match {len(gold)} expected ({_show(gold)})"
    return Score(f1, f1 == 1.0, _show(pred)[:80], why)
