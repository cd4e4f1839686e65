"""Issue 18 item 8 (HTML): stable colours, labels inside the charts, settings on the page."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _report_frames import demo_models, demo_samples
from _show_support import build_run
from typer.testing import CliRunner

from moebench.cli import app
from moebench.report import svg_charts as charts
from moebench.report.html_report import render_html

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _swatches(html: str) -> dict[str, str]:
    """Model → colour from the summary table's swatches."""
    return dict((m, c) for c, m in re.findall(
        r'<span class="swatch" style="background:(#[0-9a-f]{6})"></span>([^<]+)</td>', html))


def test_model_colours_depend_on_the_name_not_the_order() -> None:
    names = ["mixtral:8x7b", "olmoe:7b", "qwen3:30b-a3b", "dbrx:latest", "deepseek-v2:16b"]
    assert charts.model_colors(names) == charts.model_colors(list(reversed(names)))
    alone = charts.model_colors(["olmoe:7b"])["olmoe:7b"]
    assert alone == charts.PALETTE[charts.name_color("olmoe:7b")]
    ten = [f"model-{i}" for i in range(10)]
    assert len(set(charts.model_colors(ten).values())) == 10  # collisions take a free slot


def test_report_colours_are_the_same_across_reports() -> None:
    samples = demo_samples()  # mixtral:8x7b and qwen3:30b-a3b hash to the same slot
    first = _swatches(render_html(samples, demo_models()))
    assert len(set(first.values())) == 3
    later = samples[samples["model"] != "qwen3:30b-a3b"]  # a later report without qwen
    second = _swatches(render_html(later, demo_models()))
    assert second == {m: first[m] for m in ("mixtral:8x7b", "olmoe:7b")}
    assert second["olmoe:7b"] == charts.PALETTE[charts.name_color("olmoe:7b")]


def test_row_labels_are_not_clipped_on_the_left() -> None:
    label = "qwen3:30b-a3b-instruct-q4_K_M"  # 29 characters
    svg = charts.box_strip([charts.Dist(label, [1.0, 2.0, 3.0])], "latency (s)")
    x = float(re.search(r'<text x="([\d.]+)"[^>]*text-anchor="end"[^>]*>' + re.escape(label),
                        svg).group(1))
    assert x - 7.2 * len(label) >= 0
    bars = charts.grouped_bars([(label, [charts.Bar("m", 0.5, 0.4, 0.6)])], "accuracy")
    x = float(re.search(r'<text x="([\d.]+)"[^>]*font-weight="600"', bars).group(1))
    assert x - 7.2 * len(label) >= 0


def test_scatter_labels_stay_inside_the_plot_and_off_the_markers() -> None:
    points = [charts.Point(f"model-{i}", 10.0 + (i % 2) * 0.3, 0.5 + 0.01 * i, 0.3, 0.7)
              for i in range(4)] + [charts.Point("edge-model-with-long-name", 40.0, 0.99,
                                                 0.9, 1.0), charts.Point("zero", 0.2, 0.0,
                                                                         0.0, 0.1)]
    width, height, left, right, top, bottom = 680, 400, 64, 24, 16, 48
    svg = charts.scatter(points, "decode tok/s", "accuracy", width, height)
    markers = [(float(cx), float(cy)) for cx, cy in
               re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="6"', svg)]
    for x, y, anchor, label in re.findall(
            r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="(start|end|middle)" '
            r'fill="#222">([^<]+)</text></g>', svg):
        w = 7.0 * len(label)
        x0 = {"start": float(x), "end": float(x) - w, "middle": float(x) - w / 2}[anchor]
        box = (x0, float(y) - 11, x0 + w, float(y) + 2)
        assert left <= box[0] and box[2] <= width - right, label
        assert top <= box[1] and box[3] <= height - bottom, label
        assert not any(box[0] < mx + 6 and mx - 6 < box[2] and box[1] < my + 6 and my - 6 < box[3]
                       for mx, my in markers), label


def test_page_shows_hardware_and_generation_settings(tmp_path: Path) -> None:
    out = tmp_path / "results"
    build_run(out)
    db = sqlite3.connect(out / "moebench.db")
    db.execute("""UPDATE runs SET machine = '{"cpu": "AMD EPYC 7B13", "cores": 2,
                  "ram_bytes": 25769803776, "gpu": "NVIDIA H200"}',
                  options = '{"repeats": 3, "concurrency": 2, "timeout": 300.0}'""")
    db.execute("""UPDATE samples SET options = '{"temperature": 0, "seed": 7}'""")
    db.commit()
    assert runner.invoke(app, ["report", "r1", "--html", "r.html"]).exit_code == 0
    html = Path("r.html").read_text()
    section = html[html.index('<section id="settings">'):html.index('<section id="samples">')]
    assert "AMD EPYC 7B13 · 2 cores · 25.77 GB RAM · NVIDIA H200" in section
    assert "repeats 3 · concurrency 2 · timeout 300.0" in section
    assert "seed 7 · temperature 0" in section and "why/nine, why/sum, why/add" in section


@pytest.mark.chromium
@pytest.mark.skipif(os.environ.get("MOEBENCH_CHROMIUM") != "1",
                    reason="opt-in: MOEBENCH_CHROMIUM=1 (needs headless chromium)")
def test_no_table_scrolls_sideways_at_1400px(tmp_path: Path) -> None:
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no chromium installed (apt-get install -y chromium)")
    build_run(tmp_path / "results")
    assert runner.invoke(app, ["report", "r1", "--html", "r.html"]).exit_code == 0
    for report in ([], ["r.html"]):  # the demo report (6 models, 2 runs) and a stored one
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_report_chromium.py"),
                               *report, "--png", str(tmp_path / "shot.png")],
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
