"""Scorer registry: a name → a function that grades one completion against its case.

A scorer is `fn(text, case, params) -> Score` where `text` is the completion with any
`<think>…</think>` trace already removed, `case` the case's fields (question, expected, ...)
and `params` the task's scorer parameters. Register with
`@scorer("name", params=ParamsModel, case=CaseModel, window=N)` (models from
`moebench.scorers.schema`); the suite loader validates parameters and case fields against
those models when it reads a suite.

Scoring is bounded and never crashes a run: a scorer sees at most the last `window`
characters of the output (a final answer sits at the end; the cut is noted in the
explanation), lone surrogates are replaced, and any exception becomes a `ScorerError`
(`ScorerFailed`, alias `ScorerError`) that the runner stores as the sample's error with the output kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from moebench.errors import ScorerError
from moebench.scorers.schema import CaseFields, NoFields, NoParams, ScorerParams, untyped
from moebench.types import Score, ScorerSpec

ScoreFn = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Score]
#: `fn(case, params) -> str`: what the scorer expects, in words ("6 words × 9 letters")
DescribeFn = Callable[[Mapping[str, Any], Mapping[str, Any]], str]

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
#: default tail a scorer sees (characters); scorers that need less or more say so
DEFAULT_WINDOW = 65_536


@dataclass(frozen=True)
class ScorerEntry:
    """A registered scorer: its function, typed parameters and the case fields it reads."""

    name: str
    fn: ScoreFn
    params_model: type[ScorerParams]
    case_model: type[CaseFields]
    description: str
    #: the scorer sees at most the last `window` characters of the output
    window: int = DEFAULT_WINDOW

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the accepted parameters."""
        return tuple(self.params_model.model_fields)

    @property
    def reads(self) -> tuple[str, ...]:
        """Names of the case fields this scorer reads."""
        return tuple(self.case_model.model_fields)


_REGISTRY: dict[str, ScorerEntry] = {}
_DESCRIBERS: dict[str, DescribeFn] = {}


def scorer(
    name: str, *, params: type[ScorerParams] | tuple[str, ...] = NoParams,
    case: type[CaseFields] = NoFields, reads: tuple[str, ...] = (),
    window: int = DEFAULT_WINDOW, description: str = "",
) -> Callable[[ScoreFn], ScoreFn]:
    """Register a scorer function under `name` with its parameter and case-field models.

    The older form `params=("a", "b"), reads=("c",)` (names, untyped) still works: it
    becomes models whose fields take any value, so typos are still caught at load.
    """
    params_model = untyped(f"{name}_params", ScorerParams, params) \
        if isinstance(params, tuple) else params
    case_model = untyped(f"{name}_case", CaseFields, reads) if reads else case

    def register(fn: ScoreFn) -> ScoreFn:
        doc = description or (fn.__doc__ or "").strip()
        _REGISTRY[name] = ScorerEntry(name, fn, params_model, case_model, doc, window)
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


def _clean(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a broken stream
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def score_stripped(spec: ScorerSpec, stripped: str, case: Mapping[str, Any]) -> Score:
    """Grade output whose `<think>` trace `strip_think` has already removed.

    Returns a score in [0, 1]; raises only `ScorerError`.
    """
    entry = registry().get(spec.name)
    if entry is None:
        raise ScorerError("no such scorer — run `moebench suites validate`")
    text = _clean(stripped)
    cut = len(text) > entry.window
    if cut:
        text = text[-entry.window:]
    try:
        result = entry.fn(text, case, spec.params)
        value = float(result.score)
    except ScorerError:
        raise
    except Exception as error:  # noqa: BLE001 - any scorer failure is one error row, not a crash
        message = " ".join(str(error).split())[:200] or type(error).__name__
        raise ScorerError(message) from error
    if not math.isfinite(value):
        raise ScorerError(f"gave a non-finite score ({value})")
    score, explanation = min(1.0, max(0.0, value)), result.explanation
    if score >= 1.0 and not result.passed and "fail" not in explanation:
        # A full score with a fail verdict must say why (the pass rule is stricter).
        explanation = f"{explanation}; fail: the pass rule is stricter than the score".lstrip("; ")
    result = Score(score, bool(result.passed), result.answer, explanation)
    if cut:
        note = f" (scored the last {entry.window:,} of {len(stripped):,} characters)"
        result = replace(result, explanation=result.explanation + note)
    return result


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
