"""`moebench suites list` and `moebench suites validate`, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.paths import BUNDLED_TASKS

BROKEN = Path(__file__).parent / "data" / "broken"

# Each broken file holds exactly one error: (file, line, field) of the line it must print.
BROKEN_FILES = [
    ("unknown_key.yaml", 6, "tasks[0]"),
    ("duplicate_id.yaml", 11, "tasks[0].cases[1].id"),
    ("missing_field.yaml", 11, "tasks[0].cases[1]"),
    ("wrong_type.yaml", 4, "options.temperature"),
    ("empty_suite.yaml", 3, "tasks"),
    ("no_cases.yaml", 7, "tasks[0].cases"),
    ("yaml_syntax.yaml", 6, "yaml"),
    ("unknown_scorer.yaml", 5, "tasks[0].scorer"),
    ("unknown_scorer_param.yaml", 7, "tasks[0].scorer.max_sentence"),
    ("unknown_option.yaml", 8, "tasks[0].options"),
]

runner = CliRunner()


def test_every_broken_file_is_covered() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(f for f, _, _ in BROKEN_FILES)


@pytest.mark.parametrize(("name", "line", "field"), BROKEN_FILES)
def test_validate_broken_file(name: str, line: int, field: str) -> None:
    path = BROKEN / name
    result = runner.invoke(app, ["suites", "validate", str(path)])
    assert result.exit_code == 1, result.output
    errors = [row for row in result.output.splitlines() if row.startswith(str(path))]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(f"{path}:{line}: {field}: ")
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_validate_lists_every_error_of_every_file() -> None:
    paths = [str(BROKEN / name) for name, _, _ in BROKEN_FILES]
    result = runner.invoke(app, ["suites", "validate", *paths])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len([row for row in lines if row.startswith(str(BROKEN))]) == len(BROKEN_FILES)
    assert lines[-1] == f"{len(BROKEN_FILES)} errors"


def test_validate_bundled_suites() -> None:
    result = runner.invoke(app, ["suites", "validate", str(BUNDLED_TASKS)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ") and " suites, " in result.output


def test_validate_needs_a_path_and_reports_a_missing_one(tmp_path: Path) -> None:
    assert runner.invoke(app, ["suites", "validate"]).exit_code == 2
    result = runner.invoke(app, ["suites", "validate", "nowhere.yaml"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "nowhere.yaml:1: file: no such file — check the path"


def test_list_bundled_suites() -> None:
    result = runner.invoke(app, ["suites", "list"])
    assert result.exit_code == 0, result.output
    for name in ("seed", "word-length", "summarization", "entities", "arithmetic", "gsm8k"):
        assert f" {name} " in result.output
    assert "suites in" in result.output  # the folder is in the title, so rows show file names
    assert "gsm8k.yaml" in result.output and "100" in result.output


def test_list_given_files_shows_tasks_and_case_counts(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "suite: mine\ntasks:\n"
        "  - {name: alpha, scorer: number, cases: [{id: a, prompt: p, expected: 1}]}\n"
        "  - {name: beta, scorer: exact, prompt: '{q}', cases: [{id: a, q: x, expected: y},"
        " {id: b, q: z, expected: w}]}\n", encoding="utf-8")
    result = runner.invoke(app, ["suites", "list", "mine.yaml"])
    assert result.exit_code == 0, result.output
    rows = [row for row in result.output.splitlines() if "alpha" in row or "beta" in row]
    assert "mine" in rows[0] and "number" in rows[0] and rows[0].rstrip(" │").endswith("1")
    assert "exact" in rows[1] and rows[1].rstrip(" │").endswith("2")
    assert result.output.splitlines()[-1] == "1 suites, 2 tasks, 3 cases"


def test_list_a_broken_suite_is_one_red_line() -> None:
    path = BROKEN / "unknown_scorer.yaml"
    result = runner.invoke(app, ["suites", "list", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}:5: tasks[0].scorer: unknown scorer 'nubmer' "
                               "(did you mean 'number'? known: ")
