"""Load an HTML report in headless Chromium: no JS/console errors, no injected script, a PNG.

Usage:
    python scripts/check_report_chromium.py [REPORT.html] [--png shot.png]

Without REPORT a demo report is built from the synthetic frames in tests/_report_frames.py,
with hostile model output (`<script>`, `<img onerror>`) planted in the samples. Checks:
  1. the page script ran to the end (`<html data-js-ready="1">` in the dumped DOM);
  2. no uncaught error (`data-js-error`) and no console error / CSP refusal in Chromium's log;
  3. planted script did not run (`data-xss` absent);
  4. no table needs horizontal scrolling in a 1400 px window (`data-wide-tables` empty);
then writes a full-page-height screenshot. Exit 0 when all checks pass, 1 otherwise,
2 when no Chromium is installed (Debian: apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]
HOSTILE = ("<script>document.documentElement.setAttribute('data-xss','1')</script>"
           "<img src=x onerror=\"document.documentElement.setAttribute('data-xss','2')\">")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def demo_report(path: Path) -> None:
    """Write a demo report (3 models, repeats, an engine router, hostile outputs) to path."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    import pandas as pd
    from _report_frames import demo_models, demo_router, demo_runs, demo_samples

    from moebench.report.html_report import render_html

    samples = pd.concat([demo_samples(repeats=2), demo_samples(seed=5, run_id="r2")])
    samples = samples.reset_index(drop=True)
    samples.loc[0, "output"] = HOSTILE
    samples.loc[1, ["answer", "model"]] = [HOSTILE, samples.loc[1, "model"]]
    samples.loc[2, ["error", "passed"]] = ["timeout after 30 s", False]
    models = pd.concat([demo_models(), demo_models("r2")])
    html = render_html(samples, models, demo_router(model="olmoe:7b"),
                       demo_runs(("r1", "r2")))
    path.write_text(html, encoding="utf-8")


def _chromium(binary: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180, check=False)


def check(binary: str, report: Path, png: Path, height: int = 4000) -> list[str]:
    """Problems found loading `report` (empty = fine); writes the screenshot to `png`."""
    url = report.resolve().as_uri()
    dom = _chromium(binary, ["--enable-logging=stderr", "--v=0", "--window-size=1400,4000",
                             "--dump-dom", url])
    problems = []
    html_tag = re.search(r"<html[^>]*>", dom.stdout)
    tag = html_tag.group(0) if html_tag else ""
    if 'data-js-ready="1"' not in tag:
        problems.append(f"page script did not finish (html tag: {tag or 'none'!r})")
    if "data-js-error" in tag:
        problems.append(f"uncaught script error: {tag}")
    wide = re.search(r'data-wide-tables="([^"]*)"', tag)
    if wide and wide.group(1).strip():
        problems.append(f"tables need horizontal scrolling at 1400 px: {wide.group(1)}")
    if "data-xss" in tag:
        problems.append("planted model output ran as script (escaping broken)")
    for line in dom.stderr.splitlines():
        if "CONSOLE" in line or "Refused to" in line or "Uncaught" in line:
            problems.append(f"console: {line.strip()}")
    shot = _chromium(binary, [f"--window-size=1400,{height}", f"--screenshot={png}", url])
    if not png.exists():
        problems.append(f"no screenshot written: {shot.stderr.strip()[-300:]}")
    return problems


def main() -> int:
    """Command-line entry: build or take a report, check it, print the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", type=Path, help="report HTML (default: a demo)")
    parser.add_argument("--png", type=Path, default=Path("report.png"), help="screenshot path")
    parser.add_argument("--height", type=int, default=4000, help="screenshot height in px")
    args = parser.parse_args()
    binary = find_chromium()
    if binary is None:
        print("no chromium found — install it: apt-get install -y chromium", file=sys.stderr)
        return 2
    report = args.report
    if report is None:
        report = Path(tempfile.mkdtemp()) / "demo-report.html"
        demo_report(report)
    problems = check(binary, report, args.png, args.height)
    for p in problems:
        print(f"FAIL {p}")
    if not problems:
        print(f"ok: {report} rendered without errors; screenshot {args.png}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
