"""How long the statistics and the HTML report take on bigger runs (synthetic frames).

Usage: python benchmarks/bench_report.py  — prints one row per size: samples, seconds for
the summary statistics (`task_table` + `model_table`), the paired matrix, the whole HTML
render, and the HTML size. No model is called.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from _report_frames import demo_models, demo_router, demo_samples  # noqa: E402

from moebench.report.compare import paired_matrix  # noqa: E402
from moebench.report.html_report import render_html  # noqa: E402
from moebench.report.metrics import model_table, task_table  # noqa: E402


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    """Print the timing table."""
    print(f"{'samples':>8} {'stats s':>8} {'paired s':>9} {'html s':>7} {'html MB':>8}")
    for cases, repeats in ((12, 1), (100, 3), (500, 3)):
        samples = demo_samples(cases=cases, repeats=repeats, tasks=("a", "b", "c", "d"))
        models = demo_models()
        _, stats = _timed(lambda: (task_table(samples, models), model_table(samples, models)))
        _, paired = _timed(paired_matrix, samples, True)
        html, render = _timed(render_html, samples, models,
                              demo_router(model="olmoe:7b", layers=16, experts=64), None)
        print(f"{len(samples):>8} {stats:>8.2f} {paired:>9.2f} {render:>7.2f} "
              f"{len(html.encode()) / 1e6:>8.2f}")


if __name__ == "__main__":
    main()
