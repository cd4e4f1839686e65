"""Suite loader: requests from YAML, every error kind with its line, and the bundled suites."""

from __future__ import annotations

import ast
import operator
import re
from pathlib import Path

import pytest

from moebench.errors import SuiteError
from moebench.paths import BUNDLED_TASKS
from moebench.suites.loader import GenerationOptions, load_suite, load_suites, validate_paths
from moebench.types import GENERATION_KEYS, ScorerSpec

GOOD = """\
suite: demo
options: {temperature: 0, seed: 7, max_tokens: 100}
tasks:
  - name: arithmetic
    scorer: number
    system: "You are {persona}."
    prompt: "Q: {question} {{literal}}"
    options: {max_tokens: 64, stop: "###"}
    cases:
      - id: 1
        question: "1 + 1?"
        persona: a tutor
        expected: 2
      - id: own
        prompt: "Whole prompt, braces {kept} as written."
        persona: a judge
        expected: 3
        options: {temperature: 0.5}
  - name: summaries
    scorer: {type: summary, max_sentences: 1}
    prompt: "Summarize: {paragraph}"
    cases:
      - {id: a, paragraph: "Bob had a dog.", must_mention: [Bob], answer: no, day: 2021-03-04}
      - {id: b, paragraph: "x", must_mention: [x], scorer: {type: contains}, expected: x}
"""


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_requests_render_templates_and_merge_options(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    first, own, summary, override = suite.requests()
    assert (suite.name, suite.n_cases, [t.name for t in suite.tasks]) == (
        "demo", 4, ["arithmetic", "summaries"])
    assert first.prompt == "Q: 1 + 1? {literal}" and first.system == "You are a tutor."
    assert first.case_id == "1" and first.expected == 2 and first.case["question"] == "1 + 1?"
    assert first.options == {"temperature": 0, "seed": 7, "max_tokens": 64, "stop": ["###"]}
    assert own.prompt == "Whole prompt, braces {kept} as written."
    assert own.system == "You are a judge."
    assert own.options["temperature"] == 0.5 and own.options["max_tokens"] == 64
    assert summary.scorer == ScorerSpec("summary", {"max_sentences": 1})
    assert summary.options == {"temperature": 0, "seed": 7, "max_tokens": 100}
    # YAML 1.2 scalars: `no` stays text, a date stays text (the store can serialise both)
    assert summary.case["answer"] == "no" and summary.case["day"] == "2021-03-04"
    assert override.scorer == ScorerSpec("contains", {})


def test_limit_repeats_and_hash(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    suite = load_suite(path)
    requests = suite.requests(limit=1, repeats=3)
    assert [(r.task, r.case_id, r.repeat) for r in requests] == [
        ("arithmetic", "1", 1), ("arithmetic", "1", 2), ("arithmetic", "1", 3),
        ("summaries", "a", 1), ("summaries", "a", 2), ("summaries", "a", 3)]
    import hashlib

    assert suite.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert suite.path == path
    with pytest.raises(ValueError):
        suite.requests(repeats=0)


def test_name_defaults_to_file_stem_and_folders_load_sorted(tmp_path: Path) -> None:
    body = "tasks:\n  - {name: t, scorer: number, cases: [{id: a, prompt: p, expected: 1}]}\n"
    write(tmp_path, body, "b.yml")
    write(tmp_path, body, "a.yaml")
    write(tmp_path, "not a suite", "notes.txt")
    suites = load_suites([tmp_path, tmp_path / "a.yaml"])  # a file given twice loads once
    assert [s.name for s in suites] == ["a", "b"]


def test_generation_options_cover_the_shared_keys() -> None:
    assert tuple(GenerationOptions.model_fields) == GENERATION_KEYS


# Each row: YAML text, then (line, field, part of the message) of the one error it must give.
ERRORS = [
    ("suite: x\ntsks: []\n", (2, "suite", "unknown key 'tsks' (did you mean 'tasks'?")),
    ("suite: x\n", (1, "suite", "missing required key 'tasks'")),
    ("", (1, "suite", "the file is empty")),
    ("- a\n- b\n", (1, "suite", "expected a mapping with `tasks:`, got a list")),
    ("tasks:\n  - name: t\n    name: u\n    scorer: number\n"
     "    cases: [{id: a, prompt: p, expected: 1}]\n",
     (3, "tasks[0].name", "key given twice")),
    ("tasks:\n  - {name: t, scorer: number, cases: [{id: a, prompt: p, expected: 1}]}\n"
     "  - {name: t, scorer: number, cases: [{id: a, prompt: p, expected: 1}]}\n",
     (3, "tasks[1].name", "duplicate task name 't' (first at line 2)")),
    ("tasks:\n  - name: t\n    scorer: number\n    prompt: 'x {0}'\n"
     "    cases: [{id: a, expected: 1}]\n",
     (4, "tasks[0].prompt", "placeholder {0} must be a field name")),
    ("tasks:\n  - name: t\n    scorer: number\n    prompt: 'x {'\n"
     "    cases: [{id: a, expected: 1}]\n",
     (4, "tasks[0].prompt", "bad template")),
    ("tasks:\n  - name: t\n    scorer: number\n    cases:\n      - {id: a, expected: 1}\n",
     (5, "tasks[0].cases[0]", "no prompt: give the task a `prompt:`")),
    ("tasks:\n  - name: t\n    prompt: p\n    cases:\n      - {id: a, expected: 1}\n",
     (5, "tasks[0].cases[0]", "no scorer")),
    ("tasks:\n  - name: t\n    scorer: number\n    prompt: p\n    cases:\n      - id: a\n"
     "        expected: two\n", (7, "tasks[0].cases[0].expected", "needs `expected:` a number")),
    ("tasks:\n  - name: t\n    scorer: entities\n    prompt: p\n    cases:\n      - id: a\n"
     "        expected: [{value: 1}]\n", (7, "tasks[0].cases[0].expected", "{value: NUMBER")),
    ("tasks:\n  - name: t\n    scorer: word_length\n    prompt: p\n    cases:\n"
     "      - {id: a, count: 3}\n",
     (6, "tasks[0].cases[0].letters", "needs `letters:` an integer ≥ 1")),
    ("tasks:\n  - name: t\n    scorer: {max_sentences: 1}\n    prompt: p\n    cases: [{id: a}]\n",
     (3, "tasks[0].scorer", "needs `type: NAME`")),
    ("tasks:\n  - name: t\n    scorer: number\n    prompt: p\n    cases:\n"
     "      - {id: a, expected: 1}\n      - {id: b, expected: 1, options: {top_p: 2}}\n",
     (7, "tasks[0].cases[1].options.top_p", "less than or equal to 1")),
    ("tasks:\n  - name: t\n    scorer: number\n    prompt: p\n    cases:\n      - just text\n",
     (6, "tasks[0].cases[0]", "expected a mapping, got text")),
    ("tasks:\n  - name: t\n    scorer: number\n    prompt: p\n    cases:\n      - {expected: 1}\n",
     (6, "tasks[0].cases[0]", "missing required key 'id'")),
    ("suite: x\ntasks:\n  - name: t\n\tscorer: number\n", (4, "yaml", "a tab indents this line")),
    ("suite: x\ntasks: \x07\n", (2, "yaml", "characters are not allowed (character #x0007)")),
]


@pytest.mark.parametrize(("text", "error"), ERRORS)
def test_each_error_gives_one_line_with_its_position(tmp_path: Path, text: str,
                                                     error: tuple[int, str, str]) -> None:
    path = write(tmp_path, text)
    line, field, message = error
    errors = validate_paths([path])
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}:{line}: {field}: "), errors[0]
    assert message in errors[0]


def test_every_error_of_a_file_is_listed(tmp_path: Path) -> None:
    text = ("suite: x\ntasks:\n  - name: t\n    scorer: nubmer\n    promt: p\n    prompt: '{q}'\n"
            "    options: {temperature: -1}\n    cases:\n      - {id: a, q: 1}\n      - {id: a}\n")
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    lines = caught.value.errors
    assert [int(line.split(":")[1]) for line in lines] == [4, 5, 7, 10, 10], lines
    assert "unknown scorer 'nubmer' (did you mean 'number'? known: contains" in lines[0]
    assert "greater than or equal to 0 (got -1)" in lines[2]
    assert any("duplicate case id 'a' (first at line 9)" in line for line in lines)
    assert any("no field 'q'" in line for line in lines)
    assert str(caught.value).startswith(lines[0]) and "+4 more" in str(caught.value)


def test_file_problems(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("suite: x\n# caf\xe9\n".encode("latin-1"))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    errors = validate_paths([latin1, tmp_path / "missing.yaml", empty_dir])
    assert errors == [
        f"{latin1}:2: file: not UTF-8 text (byte 0xe9) — save it as UTF-8",
        f"{tmp_path / 'missing.yaml'}:1: file: no such file — check the path",
        f"{empty_dir}:1: folder: no suite files (*.yaml, *.yml) in this folder — pass a suite "
        "file or a folder of them",
    ]


def test_two_files_with_one_suite_name(tmp_path: Path) -> None:
    body = ("suite: same\ntasks:\n"
            "  - {name: t, scorer: number, cases: [{id: a, prompt: p, expected: 1}]}\n")
    write(tmp_path, body, "a.yaml")
    write(tmp_path, body, "b.yaml")
    with pytest.raises(SuiteError, match="suite name 'same' is also used by"):
        load_suites([tmp_path])


# ---- the bundled suites ----

FAMILIES = ("word-length", "summarization", "entities", "arithmetic")


@pytest.fixture(scope="module")
def bundled() -> dict[str, object]:
    files = [BUNDLED_TASKS / f"{name}.yaml" for name in ("seed", *FAMILIES, "gsm8k")]
    return {suite.name: suite for suite in load_suites(files)}


def test_bundled_folder_is_valid() -> None:
    assert validate_paths([BUNDLED_TASKS]) == []


def test_seed_prompts_are_verbatim(bundled: dict) -> None:
    prompts = [r.prompt for r in bundled["seed"].requests()]
    assert prompts[0] == ("Question: Give me a list of 13 words that have 9 letters.\n"
                          "Answer: Let's think step-by-step.")
    assert prompts[2].endswith("The marathon was 42 kilometers long, and over 30,000 people "
                               "participated.\nAnswer: Let's think step-by-step.")
    assert "Bob got his dog back and they walked home together.\nAnswer:" in prompts[1]
    assert "After eating half of the pie how many apples do I have left?\nAnswer:" in prompts[3]
    assert [r.scorer.name for r in bundled["seed"].requests()] == [
        "word_length", "summary", "entities", "number"]


@pytest.mark.parametrize("name", FAMILIES)
def test_family_suites_have_250_cases(bundled: dict, name: str) -> None:
    assert bundled[name].n_cases >= 250
    hand_written = [c for c in bundled[name].tasks[0].cases if not c.id.startswith("g-")]
    assert len(hand_written) >= 30  # generated cases come after the hand-written ones


def test_word_length_cases_vary(bundled: dict) -> None:
    cases = [r.case for r in bundled["word-length"].requests()
             if not r.case_id.startswith("g-")]
    assert {c["count"] for c in cases} == set(range(3, 16))
    assert {c["letters"] for c in cases} == set(range(4, 13))


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.USub: operator.neg}


def _calc(node: ast.AST) -> float:
    """Evaluate +, -, *, /, // and parentheses over numbers (nothing else)."""
    if isinstance(node, ast.Expression):
        return _calc(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp):
        return _OPS[type(node.op)](_calc(node.left), _calc(node.right))
    if isinstance(node, ast.UnaryOp):
        return _OPS[type(node.op)](_calc(node.operand))
    raise ValueError(f"not arithmetic: {ast.dump(node)}")


def test_arithmetic_answers_are_computed(bundled: dict) -> None:
    for request in bundled["arithmetic"].requests():
        value = _calc(ast.parse(request.case["work"], mode="eval"))
        assert request.expected == pytest.approx(value, abs=1e-9), request.case_id


def test_entities_expected_values_appear_in_the_text(bundled: dict) -> None:
    for request in bundled["entities"].requests():
        text = request.case["text"].replace(",", "")
        numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)}
        for pair in request.expected:
            value = pair["value"]
            assert value in numbers or value / 1e6 in numbers, (request.case_id, value)


def test_summaries_are_checkable(bundled: dict) -> None:
    import pysbd

    segment = pysbd.Segmenter(language="en", clean=False).segment
    for request in bundled["summarization"].requests():
        case = request.case
        assert 4 <= len(segment(case["paragraph"])) <= 10, request.case_id
        assert len(segment(case["reference"])) == 1, request.case_id
        for term in case["must_mention"]:
            for text in (case["paragraph"], case["reference"]):
                assert re.search(rf"\b{re.escape(term)}\b", text, re.I), (request.case_id, term)
