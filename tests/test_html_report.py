"""The HTML and Markdown reports: content, escaping, offline-ness, store and CLI paths."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _report_frames import (
    demo_models,
    demo_router,
    demo_runs,
    demo_samples,
    fill_store,
    sample_row,
    samples_frame,
)
from typer.testing import CliRunner

from moebench.report import svg_charts
from moebench.cli import app
from moebench.report.html_report import fmt_p, fmt_points, render_html
from moebench.report.markdown_report import md_cell, render_markdown

EVIL = "<script>alert('x')</script>"
ROOT = Path(__file__).resolve().parents[1]


def _hostile_samples() -> pd.DataFrame:
    rows = [sample_row(model=f"m{EVIL}", task=f"t{EVIL}", output=f"{EVIL} & more",
                       answer=EVIL, expected=EVIL, error=None),
            sample_row(model="plain", output="fine", case_id="c", error=f"oops {EVIL}",
                       passed=None, score=None)]
    return samples_frame(rows)


def test_report_has_every_section_for_an_engine_run() -> None:
    html = render_html(demo_samples(repeats=2), demo_models(),
                       demo_router(model="olmoe:7b"), demo_runs())
    for anchor in ("summary", "speed", "latency", "tasks", "paired", "moe", "experts",
                   "samples"):
        assert f'id="{anchor}"' in html
    assert html.count("<svg") >= 4  # scatter, latency, bars, a heatmap per task
    assert "pass^N" in html and "flaky" in html  # repeats → consistency columns
    assert "128 experts, top-8" in html and "30.5B" in html and "3.3B" in html
    assert "38% GPU / 62% CPU" in html
    assert re.search(r"mean CV \d\.\d\d", html)


def test_all_user_text_is_escaped() -> None:
    html = render_html(_hostile_samples(), None, None, None)
    assert EVIL not in html
    assert "&lt;script&gt;alert(" in html
    assert html.count("<script>") == 1  # ours, the sorting/filtering code


def test_report_is_self_contained_and_offline() -> None:
    html = render_html(demo_samples(), demo_models(), None, demo_runs())
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)


def test_report_without_models_router_or_second_model() -> None:
    html = render_html(samples_frame([sample_row()]), None, None, None)
    assert "nothing to compare" in html
    assert "No model facts stored" in html
    assert 'id="experts"' not in html


def test_several_runs_are_labelled_and_compared() -> None:
    samples = pd.concat([demo_samples(run_id="r1"), demo_samples(seed=9, run_id="r2")])
    models = pd.concat([demo_models("r1"), demo_models("r2")])
    html = render_html(samples, models, None, demo_runs(("r1", "r2")))
    assert "mixtral:8x7b @ r1" in html and "mixtral:8x7b @ r2" in html
    assert 'id="runs-compared"' in html


def test_heatmap_refills_idle_experts_from_the_model_facts() -> None:
    router = demo_router(model="olmoe:7b", experts=4, layers=1)
    router = router[router["expert"] != 3]  # the store keeps nonzero counts only
    html = render_html(demo_samples(), demo_models(), router, None)
    assert "expert 63:" in html  # olmoe has 64 experts: the grid covers all of them


@pytest.mark.parametrize(("value", "text"), [(0.125, "+12.5"), (-0.0001, "0.0"),
                                             (float("nan"), "–")])
def test_fmt_points(value: float, text: str) -> None:
    assert fmt_points(value) == text


@pytest.mark.parametrize(("p", "text"), [(0.0004, "< 0.001"), (0.0351, "= 0.035")])
def test_fmt_p(p: float, text: str) -> None:
    assert fmt_p(p) == text


@pytest.mark.parametrize(("lo", "hi", "ticks"), [
    (0, 1, [0, 0.25, 0.5, 0.75, 1]),
    (0, 52.6, [0, 20, 40, 60]),
    (0, 10.4, [0, 2.5, 5, 7.5, 10, 12.5]),
])
def test_nice_ticks_cover_the_range(lo: float, hi: float, ticks: list[float]) -> None:
    assert svg_charts.nice_ticks(lo, hi, 4 if hi == 1 else 5) == pytest.approx(ticks)


def test_pareto_front() -> None:
    pts = [svg_charts.Point(n, x, y, y, y) for n, x, y in
           [("fast", 40, 0.4), ("good", 10, 0.8), ("bad", 20, 0.3), ("mid", 25, 0.6)]]
    assert svg_charts.pareto(pts) == {"fast", "good", "mid"}


def test_markdown_tables() -> None:
    text = render_markdown(demo_samples(), demo_models())
    assert "## Summary (model × task)" in text and "## Paired comparison" in text
    assert "| mixtral:8x7b | seed-moe | arithmetic | 12 |" in text
    assert md_cell("a|b\nc") == "a\\|b c"


def _store_with_two_runs(out: Path) -> None:
    fill_store(out, "r1", demo_samples(seed=1), demo_models("r1"),
               router={"prefill": [[5, 0, 3, 1]] * 2, "decode": [[1, 0, 2, 0]] * 2})
    fill_store(out, "r2", demo_samples(seed=2, run_id="r2"), demo_models("r2"))


def test_cli_report_writes_html_from_the_store(tmp_path: Path) -> None:
    _store_with_two_runs(tmp_path / "results")
    result = CliRunner().invoke(app, ["report", "r1", "--html", "out/r.html"])
    assert result.exit_code == 0, result.output
    html = Path("out/r.html").read_text()
    assert 'id="experts"' in html and "mixtral:8x7b" in html


def test_cli_report_compare_prints_the_paired_table(tmp_path: Path) -> None:
    _store_with_two_runs(tmp_path / "results")
    result = CliRunner().invoke(app, ["report", "--compare", "r1", "r2", "--html", "c.html"])
    assert result.exit_code == 0, result.output
    assert "r1 (A) vs r2 (B)" in result.output and "no detectable difference" in result.output
    assert 'id="runs-compared"' in Path("c.html").read_text()


def test_cli_report_markdown(tmp_path: Path) -> None:
    _store_with_two_runs(tmp_path / "results")
    result = CliRunner().invoke(app, ["report", "r1", "r2", "--markdown"])
    assert result.exit_code == 0, result.output
    assert "## Runs compared: r1 vs r2" in result.output
    assert "| --- |" in result.output


def test_cli_report_compare_unknown_run_is_one_line(tmp_path: Path) -> None:
    _store_with_two_runs(tmp_path / "results")
    result = CliRunner().invoke(app, ["report", "--compare", "r1", "nope"])
    assert result.exit_code == 1
    assert "nope" in result.output and "Traceback" not in result.output


@pytest.mark.chromium
@pytest.mark.skipif(os.environ.get("MOEBENCH_CHROMIUM") != "1",
                    reason="opt-in: MOEBENCH_CHROMIUM=1 (needs headless chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no chromium installed (apt-get install -y chromium)")
    png = tmp_path / "report.png"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_report_chromium.py"),
                           "--png", str(png)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert png.stat().st_size > 10_000


def test_long_outputs_are_cut_in_the_page_not_in_the_store() -> None:
    html = render_html(samples_frame([sample_row(output="x" * 5000)]), None, None, None)
    assert "x" * 4000 in html and "x" * 4001 not in html
    assert "1000 more chars in the store" in html
