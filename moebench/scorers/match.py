"""The plain text scorers: `exact`, `contains` and `regex`.

All three take `case_sensitive` (default False) and `normalize_whitespace` (default True:
runs of spaces/newlines become one space and the ends are trimmed); a case may override
either. `contains` accepts a list (every item must appear; score = the share found).
`regex` uses the task's `pattern` or else the case's `expected` as the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from moebench.errors import SuiteError
from moebench.scorers import describes, scorer
from moebench.types import Score

_PARAMS = ("case_sensitive", "normalize_whitespace")
_ANSWER_CHARS = 80


def _option(name: str, case: Mapping[str, Any], params: Mapping[str, Any], default: bool) -> bool:
    return bool(case.get(name, params.get(name, default)))


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


@scorer("exact", params=_PARAMS, reads=("expected", *_PARAMS))
def exact(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Passed iff the answer equals `expected` (after the normalisation the params ask for)."""
    if case.get("expected") is None:
        return _no_expected()
    want = _norm(str(case["expected"]), case, params)
    ok = _norm(text, case, params) == want
    return Score(float(ok), ok, _short(text), "equal" if ok else f"not equal to {want!r}")


@scorer("contains", params=_PARAMS, reads=("expected", *_PARAMS))
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
def _compile(pattern: str, flags: int) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as err:
        raise SuiteError(f"scorer regex: invalid pattern {pattern!r} ({err}) — fix the task's "
                         "`pattern` (or the case's `expected`)") from None


@scorer("regex", params=(*_PARAMS, "pattern"), reads=("expected", *_PARAMS))
def regex(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Passed iff `pattern` (or the case's `expected`) matches somewhere in the answer."""
    pattern = params.get("pattern") or case.get("expected")
    if pattern is None:
        return Score(0.0, False, "", "no `pattern` parameter and no `expected` in the case")
    flags = re.MULTILINE | (0 if _option("case_sensitive", case, params, False) else re.I)
    if _option("normalize_whitespace", case, params, True):
        text = " ".join(text.split())
    m = _compile(str(pattern), flags).search(text)
    if not m:
        return Score(0.0, False, "", f"no match for /{pattern}/")
    # the first capture group that took part in the match, else the whole match
    answer = next((g for g in m.groups() if g is not None), m.group(0))
    return Score(1.0, True, _short(answer), f"matched {m.group(0)[:60]!r}")
