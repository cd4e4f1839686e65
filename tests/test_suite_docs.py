"""docs/suites.md cannot drift from the schema, and the example suite uses every scorer."""

from __future__ import annotations

from pathlib import Path

from moebench.scorers import registry, score_text
from moebench.suites.loader import load_suite
from moebench.suites.reference import current

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "suites.md"
EXAMPLE = ROOT / "examples" / "every-scorer.yaml"


def test_the_generated_reference_is_current() -> None:
    text = DOC.read_text()
    assert current(text) == text, "run: python -m moebench.suites.reference docs/suites.md"


def test_the_doc_names_every_scorer_and_its_fields() -> None:
    text = DOC.read_text()
    for name, entry in registry().items():
        assert f"| `{name}` |" in text and f"#### `{name}`" in text
        for field in (*entry.params, *entry.reads):
            assert f"| `{field}` |" in text


def test_the_example_suite_is_valid_and_uses_every_scorer() -> None:
    suite = load_suite(EXAMPLE)
    used = {case.scorer.name for task in suite.tasks for case in task.cases}
    assert used == set(registry()), set(registry()) - used


def test_the_example_suite_scores_good_answers() -> None:
    answers = {"france": "Paris", "japan": "Tokyo", "rgb": "Red, green and blue.",
               "paris-lyon": "About 465 km.", "apples": "3 + 4 = 7. The answer is 7.",
               "price": "2 × 12.50 = $25.00", "trip": "42 km, 3 hours, $18",
               "bridge": "The council will repair the bridge from May.",
               "five-by-five": "1. apple\n2. house\n3. river\n4. light\n5. chair"}
    for task in load_suite(EXAMPLE).tasks:
        for case in task.cases:
            if case.scorer.name == "judge":  # needs a judge model; tests/test_judge.py has it
                continue
            score = score_text(case.scorer, answers[case.id], case.fields)
            assert score.passed, (case.id, score)


def test_tasks_readme_points_at_the_doc() -> None:
    assert "docs/suites.md" in (ROOT / "tasks" / "README.md").read_text()
