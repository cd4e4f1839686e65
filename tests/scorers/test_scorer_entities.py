"""The `entities` scorer: (value, unit) pairs from prose, lists, tables and JSON; F1."""

from __future__ import annotations

import pytest

from moebench.scorers import score_text
from moebench.scorers._units import canonical_unit
from moebench.scorers.entities import entities, extract_pairs
from moebench.types import ScorerSpec

TRAIL = [{"value": 42, "unit": "km"}, {"value": 30000, "unit": "people"}]
MIXTRAL = (
    "Here are the quantities mentioned in the text:\n\n1. **42 kilometres** – the length of the "
    "trail\n2. **30,000 people** – the town's population\n\nLet me know if you need anything else!"
)
DEEPSEEK_JSON = (
    "<think>The text mentions a distance and a population.</think>\n```json\n[\n  {\"value\": 42, "
    "\"unit\": \"kilometers\"},\n  {\"value\": 30000, \"unit\": \"persons\"}\n]\n```"
)
DBRX_LINES = "Value: 42, Unit: km\nValue: 30,000, Unit: people"

CASES = [
    # (id, output, expected, score)
    ("prose", "The trail is 42 km long and the town has 30,000 people.", TRAIL, 1.0),
    ("numbered-bold-list", MIXTRAL, TRAIL, 1.0),
    ("json-objects-in-fence", DEEPSEEK_JSON, TRAIL, 1.0),
    ("value-unit-lines", DBRX_LINES, TRAIL, 1.0),
    ("json-pairs", '[[42, "km"], [30000, "people"]]', TRAIL, 1.0),
    ("json-wrapped", '{"entities": [{"amount": "42", "units": "km"}, {"amount": 30000, '
     '"units": "people"}]}', TRAIL, 1.0),
    ("markdown-table", "| Value | Unit |\n|---|---|\n| 42 | km |\n| 30,000 | people |", TRAIL, 1.0),
    ("number-words", "It is forty-two kilometers long; thirty thousand people live there.",
     TRAIL, 1.0),
    ("one-missing", "The trail is 42 km long.", TRAIL, 2 / 3),
    ("one-extra", "The 42 km trail, 30,000 people and 12 bridges.", TRAIL, 0.8),
    ("wrong-unit", "The trail is 42 miles long and 30,000 people live there.", TRAIL, 0.5),
    ("wrong-value", "The trail is 24 km long and 30,000 people live there.", TRAIL, 0.5),
    ("refusal", "I'm sorry, I can't extract quantities from this text.", TRAIL, 0.0),
    ("dollars-symbol", "The ticket costs $18.", [{"value": 18, "unit": "dollars"}], 1.0),
    ("usd-code", "The ticket costs USD 18.", [{"value": 18, "unit": "$"}], 1.0),
    ("dollars-word", "The ticket costs 18 dollars.", [{"value": 18, "unit": "USD"}], 1.0),
    ("percent", "Turnout rose by 12%.", [{"value": 12, "unit": "percent"}], 1.0),
    ("per-cent-words", "Turnout rose by 12 per cent.", [{"value": 12, "unit": "%"}], 1.0),
    ("kg-synonyms", "- 5 kilograms of flour\n- 2 kilos of sugar",
     [{"value": 5, "unit": "kg"}, {"value": 2, "unit": "kg"}], 1.0),
    ("count-noun-singular", "She ordered 1 package and 3 boxes.",
     [{"value": 1, "unit": "packages"}, {"value": 3, "unit": "box"}], 1.0),
    ("adjective-skipped", "We shipped 3 large boxes.", [{"value": 3, "unit": "boxes"}], 1.0),
    ("speed-compound", "He drove at 60 miles per hour for 2 hours.",
     [{"value": 60, "unit": "mph"}, {"value": 2, "unit": "h"}], 1.0),
    ("area", "The park covers 12 square kilometers.", [{"value": 12, "unit": "km²"}], 1.0),
    ("scale-word", "The city has 1.5 million residents.",
     [{"value": 1500000, "unit": "resident"}], 1.0),
    ("year-and-stopwords-ignored", "In 2020, 5 of them grew by 12%.",
     [{"value": 12, "unit": "%"}], 1.0),
    ("list-numbering-not-value", "1. 7 kg\n2. 3 m", [{"value": 7, "unit": "kg"},
                                                     {"value": 3, "unit": "meters"}], 1.0),
    ("duplicate-mentions-once", "A 42 km trail. Yes, 42 kilometers!", [{"value": 42, "unit": "km"}],
     1.0),
    ("decimal-values", "It weighs 2.5 kg and is 0.75 m tall.",
     [{"value": 2.5, "unit": "kg"}, {"value": 0.75, "unit": "meter"}], 1.0),
    ("people-persons", "Attendance: 250 persons.", [{"value": 250, "unit": "people"}], 1.0),
]


@pytest.mark.parametrize(("output", "expected", "score"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_entities_cases(output: str, expected: list, score: float) -> None:
    result = score_text(ScorerSpec("entities"), output, {"expected": expected})
    assert result.score == pytest.approx(score), result
    assert result.passed is (score == 1.0)


@pytest.mark.parametrize(("a", "b"), [("km", "kilometres"), ("kilometers", "km"), ("kg", "kilos"),
                                      ("$", "dollars"), ("USD", "usd"), ("%", "percent"),
                                      ("people", "persons"), ("package", "packages"),
                                      ("mph", "miles per hour"), ("°C", "celsius")])
def test_unit_synonyms(a: str, b: str) -> None:
    assert canonical_unit(a) == canonical_unit(b)


def test_answer_lists_pairs_and_explanation_gives_f1() -> None:
    result = entities("The trail is 42 km long.", {"expected": TRAIL}, {})
    assert result.answer == "42 kilometer"
    assert result.explanation.startswith("F1 0.67")


def test_expected_may_be_strings_or_pairs() -> None:
    text = "The trail is 42 km long and the town has 30,000 people."
    assert entities(text, {"expected": ["42 kilometres", "30,000 persons"]}, {}).passed
    assert entities(text, {"expected": [[42, "km"], [30000, "people"]]}, {}).passed


def test_unitless_numbers_only_when_expected() -> None:
    assert extract_pairs("In 2020 it was 7.") == []
    assert (7.0, "") in extract_pairs("In 2020 it was 7.", unitless=True)
