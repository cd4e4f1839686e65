"""`moebench run / runs / report / rescore` through Typer's CliRunner against the stand-in."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest
from _run_support import MODELS, standin, write_suite  # noqa: F401
from typer.testing import CliRunner

from moebench.cli import app
from moebench.testing.ollama_standin import OllamaStandin
from moebench.types import SAMPLE_COLUMNS, SUMMARY_COLUMNS

runner = CliRunner()


def _run(server: OllamaStandin, suite: Path, *args: str):
    return runner.invoke(app, ["run", "-s", str(suite), "--host", server.url, *args])


def _rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_run_prints_table_and_writes_csvs(standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    result = _run(standin, suite, "-m", MODELS[0], "-m", MODELS[1], "--csv", "sum.csv",
                  "--samples-csv", "samples.csv")
    assert result.exit_code == 0, result.output
    assert "mini/arith" in result.stdout and "75%" in result.stdout  # 3 of 4 right
    assert "8 experts, top-2" in result.stdout and "1 load" in result.stdout
    assert "results/moebench.db" in result.stdout and "wrote sum.csv" in result.stdout
    summary = _rows("sum.csv")
    assert list(summary[0])[: len(SUMMARY_COLUMNS)] == list(SUMMARY_COLUMNS)
    assert [(r["model"], r["task"], r["passed"]) for r in summary] == [
        (MODELS[0], "arith", "3"), (MODELS[0], "echo", "1"),
        (MODELS[1], "arith", "3"), (MODELS[1], "echo", "1")]
    samples = _rows("samples.csv")
    assert list(samples[0])[: len(SAMPLE_COLUMNS)] == list(SAMPLE_COLUMNS) and len(samples) == 10
    echo = [r for r in samples if r["task"] == "echo"][0]
    assert echo["output"] == "'=cmd()" and echo["expected"] == "'=cmd()"  # stays text
    assert {r["passed"] for r in samples} == {"true", "false"}


def test_report_rebuilds_identical_csvs_and_runs_lists(
        standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    first = _run(standin, suite, "-m", MODELS[0], "--csv", "a.csv", "--samples-csv", "a_s.csv",
                 "--repeats", "2")
    assert first.exit_code == 0, first.output
    requests = standin.stats.requests
    again = runner.invoke(app, ["report", "last", "--csv", "b.csv", "--samples-csv", "b_s.csv"])
    assert again.exit_code == 0, again.output
    assert standin.stats.requests == requests  # no model was called
    assert Path("a.csv").read_bytes() == Path("b.csv").read_bytes()
    assert Path("a_s.csv").read_bytes() == Path("b_s.csv").read_bytes()
    listed = runner.invoke(app, ["runs"])
    assert listed.exit_code == 0 and "completed" in listed.stdout and MODELS[0] in listed.stdout


def test_rescore_reports_changed_verdicts(standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    assert _run(standin, suite, "-m", MODELS[0]).exit_code == 0
    same = runner.invoke(app, ["rescore", "last"])
    assert same.exit_code == 0 and "0 verdicts changed of 5 samples" in same.stdout
    # Fix the case the model "got wrong": its stored answer 7 becomes the expected one.
    suite.write_text(suite.read_text().replace("expected: 6", "expected: 7"))
    changed = runner.invoke(app, ["rescore", "last"])
    assert changed.exit_code == 0, changed.output
    assert "1 verdicts changed" in changed.stdout and "a3" in changed.stdout
    assert "changed since run" in changed.output
    report = runner.invoke(app, ["report", "--csv", "s.csv"])
    assert [r["passed"] for r in _rows("s.csv")] == ["4", "1"]
    assert report.exit_code == 0


@pytest.mark.parametrize("args", [
    ["--repeats", "0"], ["--concurrency", "-1"], ["--backend", "bogus"], ["--limit", "0"],
    ["--timeout", "0"], ["--no-such-option"],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 2, result.output


def test_unknown_model_exits_1_with_one_line(standin: OllamaStandin, tmp_path: Path) -> None:
    result = _run(standin, write_suite(tmp_path), "-m", "nosuch")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuch" in lines[0] and "moebench pull" in lines[0]


def test_server_down_without_demo_models_exits_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("moebench.runner.DEMO_MODELS_DIR", tmp_path / "missing")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ollama serve" in lines[0] and "demo models" in lines[0]


@pytest.mark.parametrize("args", [["report"], ["runs"], ["rescore", "last"]])
def test_commands_without_a_store_exit_1(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "moebench run" in result.stderr


def test_unknown_run_id_exits_1(standin: OllamaStandin, tmp_path: Path) -> None:
    assert _run(standin, write_suite(tmp_path), "-m", MODELS[0], "--limit", "1").exit_code == 0
    result = runner.invoke(app, ["report", "20200101-000000-dead"])
    assert result.exit_code == 1 and "moebench runs" in result.stderr


def test_html_option(standin: OllamaStandin, tmp_path: Path) -> None:
    result = _run(standin, write_suite(tmp_path), "-m", MODELS[0], "--limit", "1",
                  "--html", "r.html")
    if importlib.util.find_spec("moebench.report.html_report") is None:
        assert result.exit_code == 1 and "HTML report is not available" in result.stderr
    else:
        assert result.exit_code == 0, result.output
        assert Path("r.html").stat().st_size > 0


def test_report_of_two_runs_names_each_run(standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    for _ in range(2):
        assert _run(standin, suite, "-m", MODELS[0], "--limit", "1").exit_code == 0
    listed = runner.invoke(app, ["runs"])
    ids = [line.split()[0] for line in listed.stdout.splitlines() if line[:2] == "20"]
    assert len(ids) == 2
    result = runner.invoke(app, ["report", *ids, "--csv", "both.csv"])
    assert result.exit_code == 0, result.output
    assert all(run_id in result.stdout for run_id in ids)
    assert sorted({r["run_id"] for r in _rows("both.csv")}) == sorted(ids)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("moebench.backends.torch") is None,
                    reason="the torch backend is not in this tree")
def test_no_ollama_runs_the_demo_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from moebench.runner import demo_models

    if not demo_models():
        pytest.skip("no bundled demo models in this tree")
    result = runner.invoke(app, ["run", "--limit", "1", "--csv", "demo.csv"])
    assert result.exit_code == 0, result.output
    assert "built-in demo models" in result.stderr and "--host URL" in result.stderr
    rows = _rows("demo.csv")
    assert {r["backend"] for r in rows} == {"torch"} and {r["suite"] for r in rows} == {"demo"}
