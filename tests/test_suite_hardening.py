"""Hostile suite files and bad invocations: one line naming the fix, never a traceback.

The cases issue 17 and 18 found: alias bombs, huge format specs, deep nesting, huge or empty
integers, BOM/tabs/binary bytes, YAML syntax errors at the right line with the fix, typed
scorer parameters, case-key typos, a bad `--timeout` / `--host`, an explicit `--host` that
does not answer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.suites.loader import validate_paths

TASK = "tasks:\n  - name: t\n    scorer: {scorer}\n    prompt: \"{prompt}\"\n    cases:\n{cases}"


def _suite(scorer: str = "exact", prompt: str = "{{q}}",
           cases: str = "      - {{id: a, q: x, expected: x}}\n") -> str:
    return TASK.format(scorer=scorer, prompt=prompt, cases=cases).replace("{{", "{").replace(
        "}}", "}")


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
NUMBER = "tasks:\n  - name: t\n    scorer: number\n    prompt: p\n    cases: [{id: a, expected: %s}]\n"

CASES = [
    ("alias bomb", BOMB + "tasks: []\n", 1, "alias bomb"),
    ("width 999999999", _suite(prompt="{q:>999999999}"), 4, "width or precision over 1000"),
    ("width 2000000000", _suite(prompt="{q:>2000000000}"), 4, "width or precision over 1000"),
    ("900 deep flow", "tasks: " + "[" * 900 + "]" * 900 + "\n", 1, "nested deeper than 64"),
    ("900 deep block", "tasks:\n" + "".join("  " * i + "- \n" for i in range(900)), 65,
     "nested deeper than 64"),
    ("100,000 digits", NUMBER % ("9" * 100_000), 5, "longer than 300 digits"),
    ("10^309", NUMBER % ("1" + "0" * 309), 5, "longer than 300 digits"),
    ("!!int empty", NUMBER % '!!int ""', 5, "'' is not an integer"),
    ("tab", "tasks:\n  - name: t\n\tscorer: exact\n", 3, "a tab indents this line"),
    ("unclosed quote", 'tasks:\n  - name: "t\n    scorer: exact\n', 2, "never closed"),
    ("bad indentation", "tasks:\n  - name: t\n   scorer: exact\n", 3, "indented differently"),
    ("binary bytes", "tasks:\n  - name: t\x00\n", 2, "control characters"),
    ("max_sentences: one", _suite(scorer="{type: summary, max_sentences: one}"), 3,
     "scorer.max_sentences: must be an integer (got 'one')"),
    ("negative tolerance", _suite(scorer="{type: number, tolerance: -1}",
                                  cases="      - {id: a, q: x, expected: 1}\n"), 3,
     "scorer.tolerance: must be ≥ 0"),
    ("bad regex", _suite(scorer="{type: regex, pattern: '(x'}"), 3, "invalid pattern '(x'"),
    ("nan expected", _suite(scorer="number", cases="      - {id: a, q: x, expected: .nan}\n"),
     6, "finite"),
    ("typo", _suite(cases="      - id: a\n        q: x\n        expcted: x\n"), 8,
     "unknown key 'expcted' — did you mean 'expected'?"),
]


@pytest.mark.parametrize(("what", "text", "line", "message"), CASES, ids=[c[0] for c in CASES])
def test_hostile_suites_give_one_line_at_the_right_place(tmp_path: Path, what: str, text: str,
                                                         line: int, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    errors = validate_paths([path])
    assert time.perf_counter() - start < 5, what
    assert errors and errors[0].startswith(f"{path}:{line}: "), errors
    assert message in errors[0], errors[0]


def test_a_bom_is_fine_and_binary_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + _suite().encode())
    assert validate_paths([path]) == []
    path.write_bytes(_suite().encode() + b"\xff\xfe")
    assert "not UTF-8 text" in validate_paths([path])[0]


def test_a_file_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path,
                                                                   monkeypatch) -> None:
    from moebench.suites import loader

    monkeypatch.setattr(loader, "MAX_SUITE_BYTES", 100)
    path = tmp_path / "s.yaml"
    path.write_text(_suite() + "#" * 200)
    assert "limit for one suite file — split its tasks" in validate_paths([path])[0]


runner = CliRunner()


@pytest.mark.parametrize(("args", "message"), [
    (["--timeout", "nan"], "--timeout"), (["--timeout", "inf"], "--timeout"),
    (["--host", "http://[::1"], "is not a URL"), (["--host", "http://h:99999"], "not a URL"),
])
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_an_explicit_host_that_does_not_answer_is_an_error_not_a_demo_run() -> None:
    result = runner.invoke(app, ["run", "--host", "http://127.0.0.1:9", "--limit", "1"])
    assert result.exit_code == 1, result.output
    assert "not reachable at http://127.0.0.1:9" in result.output
