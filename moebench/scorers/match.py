"""The plain text scorers: `exact`, `contains` and `regex`.

All three take `case_sensitive` (default False) and `normalize_whitespace` (default True:
runs of spaces/newlines become one space and the ends are trimmed); a case may override
either. `contains` accepts a list (every item must appear; score = the share found).
`regex` uses the task's `pattern` or else the case's `expected` as the pattern.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import regex as re
from pydantic import Field, field_validator, model_validator

from moebench.errors import ScorerError
from moebench.scorers.schema import CaseFields, MatchParams
from moebench.scorers import describes, scorer
from moebench.types import Score

_ANSWER_CHARS = 80
#: a user's pattern may backtrack exponentially: the `regex` module stops it after this long
REGEX_TIMEOUT_S = 0.05
Expected = str | bool | int | float


class MatchCase(CaseFields):
    """Case fields `exact` reads; a case may override the normalisation."""

    expected: Expected = Field(description="the answer")
    case_sensitive: bool | None = Field(default=None, description="overrides the parameter")
    normalize_whitespace: bool | None = Field(default=None, description="overrides the parameter")


class ContainsCase(MatchCase):
    """Case fields `contains` reads."""

    expected: Expected | list[Expected] = Field(
        description="text that must appear (a list: every item)")


class RegexParams(MatchParams):
    """Parameters of `regex`."""

    pattern: str | None = Field(default=None, description="the pattern (Python syntax); "
                                                          "default: the case's `expected`")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return None if value is None else check_pattern(value)


class RegexCase(MatchCase):
    """Case fields `regex` reads (`expected` is the pattern when no parameter gives one)."""

    expected: str | None = Field(default=None, description="the pattern, when the task has "
                                                           "no `pattern` parameter")
    pattern: str | None = Field(default=None, description="the task's parameter")

    @model_validator(mode="after")
    def _has_pattern(self) -> RegexCase:
        if self.pattern is None:
            if self.expected is None:
                raise ValueError("scorer 'regex' needs a `pattern` parameter or the case's "
                                 "`expected:`")
            check_pattern(self.expected)
        return self


def check_pattern(pattern: str) -> str:
    """`pattern` if it compiles, else ValueError naming the problem."""
    try:
        _compile(pattern, 0)
    except ScorerError as error:
        raise ValueError(str(error)) from None
    return pattern


def _option(name: str, case: Mapping[str, Any], params: Mapping[str, Any], default: bool) -> bool:
    value = case.get(name)
    return bool(params.get(name, default) if value is None else value)


def _norm(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    if _option("normalize_whitespace", case, params, True):
        text = " ".join(text.split())
    if not _option("case_sensitive", case, params, False):
        text = text.casefold()
    return text


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ANSWER_CHARS else text[: _ANSWER_CHARS - 1] + "…"


def _no_expected() -> Score:
    return Score(0.0, False, "", "the case has no `expected` value")


def _flags(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    return " (case-sensitive)" if _option("case_sensitive", case, params, False) else ""


@describes("exact")
def describe_exact(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """`exactly 'Paris'`."""
    return f"exactly {str(case.get('expected'))!r}{_flags(case, params)}"


@describes("contains")
def describe_contains(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """`contains: a, b`."""
    expected = case.get("expected")
    items = [str(i) for i in expected] if isinstance(expected, list | tuple) else [str(expected)]
    return "contains: " + ", ".join(items) + _flags(case, params)


@describes("regex")
def describe_regex(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """`matches /\\d+ km/`."""
    return f"matches /{params.get('pattern') or case.get('expected')}/{_flags(case, params)}"


@scorer("exact", params=MatchParams, case=MatchCase)
def exact(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Passed iff the answer equals `expected` (after the normalisation the params ask for)."""
    if case.get("expected") is None:
        return _no_expected()
    want = _norm(str(case["expected"]), case, params)
    ok = _norm(text, case, params) == want
    return Score(float(ok), ok, _short(text), "equal" if ok else f"not equal to {want[:60]!r}")


@scorer("contains", params=MatchParams, case=ContainsCase)
def contains(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Passed iff the answer contains `expected` (every item when it is a list)."""
    expected = case.get("expected")
    if expected is None:
        return _no_expected()
    items = [str(i) for i in expected] if isinstance(expected, list | tuple) else [str(expected)]
    hay = _norm(text, case, params)
    missing = [i for i in items if _norm(i, case, params) not in hay]
    found = len(items) - len(missing)
    why = f"found {found}/{len(items)}" + (f"; missing: {', '.join(missing)}" if missing else "")
    return Score(found / max(1, len(items)), not missing, _short(text), why)


@lru_cache(maxsize=1024)
def _compile(pattern: str, flags: int) -> Any:
    try:
        return re.compile(pattern, flags | re.VERSION0)
    except (re.error, ValueError, OverflowError, RecursionError) as err:
        raise ScorerError(f"invalid pattern {pattern[:80]!r} ({err}) — fix the "
                          "task's `pattern` (or the case's `expected`)") from None


@scorer("regex", params=RegexParams, case=RegexCase)
def regex(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Passed iff `pattern` (or the case's `expected`) matches somewhere in the answer."""
    pattern = params.get("pattern") or case.get("expected")
    if pattern is None:
        return Score(0.0, False, "", "no `pattern` parameter and no `expected` in the case")
    flags = re.MULTILINE | (0 if _option("case_sensitive", case, params, False) else re.I)
    if _option("normalize_whitespace", case, params, True):
        text = " ".join(text.split())
    try:
        m = _compile(str(pattern), flags).search(text, timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        raise ScorerError(f"/{str(pattern)[:60]}/ took over "
                          f"{REGEX_TIMEOUT_S * 1000:.0f} ms on {len(text):,} characters — "
                          "simplify the pattern (nested repeats backtrack)") from None
    if not m:
        return Score(0.0, False, "", f"no match for /{pattern}/")
    # the first capture group that took part in the match, else the whole match
    answer = next((g for g in m.groups() if g is not None), m.group(0))
    return Score(1.0, True, _short(answer), f"matched {m.group(0)[:60]!r}")
