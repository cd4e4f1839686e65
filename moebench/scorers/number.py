"""The `number` scorer: extract the final numeric answer and compare it with `expected`.

An explicit marker wins (`\\boxed{}`, `####`, "final answer", "answer is", a line starting
"A:"); otherwise the last number in the text counts. Calculator annotations `<<4*2=8>>` are
ignored, number words become digits first, and values compare with a small relative tolerance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from moebench.scorers.schema import CaseFields, FiniteFloat, ScorerParams
from moebench.scorers import describes, scorer
from moebench.scorers._numbers import (
    Number,
    format_number,
    normalize,
    numbers,
    parse_number,
    strip_calculator,
)
from moebench.types import Score

#: default relative tolerance for non-integers (0.1 + 0.2 == 0.3); whole numbers compare
#: exactly unless a `tolerance` is given, so 1,000,001 != 1,000,000
DEFAULT_TOLERANCE = 1e-6
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
#: answer markers, strongest first; the text after the last match of a marker is searched
_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("####", re.compile(r"####\s*(?=[-−$€£¥]?\s?\d)")),  # not a "#### Step 2" heading
    ("final answer", re.compile(r"final\s+answer\s*(?:is|:|=|would\s+be|will\s+be)?", re.I)),
    ("answer is", re.compile(
        r"\banswer\s*(?:is|:|=|would\s+be|will\s+be|should\s+be)|\bthe\s+result\s+is", re.I)),
    ("A:", re.compile(r"^\s*A\s*:", re.M)),
)
_EMPHASIS = re.compile(r"\*+|`+|(?<!\w)_+|_+(?!\w)")
#: how far after a marker the answer may be (it sits on the marker's line or the next)
_SPAN = 160


def _markdown_free(text: str) -> str:
    # Emphasis sits between markers and numbers ("**Answer:** **18**").
    return _EMPHASIS.sub(" ", text)


def _first_number(span: str) -> Number | None:
    return next(numbers(normalize(span, threshold=0)), None)


def _boxed(text: str) -> Number | None:
    found = _BOXED.findall(text)
    return _first_number(found[-1]) if found else None


def _after_marker(text: str) -> tuple[str, Number] | None:
    for name, pattern in _MARKERS:
        hits = list(pattern.finditer(text))
        for hit in reversed(hits):
            span = text[hit.end(): hit.end() + _SPAN]
            found = _first_number(span.split("\n\n")[0])
            if found is not None:
                return name, found
    return None


def extract(text: str) -> tuple[Number | None, str]:
    """The final numeric answer in `text` and how it was found."""
    text = strip_calculator(text)
    boxed = _boxed(text)
    if boxed is not None:
        return boxed, "\\boxed{}"
    text = _markdown_free(text)
    marked = _after_marker(text)
    if marked is not None:
        return marked[1], f"after marker '{marked[0]}'"
    found = list(numbers(normalize(text)))
    return (found[-1], "last number") if found else (None, "no number found")


def _matches(got: Number, expected: float, tolerance: float | None) -> bool:
    candidates = [got.value] + ([got.value / 100] if got.percent else [])
    if tolerance is None:
        if all(v.is_integer() for v in (got.value, expected)):
            return got.value == expected
        tolerance = DEFAULT_TOLERANCE
    return any(math.isclose(c, expected, rel_tol=tolerance, abs_tol=tolerance * 1e-3)
               for c in candidates)


@describes("number")
def describe_expected(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """`18` (or `0.3 ± 1% relative` when the case sets a tolerance)."""
    expected = parse_number(case.get("expected"))
    if expected is None:
        return f"{case.get('expected')!r} (not a number)"
    tolerance = case.get("tolerance", params.get("tolerance"))
    return format_number(expected) + (f" ± {float(tolerance):g} relative" if tolerance else "")


#: the final answer sits at the end; number words make normalising ~13 µs a character
WINDOW = 4_096


class NumberParams(ScorerParams):
    """Parameters of `number`."""

    tolerance: FiniteFloat | None = Field(
        default=None, ge=0, description="relative tolerance (default: whole numbers exact, "
                                        "others 1e-6)")


class NumberCase(CaseFields):
    """Case fields `number` reads."""

    expected: FiniteFloat = Field(description="the answer, a number")
    tolerance: FiniteFloat | None = Field(default=None, ge=0,
                                          description="overrides the parameter for this case")


@scorer("number", params=NumberParams, case=NumberCase, window=WINDOW)
def number(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Score 1 iff the final numeric answer equals `expected` (relative `tolerance`)."""
    expected = parse_number(case.get("expected"))
    if expected is None:
        return Score(0.0, False, "", f"expected {case.get('expected')!r} is not a number")
    raw_tolerance = case.get("tolerance", params.get("tolerance"))
    tolerance = None if raw_tolerance is None else abs(float(raw_tolerance))
    got, how = extract(text)
    if got is None:
        return Score(0.0, False, "", "no number found")
    ok = _matches(got, expected, tolerance)
    verdict = "equals" if ok else "differs from"
    answer = format_number(got.value) + ("%" if got.percent else "")
    return Score(float(ok), ok, answer,
                 f"{answer} ({how}) {verdict} expected {format_number(expected)}")
