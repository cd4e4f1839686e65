"""Case generators: seeded and deterministic, every reference answer passes its own scorer,
`generate:` in suite files, `moebench suites generate`, and the bundled generated suites."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from moebench.cli import app
from moebench.errors import MoebenchError, SuiteError
from moebench.paths import BUNDLED_TASKS
from moebench.scorers import score_text
from moebench.suites.generators import family, family_names, generate_cases, suite_yaml
from moebench.suites.generators.word_length import COUNTS, LETTERS, SATISFIABLE_MARGIN
from moebench.suites.loader import load_suite, validate_paths
from moebench.suites.rules import scorer_spec

FAMILY_N = {"word_length": None, "arithmetic": 300, "entities": 300, "summarization": 300,
            "gsm8k": None}
runner = CliRunner()


def _cases(name: str) -> list[dict]:
    n = FAMILY_N[name] if name != "word_length" else family(name).max_n
    return generate_cases(name, n, seed=1, variants=2 if family(name).templated else 0)


@pytest.mark.parametrize("name", family_names())
def test_every_reference_answer_passes_its_scorer(name: str) -> None:
    fam = family(name)
    spec = scorer_spec(fam.scorer)
    failed = []
    for case in _cases(name):
        score = score_text(spec, fam.reference(case), case)
        if not score.passed:
            failed.append((case["id"], score.explanation))
    assert failed == []


@pytest.mark.parametrize("name", ["word_length", "arithmetic", "entities", "summarization"])
def test_same_seed_same_bytes(name: str) -> None:
    assert suite_yaml(name, 40, seed=3) == suite_yaml(name, 40, seed=3)
    assert suite_yaml(name, 40, seed=3) != suite_yaml(name, 40, seed=4)


@pytest.mark.parametrize("name", ["word_length", "arithmetic", "entities", "summarization"])
def test_a_longer_run_starts_with_the_shorter_one(name: str) -> None:
    assert generate_cases(name, 250, 5)[:100] == generate_cases(name, 100, 5)


def test_word_length_targets_are_satisfiable_from_the_scorer_lexicon() -> None:
    from moebench.suites.generators.word_length import lexicon_words

    for letters in LETTERS:
        words = lexicon_words(letters, max(COUNTS) * SATISFIABLE_MARGIN)
        assert len(words) == max(COUNTS) * SATISFIABLE_MARGIN, letters
        assert all(len(w) == letters for w in words)
    targets = {(c["count"], c["letters"]) for c in _cases("word_length")}
    assert len(targets) == len(COUNTS) * len(LETTERS)  # every target once, no duplicates


_OPS = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__,
        ast.Div: float.__truediv__, ast.FloorDiv: float.__floordiv__}


def _calc(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _calc(node.body)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_calc(node.operand)
    assert isinstance(node, ast.BinOp)
    return _OPS[type(node.op)](_calc(node.left), _calc(node.right))


def test_arithmetic_answers_are_computed_and_variants_share_a_template() -> None:
    cases = generate_cases("arithmetic", 70, seed=2, variants=3)
    assert len(cases) == 70 * 4
    templates = {c["template"] for c in cases}
    assert len(templates) == 14
    for case in cases:
        assert _calc(ast.parse(case["work"], mode="eval")) == pytest.approx(case["expected"])
        assert round(case["expected"] * 100) == pytest.approx(case["expected"] * 100)
    originals = {c["id"]: c for c in cases if c["variant"] == 0}
    for case in cases:
        base = originals[case["variant_of"]]
        assert case["template"] == base["template"]
        if case["variant"]:
            assert case["question"] != base["question"]  # new names and numbers


def test_entities_texts_hold_their_values_and_distractors() -> None:
    cases = generate_cases("entities", 300, seed=1)
    assert any(") it " in c["text"] for c in cases)  # numbered lists as distractors
    for case in cases:
        text = case["text"].replace(",", "")
        for pair in case["expected"]:
            assert f"{pair['value']:g}" in text


def test_family_errors_name_the_fix() -> None:
    with pytest.raises(MoebenchError, match="known: arithmetic"):
        generate_cases("poems", 3)
    with pytest.raises(MoebenchError, match="at most 288"):
        generate_cases("word_length", 289)
    with pytest.raises(MoebenchError, match="no templates"):
        generate_cases("entities", 3, variants=2)


def test_gsm8k_family_is_the_full_test_set() -> None:
    cases = generate_cases("gsm8k", None)
    assert len(cases) == 1319
    assert cases[42]["id"] == "test-0042"
    sample = generate_cases("gsm8k", 50, seed=3)
    assert len(sample) == 50 and sample == generate_cases("gsm8k", 50, seed=3)
    data = Path(family("gsm8k").make.__globals__["DATA"])
    assert data.stat().st_size < 200_000  # small enough to keep in git
    assert (data.parent / "LICENSE").is_file()


def test_generate_beside_cases_in_a_suite(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text("""\
suite: mixed
tasks:
  - name: sums
    generate: {family: arithmetic, n: 5, seed: 1, variants: 1}
    cases:
      - {id: mine, question: "1 + 1?", expected: 2}
  - name: words
    scorer: word_length
    prompt: "List {count} words of {letters} letters, please."
    generate: {family: word_length, n: 4}
""")
    suite = load_suite(path)
    sums, words = suite.tasks
    assert [c.id for c in sums.cases][:3] == ["mine", "g-0001-change", "g-0001-change-v1"]
    assert len(sums.cases) == 11 and sums.scorer is not None and sums.scorer.name == "number"
    assert sums.cases[0].prompt.startswith("1 + 1?\nThink step by step")  # family template
    assert words.cases[0].prompt.startswith("List ")  # the task's own template wins


def test_bad_generate_is_a_located_suite_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("tasks:\n  - name: t\n    generate: {family: poems, n: 3}\n"
                    "  - name: u\n    generate: {family: arithmetic, n: 0}\n"
                    "  - name: v\n    generate: {famly: arithmetic}\n")
    errors = validate_paths([path])
    assert f"{path}:3: tasks[0].generate: unknown generator family 'poems'" in errors[0]
    assert any(":5: tasks[1].generate.n" in e for e in errors)
    assert any(":7:" in e and "unknown key 'famly'" in e and "did you mean 'family'" in e
               for e in errors)
    with pytest.raises(SuiteError):
        load_suite(path)


def test_cli_generate_writes_a_valid_suite(tmp_path: Path) -> None:
    out = tmp_path / "gen.yaml"
    result = runner.invoke(app, ["suites", "generate", "entities", "-n", "12", "--seed", "4",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())
    assert len(doc["tasks"][0]["cases"]) == 12
    assert validate_paths([out]) == []
    again = runner.invoke(app, ["suites", "generate", "entities", "-n", "12", "--seed", "4"])
    assert again.stdout == out.read_text()  # same seed, same bytes
    bad = runner.invoke(app, ["suites", "generate", "poems"])
    assert bad.exit_code == 1 and "unknown generator family" in bad.output


def test_bundled_extra_suites() -> None:
    assert validate_paths([BUNDLED_TASKS / "extra"]) == []
    full = load_suite(BUNDLED_TASKS / "extra" / "gsm8k-full.yaml")
    assert full.n_cases == 1319
    variants = load_suite(BUNDLED_TASKS / "extra" / "arithmetic-variants.yaml")
    assert variants.n_cases == 300
    assert len(variants.requests(limit=10)) == 10
