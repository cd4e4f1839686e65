"""The `number` scorer on realistic model outputs: markers, last number, formats, words."""

from __future__ import annotations

import pytest

from moebench.scorers import registry, score_text
from moebench.scorers.number import number
from moebench.types import ScorerSpec

GSM8K = (
    "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4, so she sells "
    "16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18"
)
MIXTRAL = (
    "Let's think step-by-step.\n\n1. Roger starts with 5 tennis balls.\n2. He buys 2 cans, each "
    "with 3 balls: 2 × 3 = 6 balls.\n3. Total: 5 + 6 = 11.\n\nThe answer is 11."
)
DEEPSEEK = (
    "<think>\nOkay, so 48 clips in April, half as many in May, that's 24. 48+24=72. Wait, let "
    "me double check... yes 72.\n</think>\n\nNatalia sold 48 clips in April and 24 in May.\n\n"
    "**Final Answer**\n\\[\n\\boxed{72}\n\\]"
)
DBRX = (
    "To find the total cost, we multiply the price per item by the quantity.\n\n"
    "- Price per item: $12.50\n- Quantity: 96\n\n$12.50 × 96 = $1,200.00\n\n"
    "So, the total cost is **$1,200**. Let me know if you have any other questions!"
)

CASES = [
    # (id, output, expected, passed)
    ("gsm8k-marker", GSM8K, 18, True),
    ("gsm8k-calculator-ignored", "She makes 9 * 2 = $<<9*2=18>>18 every day.", 18, True),
    ("answer-is", MIXTRAL, 11, True),
    ("boxed-after-think", DEEPSEEK, 72, True),
    ("currency-thousands-chatter", DBRX, 1200, True),
    ("final-answer-colon", "Step 1: 7 * 8 = 56\nStep 2: 56 + 4 = 60\nFinal answer: 60", 60, True),
    ("final-answer-bold", "**Final Answer:** $1,200.00", 1200, True),
    ("decimal-equals-int", "The answer is 12.00", 12, True),
    ("a-colon-line", "Q: how many?\nA: 42", 42, True),
    ("negative", "The temperature fell to -5 degrees overnight.", -5, True),
    ("negative-unicode-minus", "Final answer: −7", -7, True),
    ("percent", "The discount works out to 25%.", 25, True),
    ("percent-as-fraction", "The discount works out to 25%.", 0.25, True),
    ("fraction", "Each child gets 3/4 of a pie.", 0.75, True),
    ("latex-frac", "So the probability is $\\frac{1}{4}$.", 0.25, True),
    ("words-thirty-thousand", "The answer is thirty thousand.", 30000, True),
    ("words-and-a-half", "She ends up with two and a half pies.", 2.5, True),
    ("words-one-after-marker", "The answer is one.", 1, True),
    ("scale-million", "Revenue was $1.5 million.", 1_500_000, True),
    ("marker-beats-later-number", "The answer is 14. (Checked in 2 ways.)", 14, True),
    ("heading-not-gsm-marker", "#### Step 1\n3 + 4 = 7\n#### Step 2\n7 * 2 = 14", 14, True),
    ("ordinal-not-number", "So 8 apples remain after the 3rd day.", 8, True),
    ("wrong-answer", "The answer is 17.", 18, False),
    ("refusal", "I'm sorry, but I can't help with that.", 3, False),
    ("empty", "", 3, False),
    ("tolerance-tiny", "The answer is 1000001.", 1_000_000, False),
    ("expected-as-text", "Total: 1,200 dollars", "1,200", True),
    ("last-number-words", "3 + 9 = 12, so she has twelve apples.", 12, True),
    ("one-stays-word-in-chatter", "Each one gets 3 cookies. Hope this helps one of you!", 3, True),
    ("answer-on-next-line", "Therefore, the answer is:\n\n**18** dollars", 18, True),
    ("thousands-no-marker", "The population grew to 30,000 by 2020, then to 31,500.", 31500, True),
]


@pytest.mark.parametrize(("output", "expected", "passed"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_number_cases(output: str, expected: object, passed: bool) -> None:
    score = score_text(ScorerSpec("number"), output, {"expected": expected})
    assert score.passed is passed, score
    assert score.score == (1.0 if passed else 0.0)


def test_ordinal_answer_is_the_count_not_the_day() -> None:
    assert number("So 8 apples remain after the 3rd day.", {"expected": 8}, {}).answer == "8"


def test_tolerance_param_and_case_override() -> None:
    text = "The answer is 0.333"
    assert not number(text, {"expected": "1/3"}, {}).passed
    assert number(text, {"expected": "1/3"}, {"tolerance": 0.01}).passed
    assert number(text, {"expected": "1/3", "tolerance": 0.01}, {}).passed


def test_answer_and_explanation_are_short_and_say_why() -> None:
    score = number(GSM8K, {"expected": 18}, {})
    assert score.answer == "18"
    assert "####" in score.explanation


def test_expected_not_a_number_is_explained() -> None:
    score = number("42", {"expected": "forty-two-ish?"}, {})
    assert not score.passed and "not a number" in score.explanation


def test_registered_with_params() -> None:
    entry = registry()["number"]
    assert "tolerance" in entry.params and "expected" in entry.reads
