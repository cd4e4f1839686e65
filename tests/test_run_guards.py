"""Run guards (issues 17 and 18): output paths checked first, bounded runs, honest resumes,
dead runs shown as such, incomplete runs labelled, CSV and Markdown escaping.

All in-process against the stand-in (CliRunner); the subprocess and signal cases live in
`test_interrupts.py`.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from _run_support import MODELS, standin, write_suite  # noqa: F401
from typer.testing import CliRunner

from moebench.backends import BackendEntry, register_backend
from moebench.cli import app
from moebench.runner import RunOptions, run
from moebench.store import Store
from moebench.testing.ollama_standin import OllamaStandin

runner = CliRunner()


def _run(server: OllamaStandin, suite: Path, *args: str):
    return runner.invoke(app, ["run", "-s", str(suite), "--host", server.url, *args])


def _one_line(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---- output paths -----------------------------------------------------------------------


@pytest.mark.parametrize(("args", "needle"), [
    (["--csv", "/proc/forbidden/x.csv"], "does not exist"),
    (["--samples-csv", "missing/dir/s.csv"], "does not exist"),
    (["--html", "."], "is a folder"),
    (["--csv", "same.csv", "--samples-csv", "same.csv"], "same file"),
    (["--out", "afile"], "is a file, not a folder"),
    (["--out", "/proc/self/x"], "not a writable folder"),
])
def test_bad_output_paths_stop_before_any_request(standin: OllamaStandin, tmp_path: Path,
                                                  args: list[str], needle: str) -> None:
    Path("afile").write_text("x")
    result = _run(standin, write_suite(tmp_path), "-m", MODELS[0], *args)
    assert needle in _one_line(result)
    assert standin.stats.requests == 0  # not even the warm-up


def test_late_write_failure_keeps_samples_and_names_the_report_command(
        standin: OllamaStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("moebench.report.summary.write_rows_csv", fail)
    result = _run(standin, write_suite(tmp_path), "-m", MODELS[0], "--csv", "s.csv")
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "No space left" in line and "every sample is in the store" in line
    run_id = Store.open("results").resolve("last")
    assert f"moebench report {run_id} --csv s.csv" in line
    assert "mini/arith" in result.stdout  # the table was still printed
    assert Store.open("results").completeness(run_id) == (5, 5)


def test_huge_repeats_is_refused_up_front(standin: OllamaStandin, tmp_path: Path) -> None:
    result = _run(standin, write_suite(tmp_path), "-m", MODELS[0], "--repeats", "1000000000")
    line = _one_line(result)
    assert "5,000,000,000 samples" in line and "--repeats" in line
    assert set(standin.stats.by_path) <= {"/api/version"}  # no model was called
    assert not Path("results/moebench.db").exists() or Store.open(
        "results").runs_frame().empty  # no `running` run left behind


# ---- resume -----------------------------------------------------------------------------


def _options(server: OllamaStandin, suite: Path | None = None, **kw: object) -> RunOptions:
    base: dict[str, object] = {"host": server.url, "out": Path("out"), "retries": 0}
    if suite is not None:
        base.update(models=[MODELS[0]], suites=[suite])
    return RunOptions(**{**base, **kw})


def test_resume_after_editing_a_suite_runs_the_replaced_case(
        standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    first = run(_options(standin, suite))
    assert (first.samples, first.errors) == (5, 0)
    # Same number of cases, one replaced: a count check would call the model finished.
    suite.write_text(suite.read_text().replace("id: a4, question: \"4+4\", expected: 8",
                                               "id: a9, question: \"9+9\", expected: 18"))
    again = run(_options(standin, resume="last"))
    assert (again.samples, again.kept) == (1, 4)
    store = Store.open("out")
    cases = set(store.samples_frame([first.run_id])["case_id"])
    assert "a9" in cases


def test_resume_takes_timeout_retries_concurrency_and_records_them(
        standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    first = run(_options(standin, suite, timeout=1.0))
    store = Store.open("out")
    with store.db:  # two samples left to do
        store.db.execute("DELETE FROM samples WHERE case_id IN ('a1', 'a2')")
    store.close()
    result = _run_resume("--timeout", "7", "--retries", "2", "--concurrency", "2")
    assert result.exit_code == 0, result.output
    assert "--timeout 7.0 (was 1.0)" in result.stderr and "--concurrency 2 (was 1)" in (
        result.stderr)
    options = Store.open("out").run(first.run_id)["options"]
    assert (options["timeout"], options["retries"], options["concurrency"]) == (7.0, 2, 2)


def _run_resume(*args: str):
    return runner.invoke(app, ["run", "--resume", "last", "--out", "out", *args])


@pytest.mark.parametrize(("args", "flag"), [
    (["--repeats", "3"], "--repeats"),
    (["-m", MODELS[1]], "--model"),
    (["--limit", "2"], "--limit"),
])
def test_resume_refuses_options_that_change_the_run(
        standin: OllamaStandin, tmp_path: Path, args: list[str], flag: str) -> None:
    run(_options(standin, write_suite(tmp_path)))
    line = _one_line(_run_resume(*args))
    assert f"--resume cannot change {flag}" in line


def test_resume_with_the_same_models_and_suites_is_fine(
        standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    run(_options(standin, suite))
    result = _run_resume("-m", MODELS[0].split(":")[0] + ":8x7b", "-s", str(suite),
                         "--repeats", "1")
    assert result.exit_code == 0, result.output


def test_resume_keeps_the_load_time_of_a_model_it_did_not_reload(tmp_path: Path) -> None:
    with OllamaStandin(models=list(MODELS), load_delay=0.4, token_delay=0.0005) as server:
        suite = write_suite(tmp_path)
        first = run(_options(server, suite))
        store = Store.open("out")
        load = store.model_info(first.run_id, 0).load_s
        with store.db:
            store.db.execute("DELETE FROM samples WHERE case_id = 'a1'")
        store.close()
        import ollama

        ollama.Client(server.url).generate(MODELS[0], "hi")  # resident, as after a kill -9
        again = run(_options(server, resume="last"))
        assert again.samples == 1
        info = Store.open("out").model_info(first.run_id, 0)
    assert load is not None and load >= 0.3 and info.load_s == load and info.loads == 1


def test_resume_of_a_run_still_running_is_refused(standin: OllamaStandin,
                                                  tmp_path: Path) -> None:
    first = run(_options(standin, write_suite(tmp_path)))
    with sqlite3.connect("out/moebench.db") as conn:  # as if this process were still on it
        conn.execute("UPDATE runs SET status = 'running'")
    line = _one_line(_run_resume())
    assert "still running" in line and first.run_id in line


# ---- dead runs, incomplete notes ----------------------------------------------------------


def _kill_mid_run(db: Path, keep: int) -> None:
    """Make the stored run look like one whose process was killed after `keep` samples."""
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM samples WHERE rowid NOT IN (SELECT rowid FROM samples "
                     f"ORDER BY seq LIMIT {keep})")
        conn.execute("UPDATE runs SET status = 'running', finished_at = NULL, pid = 999999999")


def test_a_killed_run_shows_dead_and_incomplete_everywhere(
        standin: OllamaStandin, tmp_path: Path) -> None:
    assert _run(standin, write_suite(tmp_path), "-m", MODELS[0]).exit_code == 0
    _kill_mid_run(Path("results/moebench.db"), keep=2)
    listed = runner.invoke(app, ["runs"])
    assert "interrupted (process gone) · incomplete: 2/5" in listed.stdout
    report = runner.invoke(app, ["report", "--csv", "s.csv", "--html", "r.html"])
    assert report.exit_code == 0, report.output
    assert "(incomplete: 2/5)" in report.stdout
    rows = list(csv.DictReader(open("s.csv", newline="")))
    assert {r["run_status"] for r in rows} == {"incomplete: 2/5"}
    assert "incomplete: 2/5" in Path("r.html").read_text()
    markdown = runner.invoke(app, ["report", "--markdown"])
    assert "incomplete: 2/5" in markdown.stdout.splitlines()[0]
    run_id = Store.open("results").resolve("last")
    assert Store.open("results").run(run_id)["status"] == "interrupted"
    resumed = runner.invoke(app, ["run", "--resume", "last", "--host", standin.url])
    assert resumed.exit_code == 0, resumed.output
    assert "incomplete" not in runner.invoke(app, ["runs"]).stdout


def test_early_interrupt_during_start_up_is_interrupted_not_failed(
        standin: OllamaStandin, tmp_path: Path) -> None:
    register_backend(BackendEntry("slow-start", "test_run_guards", "interrupting_backend",
                                  "test backend", ()))
    result = run(_options(standin, write_suite(tmp_path), backend="slow-start"))
    assert result.status == "interrupted" and result.run_id
    store = Store.open("out")
    assert store.run(result.run_id)["status"] == "interrupted"
    assert store.incomplete_note(result.run_id) == "incomplete: 0/5"


def interrupting_backend(config: object) -> object:
    """A backend factory interrupted while it 'imports torch' (Ctrl-C 2 s into a demo run)."""
    raise KeyboardInterrupt


# ---- escaping ---------------------------------------------------------------------------


def test_csv_quotes_a_bare_carriage_return(tmp_path: Path) -> None:
    from moebench.report.summary import write_csv
    import pandas as pd

    path = write_csv(pd.DataFrame({"output": ["ok\r=1+2", "a\nb", "plain"], "n": [1, 2, 3]}),
                     tmp_path / "x.csv")
    raw = path.read_bytes()
    assert b'"ok\r=1+2"' in raw and raw.count(b"\r") == 1 and raw.endswith(b"plain,3\n")
    rows = list(csv.reader(path.open(newline="")))
    assert rows[1] == ["ok\r=1+2", "1"] and rows[2] == ["a\nb", "2"]


def test_markdown_escapes_raw_html_in_names(tmp_path: Path) -> None:
    from moebench.report.markdown_report import md_table

    table = md_table(["model"], [["<img src=x onerror=alert(1)>"], ["a|b"]])
    assert "<img" not in table and "&lt;img src=x onerror=alert(1)&gt;" in table
    assert "a\\|b" in table
