"""Fuzz: every scorer on generated outputs gives a score in [0, 1] or a ScorerError.

Outputs mix answer-like fragments with hostile ones: numbers of thousands of digits,
NaN/inf, nested and unclosed `<think>`, deep brackets, JSON with 400-digit numbers,
`Unit: 1/0`, lone surrogates, and outputs repeated up to 1 MB. Each example is one
(scorer, output) call: `EXAMPLES` calls, several hundred per scorer. Fixed budget,
derandomized.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moebench.errors import ScorerError
from moebench.scorers import registry, score_text
from moebench.types import ScorerSpec

EXAMPLES = 5_000

#: a valid case (and parameters) per built-in scorer
CASES = {
    "number": ({"expected": 42}, {}),
    "entities": ({"expected": [{"value": 5, "unit": "km"}, {"value": 18, "unit": "USD"}]}, {}),
    "summary": ({"must_mention": ["cat"], "reference": "The cat sat on the mat."},
                {"max_sentences": 2}),
    "word_length": ({"count": 3, "letters": 5}, {}),
    "exact": ({"expected": "Paris"}, {}),
    "contains": ({"expected": ["Paris", "France"]}, {"case_sensitive": True}),
    "regex": ({}, {"pattern": r"\b(\d+)\s*km\b"}),
}

FRAGMENTS = st.sampled_from([
    "The answer is 42.", "#### 42", "\\boxed{42}", "Final answer: $1,234.50", "NaN", "inf",
    "-inf", "1e999", "1" + "0" * 5000, "9" * 400, "<think>", "</think>", "<think>x</think>",
    "Value: 5, Unit: 1/0", "km/", "5 km/", '[{"value": ' + "9" * 400 + ', "unit": "km"}]',
    "[" * 3000, "{" * 500, "\ud800", "\udfff 5 km", "1. apple\n2. mango\n3. lemon", "Paris",
    "France", "thirty thousand people", "two and a half", "1.5 million", "| 5 | km |",
    "Dr. Smith went home. He slept.", "\\frac{1}{0}", "5/0", "$18", "25%", "0" * 3000,
    "two " * 200, "\x00\x01", "\t\r\n", "ok\r=1+2", "½ ⅓ ٣ ๓", "一二三", "<<4*2=8>>",
])
PIECE = st.one_of(FRAGMENTS, st.text(max_size=40), st.integers().map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr))
SHORT = st.lists(PIECE, max_size=12).map(" ".join)
#: a short output repeated up to ~1 MB (1 in 50: these take the longest)
HUGE = st.tuples(SHORT.filter(bool), st.integers(1_000, 1_000_000)).map(
    lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]])
OUTPUTS = st.one_of(*[SHORT] * 49, HUGE)


def test_every_builtin_scorer_is_fuzzed() -> None:
    assert set(CASES) <= set(registry())


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(CASES)), OUTPUTS)
def test_scorers_give_a_bounded_score_or_a_scorer_error(name: str, output: str) -> None:
    case, params = CASES[name]
    try:
        score = score_text(ScorerSpec(name, params), output, case)
    except ScorerError as error:
        assert str(error).startswith(f"scorer {name}: ")
        return
    assert math.isfinite(score.score) and 0.0 <= score.score <= 1.0, (name, score)
    assert isinstance(score.passed, bool)
