"""Fuzz: every scorer on generated outputs gives a score in [0, 1] or a ScorerError.

Outputs mix answer-like fragments with hostile ones: numbers of thousands of digits,
NaN/inf, nested and unclosed `<think>`, deep brackets, JSON with 400-digit numbers,
`Unit: 1/0`, lone surrogates, and outputs repeated up to 1 MB. Each example is one output
graded by every scorer: `EXAMPLES` outputs × 7 scorers = 7,000 scorer calls (drawing an
example costs hypothesis more than most scorer calls, so each output serves all scorers).
Fixed budget, derandomized.
"""

from __future__ import annotations

import math
import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moebench.errors import ScorerError
from moebench.scorers import registry, score_text
from moebench.types import ScorerSpec

#: outputs per run; MOEBENCH_FUZZ_EXAMPLES=5000 for a longer campaign
EXAMPLES = int(os.environ.get("MOEBENCH_FUZZ_EXAMPLES", "1000"))

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

FRAGMENTS = [
    "The answer is 42.", "#### 42", "\\boxed{42}", "Final answer: $1,234.50", "NaN", "inf",
    "-inf", "1e999", "1" + "0" * 5000, "9" * 400, "<think>", "</think>", "<think>x</think>",
    "Value: 5, Unit: 1/0", "km/", "5 km/", '[{"value": ' + "9" * 400 + ', "unit": "km"}]',
    "[" * 3000, "{" * 500, "\ud800", "\udfff 5 km", "1. apple\n2. mango\n3. lemon", "Paris",
    "France", "thirty thousand people", "two and a half", "1.5 million", "| 5 | km |",
    "Dr. Smith went home. He slept.", "\\frac{1}{0}", "5/0", "$18", "25%", "0" * 3000,
    "two " * 200, "\x00\x01", "\t\r\n", "ok\r=1+2", "½ ⅓ ٣ ๓", "一二三", "<<4*2=8>>",
]


def _pool() -> list[str]:
    """The fragments plus seeded random numbers, floats and unicode (cheap to draw from)."""
    rng = random.Random(17)
    pool = list(FRAGMENTS)
    pool += [str(rng.randint(-10**6, 10**6)) for _ in range(60)]
    pool += [repr(rng.uniform(-1e6, 1e6)) for _ in range(30)]
    pool += ["".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 12)))
             for _ in range(60)]
    return pool


POOL = _pool()
#: an output: up to 12 pool pieces joined by spaces, newlines or nothing, plus free text
SHORT = st.tuples(st.lists(st.integers(0, len(POOL) - 1), max_size=12),
                  st.sampled_from([" ", "\n", "", ", "]), st.text(max_size=8)).map(
    lambda t: t[1].join(POOL[i] for i in t[0]) + t[2])


def _maybe_huge(short: str, dice: int, size: int) -> str:
    """1 in 100 outputs: the short one repeated up to `size` (≤ 1 MB) characters."""
    if dice or not short:
        return short
    return (short * (size // len(short) + 1))[:size]


#: (one_of over weighted branches cost more to draw than the scorers took to run)
OUTPUTS = st.builds(_maybe_huge, SHORT, st.integers(0, 99), st.integers(1_000, 1_000_000))


def test_every_builtin_scorer_is_fuzzed() -> None:
    assert set(CASES) <= set(registry())


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(OUTPUTS)
def test_scorers_give_a_bounded_score_or_a_scorer_error(output: str) -> None:
    for name, (case, params) in CASES.items():
        try:
            score = score_text(ScorerSpec(name, params), output, case)
        except ScorerError as error:
            assert str(error) and "\n" not in str(error)
            continue
        assert math.isfinite(score.score) and 0.0 <= score.score <= 1.0, (name, score)
        assert isinstance(score.passed, bool)
