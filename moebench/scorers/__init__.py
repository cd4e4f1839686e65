"""Scorer registry: a name → a function that grades one completion against its case.

A scorer is `fn(text, case, params) -> Score` where `text` is the completion with any
`<think>…</think>` trace already removed, `case` the case's fields (question, expected, ...)
and `params` the task's scorer parameters. Register with `@scorer("name", params=(...))`;
the suite loader validates names and parameter keys against this registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moebench.types import Score, ScorerSpec

ScoreFn = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Score]
#: `fn(case, params) -> str`: what the scorer expects, in words ("6 words × 9 letters")
DescribeFn = Callable[[Mapping[str, Any], Mapping[str, Any]], str]

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class ScorerEntry:
    """A registered scorer: its function, accepted parameters and the case fields it reads."""

    name: str
    fn: ScoreFn
    params: tuple[str, ...]
    reads: tuple[str, ...]
    description: str


_REGISTRY: dict[str, ScorerEntry] = {}
_DESCRIBERS: dict[str, DescribeFn] = {}


def scorer(
    name: str, *, params: tuple[str, ...] = (), reads: tuple[str, ...] = (), description: str = ""
) -> Callable[[ScoreFn], ScoreFn]:
    """Register a scorer function under `name`."""

    def register(fn: ScoreFn) -> ScoreFn:
        _REGISTRY[name] = ScorerEntry(name, fn, params, reads, description or (fn.__doc__ or ""))
        return fn

    return register


def describes(name: str) -> Callable[[DescribeFn], DescribeFn]:
    """Register `fn(case, params) -> str` saying what scorer `name` expects of a case."""

    def register(fn: DescribeFn) -> DescribeFn:
        _DESCRIBERS[name] = fn
        return fn

    return register


_LOADED: list[bool] = []


def _load_builtin() -> None:
    # Imported for their @scorer side effect; kept here so the registry is always complete
    # (a flag, not "is the registry empty": importing one scorer module first must not hide
    # the others).
    from moebench.scorers import entities, judge, match, number, summary, word_length  # noqa: F401

    _LOADED.append(True)


def registry() -> dict[str, ScorerEntry]:
    """All registered scorers by name."""
    if not _LOADED:
        _load_builtin()
    return _REGISTRY


def strip_think(text: str) -> str:
    """Remove `<think>…</think>` reasoning traces (an unclosed one runs to the end)."""
    return _THINK.sub("", text).strip()


def score_text(spec: ScorerSpec, text: str, case: Mapping[str, Any]) -> Score:
    """Grade `text` (raw model output) for `case` with the scorer `spec` names."""
    return score_stripped(spec, strip_think(text), case)


def score_stripped(spec: ScorerSpec, stripped: str, case: Mapping[str, Any]) -> Score:
    """Grade output whose `<think>` trace `strip_think` has already removed."""
    entry = registry()[spec.name]
    result = entry.fn(stripped, case, spec.params)
    score = min(1.0, max(0.0, float(result.score)))
    explanation = result.explanation
    if score >= 1.0 and not result.passed and "fail" not in explanation:
        # A full score with a fail verdict must say why (the pass rule is stricter).
        explanation = f"{explanation}; fail: the pass rule is stricter than the score".lstrip("; ")
    return Score(score, result.passed, result.answer, explanation)


def describe_expected(spec: ScorerSpec, case: Mapping[str, Any]) -> str:
    """What the scorer `spec` names expects of `case`, in one line ('' when unknown).

    Shown beside each sample (samples CSV, HTML, `moebench show`), also for scorers whose
    case has no `expected` value (word_length: `6 words × 9 letters`).
    """
    registry()
    describe = _DESCRIBERS.get(spec.name)
    if describe is None:
        expected = case.get("expected")
        return "" if expected is None else str(expected)
    try:
        return describe(case, spec.params)
    except (TypeError, ValueError, KeyError, AttributeError):
        return ""  # a malformed case still gets scored; its description stays empty
