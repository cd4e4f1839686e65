"""Issue 18 item 6: why did a case fail? Prompt, expected and explanation everywhere."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from _show_support import MODEL_A, MODEL_B, build_run
from typer.testing import CliRunner

from moebench.cli import app
from moebench.scorers import describe_expected, registry, score_text
from moebench.store import MIGRATIONS, Store
from moebench.types import SAMPLE_COLUMNS, ScorerSpec

runner = CliRunner()

_CASES = {
    "word_length": ({"count": 6, "letters": 9}, "6 words × 9 letters"),
    "number": ({"expected": "1,200"}, "1200"),
    "entities": ({"expected": [{"value": 42, "unit": "km"}, {"value": 3, "unit": "hours"}]},
                 "2 pairs: 42 km; 3 hours"),
    "summary": ({"must_mention": ["Kalo", "kite"], "max_sentences": 1},
                "≤ 1 sentence; mentions: Kalo, kite"),
    "exact": ({"expected": "Paris"}, "exactly 'Paris'"),
    "contains": ({"expected": ["a", "b"]}, "contains: a, b"),
    "regex": ({"expected": r"\d+ km"}, r"matches /\d+ km/"),
    "judge": ({"expected": "Paris"}, "judged by qwen3:4b: names the capital"),
}


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_scorer_describes_what_it_expects(name: str) -> None:
    case, text = _CASES[name]
    params = {"model": "qwen3:4b", "rubric": "names the capital"} if name == "judge" else {}
    assert describe_expected(ScorerSpec(name, params), case) == text


def test_word_length_full_score_fail_says_how_many_were_asked() -> None:
    words = "\n".join(["beautiful", "adventure", "chocolate", "community", "education",
                       "wonderful", "invisible"])
    score = score_text(ScorerSpec("word_length"), words, {"count": 6, "letters": 9})
    assert (score.score, score.passed) == (1.0, False)
    assert score.explanation.startswith("7 valid of 6 asked: beautiful")
    assert score.explanation.endswith("fail: 1 more than asked")


def test_summary_full_rouge_but_too_long_says_why() -> None:
    spec = ScorerSpec("summary", {"max_sentences": 1})
    text = "Kalo found a kite. It was red."
    score = score_text(spec, text, {"must_mention": ["Kalo"], "reference": text})
    assert (score.score, score.passed) == (1.0, False)
    assert "fail: 2 sentences > max 1" in score.explanation


def test_no_full_score_fail_without_a_reason(tmp_path: Path) -> None:
    out = tmp_path / "results"
    build_run(out)
    db = sqlite3.connect(out / "moebench.db")
    rows = db.execute("SELECT explanation FROM samples WHERE score >= 1 AND passed = 0").fetchall()
    assert rows and all("fail:" in r[0] for r in rows)


def test_samples_csv_has_prompt_expected_and_explanation(tmp_path: Path) -> None:
    build_run(tmp_path / "results")
    result = runner.invoke(app, ["report", "r1", "--samples-csv", "s.csv"])
    assert result.exit_code == 0, result.output
    with open("s.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    header = reader.fieldnames or []
    assert header[: len(SAMPLE_COLUMNS)] == list(SAMPLE_COLUMNS)
    assert header[len(SAMPLE_COLUMNS):][:3] == ["prompt", "expected_detail", "explanation"]
    nine = next(r for r in rows if r["model"] == MODEL_A and r["task"] == "nine")
    assert nine["expected"] == nine["expected_detail"] == "6 words × 9 letters"
    assert nine["prompt"] == "List 6 English words with exactly 9 letters."
    assert nine["explanation"].startswith("7 valid of 6 asked")
    add = next(r for r in rows if r["task"] == "add")
    assert (add["expected"], add["expected_detail"]) == ("4", "4")


def test_html_sample_table_shows_prompt_expected_and_why(tmp_path: Path) -> None:
    build_run(tmp_path / "results")
    assert runner.invoke(app, ["report", "r1", "--html", "r.html"]).exit_code == 0
    html = Path("r.html").read_text()
    assert "<th>why</th>" in html and "7 valid of 6 asked" in html
    assert "6 words × 9 letters" in html
    assert "List 6 English words with exactly 9 letters." in html


def test_show_matrix_lists_case_by_model(tmp_path: Path) -> None:
    build_run(tmp_path / "results")
    result = runner.invoke(app, ["show", "last"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert MODEL_A in result.stdout and MODEL_B in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("why/nine/w6x9"))
    assert "✗ 1.00" in line and "✓ 1.00" in line
    assert "--case ID" in result.stdout


def test_show_case_gives_every_models_transcript(tmp_path: Path) -> None:
    build_run(tmp_path / "results")
    result = runner.invoke(app, ["show", "r1", "--case", "nine/w6x9"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{MODEL_A} · why/nine/w6x9 #1 · FAIL · score 1.00" in out
    assert f"{MODEL_B} · why/nine/w6x9 #1 · PASS · score 1.00" in out
    assert "List 6 English words with exactly 9 letters." in out
    assert "6 words × 9 letters" in out and "7 valid of 6 asked" in out
    assert "prompt 30 tok (300.0 tok/s)" in out


def test_show_failed_lists_only_failures_with_thinking_apart(tmp_path: Path) -> None:
    build_run(tmp_path / "results")
    result = runner.invoke(app, ["show", "r1", "--failed"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.stdout.count("FAIL") == 2 and "PASS" not in result.stdout
    assert "2 sentences > max 1" in result.stdout
    ok = runner.invoke(app, ["show", "r1", "--case", "add/a1"], env={"COLUMNS": "200"})
    assert "thinking" in ok.stdout and "2 and 2" in ok.stdout


def test_show_unknown_case_names_the_fix(tmp_path: Path) -> None:
    build_run(tmp_path / "results")
    result = runner.invoke(app, ["show", "r1", "--case", "nope"])
    assert result.exit_code == 1
    assert "no case 'nope'" in result.output and "why/nine/w6x9" in result.output


def test_migration_adds_expected_detail_and_rescore_fills_it(tmp_path: Path) -> None:
    out = tmp_path / "results"
    build_run(out)
    db = sqlite3.connect(out / "moebench.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.execute("UPDATE samples SET expected_detail = NULL, explanation = 'old'")
    db.commit()
    result = runner.invoke(app, ["rescore", "r1"])
    assert result.exit_code == 0, result.output
    rows = dict(db.execute("SELECT task, expected_detail FROM samples WHERE model = ?",
                           (MODEL_A,)).fetchall())
    assert rows == {"nine": "6 words × 9 letters", "sum": "≤ 1 sentence; mentions: Kalo, kite",
                    "add": "4"}
    assert db.execute("SELECT COUNT(*) FROM samples WHERE explanation = 'old'").fetchone()[0] == 0


def test_old_store_gets_the_new_column(tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    db = sqlite3.connect(out / "moebench.db")
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    MIGRATIONS[0](db)
    db.execute("INSERT INTO _migrations VALUES ('m001_initial', 'x')")
    db.commit()
    db.close()
    Store(out).close()
    columns = {r[1] for r in sqlite3.connect(out / "moebench.db").execute(
        "PRAGMA table_info(samples)")}
    assert "expected_detail" in columns
