"""The `exact`, `contains` and `regex` scorers with their whitespace/case parameters."""

from __future__ import annotations

import pytest

from moebench.errors import ScorerError
from moebench.scorers import registry, score_text
from moebench.scorers.match import regex
from moebench.types import ScorerSpec

CASES = [
    # (id, scorer, params, output, case, score, passed)
    ("exact-equal", "exact", {}, "Paris", {"expected": "Paris"}, 1.0, True),
    ("exact-case-insensitive-default", "exact", {}, "PARIS", {"expected": "paris"}, 1.0, True),
    ("exact-case-sensitive", "exact", {"case_sensitive": True}, "PARIS", {"expected": "paris"},
     0.0, False),
    ("exact-whitespace-normalised", "exact", {}, "  New   York\n", {"expected": "New York"}, 1.0,
     True),
    ("exact-whitespace-kept", "exact", {"normalize_whitespace": False}, "New  York",
     {"expected": "New York"}, 0.0, False),
    ("exact-chatter-fails", "exact", {}, "The answer is Paris.", {"expected": "Paris"}, 0.0,
     False),
    ("exact-number-expected", "exact", {}, "42", {"expected": 42}, 1.0, True),
    ("exact-case-override", "exact", {}, "PARIS", {"expected": "paris", "case_sensitive": True},
     0.0, False),
    ("exact-no-expected", "exact", {}, "Paris", {}, 0.0, False),
    ("contains-in-chatter", "contains", {}, "Sure! The capital of France is **Paris**.",
     {"expected": "paris"}, 1.0, True),
    ("contains-missing", "contains", {}, "The capital is Lyon.", {"expected": "Paris"}, 0.0, False),
    ("contains-list-all", "contains", {}, "Red, green and blue.",
     {"expected": ["red", "green", "blue"]}, 1.0, True),
    ("contains-list-partial", "contains", {}, "Red and blue.",
     {"expected": ["red", "green", "blue"]}, 2 / 3, False),
    ("contains-case-sensitive", "contains", {"case_sensitive": True}, "PARIS",
     {"expected": "Paris"}, 0.0, False),
    ("contains-across-newline", "contains", {}, "New\nYork is big", {"expected": "new york"},
     1.0, True),
    ("contains-newline-kept", "contains", {"normalize_whitespace": False}, "New\nYork",
     {"expected": "new york"}, 0.0, False),
    ("contains-refusal", "contains", {}, "I'm sorry, I can't answer that.", {"expected": "Paris"},
     0.0, False),
    ("regex-param", "regex", {"pattern": r"\bParis\b"}, "It's Paris.", {}, 1.0, True),
    ("regex-expected-as-pattern", "regex", {}, "Answer: B", {"expected": r"answer:\s*b\b"}, 1.0,
     True),
    ("regex-case-sensitive", "regex", {"pattern": "paris", "case_sensitive": True}, "PARIS", {},
     0.0, False),
    ("regex-no-match", "regex", {"pattern": r"^\d+$"}, "forty-two", {}, 0.0, False),
    ("regex-multiline-anchors", "regex", {"pattern": r"^ANSWER: [A-D]$",
                                          "normalize_whitespace": False},
     "Reasoning...\nANSWER: C\nThanks", {}, 1.0, True),
    ("regex-json-shape", "regex", {"pattern": r'\{"name":\s*"\w+"\}'},
     'Here you go:\n```json\n{"name": "Ada"}\n```', {}, 1.0, True),
    ("regex-choice-letter", "regex", {"pattern": r"answer is \(?([A-D])\)?"},
     "After eliminating options, the answer is (B).", {}, 1.0, True),
    ("regex-no-pattern", "regex", {}, "anything", {}, 0.0, False),
    ("regex-markdown-bold", "regex", {"pattern": r"\*\*\d+\*\*"}, "Total: **42**", {}, 1.0, True),
]


@pytest.mark.parametrize(("name", "params", "output", "case", "score", "passed"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_match_cases(name: str, params: dict, output: str, case: dict, score: float,
                     passed: bool) -> None:
    result = score_text(ScorerSpec(name, params), output, case)
    assert result.passed is passed, result
    assert result.score == pytest.approx(score)


def test_regex_answer_is_first_group() -> None:
    result = regex("the answer is (B).", {}, {"pattern": r"answer is \(?([A-D])\)?"})
    assert result.answer == "B"


def test_invalid_regex_is_a_scorer_error_naming_the_fix() -> None:
    with pytest.raises(ScorerError, match="invalid pattern.*fix the task"):
        regex("x", {}, {"pattern": "(unclosed"})


def test_answer_is_short() -> None:
    result = score_text(ScorerSpec("contains"), "word " * 100, {"expected": "word"})
    assert len(result.answer) <= 80


@pytest.mark.parametrize("name", ["exact", "contains", "regex"])
def test_declared_params(name: str) -> None:
    assert {"case_sensitive", "normalize_whitespace"} <= set(registry()[name].params)
