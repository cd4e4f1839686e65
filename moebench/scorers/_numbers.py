"""Numbers in model prose: spelled-out numbers, currency, separators, fractions, percentages.

Shared by the `number` and `entities` scorers. Spelled-out numbers ("thirty thousand",
"two point five") are turned into digits by text2num; this module only adds what it lacks
("1.5 million", "two and a half", LaTeX fractions) and then finds numeric tokens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

#: GSM8K-style calculator annotations `<<4*2=8>>`: their numbers are working, not answers.
_CALC = re.compile(r"<<[^<>\n]*>>")
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
# `(?<![\d.])`: a match starts only where a digit run starts, so a long run of digits is
# scanned once, not once per position (that was quadratic: 20 s on 10 KB of digits).
_SCALED = re.compile(
    r"(?<![\d.])(\d{1,30}(?:\.\d{1,30})?)\s*(thousand|million|billion|trillion)\b", re.I)
_HALVES = re.compile(
    r"(?<!\d)(\d{1,30})\s+and\s+(a\s+half|a\s+quarter|three\s+quarters)\b", re.I)
_HALF_VALUES = {"a half": 0.5, "a quarter": 0.25, "three quarters": 0.75}
_LATEX = (
    (re.compile(r"\\[dt]?frac\{\s*(-?\d+)\s*\}\{\s*(\d+)\s*\}"), r"\1/\2"),
    (re.compile(r"\\text\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\{,\}|\\,|\\!"), ","),  # LaTeX thousands separators: 1{,}000 / 1\,000
    (re.compile(r"\\\$"), "$"),
    (re.compile(r"\\%"), "%"),
)
#: one numeric token: sign, currency, digits with optional thousands separators and
#: decimals, optional fraction and percent; ordinals (1st, 3rd) and words (5x) excluded
NUMBER = re.compile(
    r"(?P<sign>(?<![\w)\]])[-−](?=[$€£¥]?\d))?"
    r"(?P<cur>[$€£¥])?(?P<sign2>-(?=\d))?"
    r"(?P<num>(?<![\d.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d,]\d)|(?<![\d.])\.\d+)"
    r"(?:\s?/\s?(?P<den>\d+)(?![\d/]))?"
    r"(?P<pct>\s?%|\s(?:percent|per\s?cent)\b)?"
    r"(?!st\b|nd\b|rd\b|th\b)",
    re.I,
)


@dataclass(frozen=True)
class Number:
    """A numeric token found in text, with where it was."""

    value: float
    text: str
    start: int
    end: int
    percent: bool = False
    currency: str | None = None


def _scaled(match: re.Match[str]) -> str:
    return format_number(float(match.group(1)) * _SCALES[match.group(2).lower()])


def _halves(match: re.Match[str]) -> str:
    key = " ".join(match.group(2).lower().split())
    return format_number(int(match.group(1)) + _HALF_VALUES[key])


@lru_cache(maxsize=4096)
def normalize(text: str, threshold: float = 1.5) -> str:
    """Digits for spelled-out numbers; `threshold`: isolated number words ≤ it stay words.

    The default keeps "one"/"zero" as words when alone ("each one", "zero in on") but turns
    "two" and up into digits; pass 0 for a short answer span where "one" means 1.
    """
    from text_to_num import alpha2digit

    for pattern, repl in _LATEX:
        text = pattern.sub(repl, text)
    text = _SCALED.sub(_scaled, text)
    text = alpha2digit(text, "en", threshold=threshold)
    text = _SCALED.sub(_scaled, text)  # "one point five million" → "1.5 million" → digits
    return _HALVES.sub(_halves, text)


def strip_calculator(text: str) -> str:
    """Remove `<<4*2=8>>` calculator annotations."""
    return _CALC.sub("", text)


def _value(m: re.Match[str]) -> float:
    value = float(m.group("num").replace(",", ""))
    if m.group("den"):
        den = float(m.group("den"))
        value = value / den if den else math.nan
    return -value if (m.group("sign") or m.group("sign2")) else value


def numbers(text: str) -> Iterator[Number]:
    """Every numeric token in already-normalized text, in order."""
    for m in NUMBER.finditer(text):
        yield Number(_value(m), m.group(0).strip(), m.start(), m.end(),
                     bool(m.group("pct")), m.group("cur"))


def parse_number(value: object) -> float | None:
    """A case's expected value (int, float or text like "1,200", "3/4", "$12") as a float."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond 1.8e308 (e.g. a 400-digit JSON number)
            return None
        return number if math.isfinite(number) else None
    found = list(numbers(normalize(str(value), threshold=0)))
    return found[0].value if len(found) == 1 and math.isfinite(found[0].value) else None


def format_number(value: float) -> str:
    """`12.0` → "12", `0.75` → "0.75", `1500000.0` → "1500000" (no exponent)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e18:
        return str(int(value))
    return f"{value:.10g}" if abs(value) < 1e15 else f"{value:.6e}"
