"""Issue 18 item 9: runs --delete / --older-than, token counts and prefill speed, latency deltas."""

from __future__ import annotations

import csv
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from _show_support import MODEL_A, build_run
from rich.console import Console
from typer.testing import CliRunner

from moebench.cli import app
from moebench.errors import MoebenchError
from moebench.housekeeping import parse_duration
from moebench.report.compare import compare_stored_runs
from moebench.report.summary import build_report
from moebench.report.tables import run_comparison_table
from moebench.report.terminal import summary_table

runner = CliRunner()


@pytest.mark.parametrize(("text", "want"), [
    ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)),
    ("2w", timedelta(weeks=2)), ("1d12h", timedelta(days=1, hours=12))])
def test_parse_duration(text: str, want: timedelta) -> None:
    assert parse_duration(text) == want


@pytest.mark.parametrize("text", ["", "7", "7x", "d7", "7d x"])
def test_parse_duration_names_the_format(text: str) -> None:
    with pytest.raises(MoebenchError, match="e.g. 30m, 12h, 7d or 2w"):
        parse_duration(text)


def _ids(out: Path) -> list[str]:
    db = sqlite3.connect(out / "moebench.db")
    return [r[0] for r in db.execute("SELECT id FROM runs ORDER BY id")]


def test_delete_removes_the_run_and_its_rows(tmp_path: Path) -> None:
    out = tmp_path / "results"
    build_run(out, "r1")
    build_run(out, "r2")
    result = runner.invoke(app, ["runs", "--delete", "r1"])
    assert result.exit_code == 0, result.output
    assert "deleted run r1 (completed" in result.stdout and "6 samples" in result.stdout
    assert _ids(out) == ["r2"]
    db = sqlite3.connect(out / "moebench.db")
    for table in ("samples", "models"):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = 'r1'").fetchone()[0] == 0


def test_delete_unknown_run_deletes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "results"
    build_run(out, "r1")
    result = runner.invoke(app, ["runs", "--delete", "r1", "--delete", "nope"])
    assert result.exit_code == 1 and "no run 'nope'" in result.output
    assert _ids(out) == ["r1"]


def test_older_than_keeps_new_and_running_runs(tmp_path: Path) -> None:
    out = tmp_path / "results"
    build_run(out, "old", started_at="2025-01-01T00:00:00Z")
    build_run(out, "new")
    db = sqlite3.connect(out / "moebench.db")
    build_run(out, "live", started_at="2025-01-02T00:00:00Z")
    db.execute("UPDATE runs SET status = 'running' WHERE id = 'live'")
    db.commit()
    result = runner.invoke(app, ["runs", "--older-than", "7d"])
    assert result.exit_code == 0, result.output
    assert "deleted run old" in result.stdout and "1 run deleted" in result.stdout
    assert _ids(out) == ["live", "new"]


def test_summary_has_token_counts_and_prefill_speed(tmp_path: Path) -> None:
    build_run(tmp_path / "results")
    assert runner.invoke(app, ["report", "r1", "--csv", "s.csv"]).exit_code == 0
    with open("s.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    # 30 prompt tokens in 0.1 s of prompt eval, 40 output tokens (ollama run --verbose)
    assert (row["prompt_tokens_p50"], row["output_tokens_p50"]) == ("30.0", "40.0")
    assert float(row["prefill_tokens_per_s"]) == pytest.approx(300.0)
    report = build_report(tmp_path / "results", ["r1"])
    wide = Console(width=200, record=True)
    wide.print(summary_table(report.summary))
    text = wide.export_text()
    assert "prefill/s" in text and "in tok" in text and "out tok" in text and " 300 " in text


def test_summary_at_80_columns_keeps_task_names_whole(tmp_path: Path) -> None:
    out = tmp_path / "results"
    build_run(out)
    report = build_report(out, ["r1"])
    summary = report.summary.assign(task="summarization_long_task_name")
    narrow = Console(width=80, record=True)
    narrow.print(summary_table(summary, width=80))
    lines = narrow.export_text().splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines)
    assert sum("why/summarization_long_task_name" in line for line in lines) == len(summary)
    assert "hidden to fit 80 columns" in " ".join(lines)


def test_compare_shows_latency_deltas(tmp_path: Path) -> None:
    out = tmp_path / "results"
    build_run(out, "r1")
    build_run(out, "r2")
    db = sqlite3.connect(out / "moebench.db")
    db.execute("UPDATE samples SET latency_s = latency_s * 1.5 WHERE run_id = 'r2'")
    db.commit()
    frame = compare_stored_runs(out, "r1", "r2")
    pooled = frame[(frame["model"] == MODEL_A) & (frame["task"] == "all")].iloc[0]
    # warm samples only: the model's first (cold) request is left out, as in the tables
    assert (pooled["latency_a"], pooled["latency_b"]) == (1.0, 1.5)
    assert pooled["latency_delta"] == pytest.approx(0.5)
    console = Console(width=200, record=True)
    console.print(run_comparison_table(frame, "r1", "r2"))
    text = console.export_text()
    assert "Δ p50" in text and "+0.50 s (+50%)" in text
    result = runner.invoke(app, ["report", "--compare", "r1", "r2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "+0.50 s (+50%)" in result.stdout
