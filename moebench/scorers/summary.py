"""The `summary` scorer: sentence budget, required mentions and ROUGE-L against a reference.

passed iff the summary has at most `max_sentences` sentences (pysbd, which does not split on
"Dr." or "3.5") and mentions every `must_mention` term (case-insensitive whole words; a plural
or possessive counts). score = ROUGE-L F1 (rouge-score's, stemmed; computed by `_rouge` without
importing nltk) against `reference` when the case gives one, else 1/0 as passed. A leading
"Summary:" label and markdown are ignored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from pydantic import Field

from moebench.scorers.schema import CaseFields, ScorerParams
from moebench.scorers import describes, scorer
from moebench.scorers import _rouge
from moebench.scorers._memo import DiskMemo
from moebench.types import Score

_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:\*\*|__)?\s*(?:one[- ]sentence\s+)?summary\s*(?:\*\*|__)?"
                    r"\s*[:\-–—]?\s*(?:\*\*|__)?\s*", re.I)
_MARKDOWN = re.compile(r"\*\*|__|`|^\s*(?:#+|>|[-*•]|\d+[.)])\s+", re.M)
_TERMINATOR = re.compile(r"[.!?…](?=\s+\S)")
#: longer than this (after cleaning) is no summary: failed without segmenting it
MAX_CHARS = 4_000
#: pysbd slows down with the square of the abbreviations it weighs ("Dr. " × 2,000: 1 s), so
#: an answer with far more sentence ends than allowed fails without being segmented
_SPARE_ENDS = 10


@cache
def _segmenter() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


_MEMO = DiskMemo("summary", [__file__, _rouge.__file__], ("rouge-score", "nltk", "pysbd"))


def rouge_l(reference: str, text: str) -> float:
    """ROUGE-L F-measure of `text` against `reference` (kept between processes: a pair already
    scored needs no stemmer loaded)."""
    key = "rouge:" + hashlib.sha256(f"{reference}\0{text}".encode()).hexdigest()
    return _MEMO.get(key, lambda: _rouge.rouge_l_f(reference, text))


def sentence_count(text: str) -> int:
    """`len(sentences(text))`, kept between processes (pysbd takes ms per text)."""
    if not text or not _TERMINATOR.search(text):
        return len(sentences(text))  # no pysbd needed
    key = "sentences:" + hashlib.sha256(text.encode()).hexdigest()
    return _MEMO.get(key, lambda: len(sentences(text)))


def clean(text: str) -> str:
    """The summary text without a leading label, markdown or wrapping quotes."""
    text = _MARKDOWN.sub("", _LABEL.sub("", text.strip(), count=1))
    return " ".join(text.split()).strip(" \"“”")


def sentences(text: str) -> list[str]:
    """The sentences of `text` (one quick check before asking pysbd)."""
    if not text:
        return []
    if not _TERMINATOR.search(text):
        return [text]  # no terminator before the end: one sentence, no need to segment
    # processor().process() is segment() without its char-span pass, which compiles one
    # regex per sentence and doubled the cost; we only need the sentences.
    found = _segmenter().processor(text).process()
    return [s.strip() for s in found if s.strip(" \n\"“”'")]


@lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.split()]
    last = words[-1]
    if term.lower().endswith("y") and len(term) > 2:  # company → companies
        last = f"(?:{last}|{re.escape(term.split()[-1][:-1])}ies)"
    body = r"[\s-]+".join([*words[:-1], last])
    return re.compile(rf"(?<![\w-]){body}(?:e?s|['’]s|s['’]|['’])?(?![\w])", re.I)


def missing_terms(text: str, terms: list[str]) -> list[str]:
    """The `terms` that `text` does not mention."""
    return [t for t in terms if t.strip() and not _term_pattern(t.strip()).search(text)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _fail_reasons(count: int, limit: int, missing: list[str]) -> list[str]:
    reasons = ["empty"] if count == 0 else []
    if count > limit:
        reasons.append(f"{count} sentences > max {limit}")
    if missing:
        reasons.append(f"{len(missing)} term{'s' if len(missing) != 1 else ''} not mentioned")
    return reasons


@describes("summary")
def describe_expected(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """`≤ 1 sentence; mentions: Kalo, kite; ROUGE-L vs reference`."""
    limit = int(case.get("max_sentences", params.get("max_sentences", 1)))
    parts = [f"≤ {limit} sentence{'s' if limit != 1 else ''}"]
    terms = _as_list(case.get("must_mention"))
    if terms:
        parts.append("mentions: " + ", ".join(terms))
    if case.get("reference"):
        parts.append("score ROUGE-L vs reference")
    return "; ".join(parts)


class SummaryParams(ScorerParams):
    """Parameters of `summary`."""

    max_sentences: int = Field(default=1, ge=1, le=100, description="most sentences allowed")


class SummaryCase(CaseFields):
    """Case fields `summary` reads."""

    must_mention: list[str] = Field(default=[], description="terms the summary must mention")
    reference: str | None = Field(default=None, description="reference summary for ROUGE-L")
    max_sentences: int | None = Field(default=None, ge=1, le=100,
                                      description="overrides the parameter for this case")


def _too_long(body: str) -> Score:
    return Score(0.0, False, body[:80], f"{len(body):,} characters: far longer than a summary "
                                         f"(limit {MAX_CHARS:,}); not segmented")


@scorer("summary", params=SummaryParams, case=SummaryCase)
def summary(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Passed iff ≤ max_sentences sentences and every must_mention term; score ROUGE-L."""
    limit = int(case.get("max_sentences") or params.get("max_sentences") or 1)
    body = clean(text)
    if len(body) > MAX_CHARS:
        return _too_long(body)
    ends = len(_TERMINATOR.findall(body))
    if ends > 3 * limit + _SPARE_ENDS:
        return Score(0.0, False, body[:80], f"{ends} sentence ends (max {limit} sentences); "
                                             "not segmented")
    count = sentence_count(body)
    missing = missing_terms(body, _as_list(case.get("must_mention")))
    passed = 0 < count <= limit and not missing
    notes = [f"{count} sentence{'s' if count != 1 else ''} (max {limit})"]
    if missing:
        notes.append("missing: " + ", ".join(missing))
    if not passed:
        notes.append("fail: " + ", ".join(_fail_reasons(count, limit, missing)))
    reference = case.get("reference")
    if reference and body:
        score = rouge_l(str(reference), body)
        notes.append(f"ROUGE-L {score:.2f}")
    else:
        score = float(passed)
    return Score(score, passed, body[:80], "; ".join(notes))
