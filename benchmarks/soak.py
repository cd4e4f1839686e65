"""Soak: many samples through the whole harness at `--concurrency 4`, watching memory and disk.

The Ollama stand-in runs in its own process (so its request log does not count against us);
the run is `moebench.runner.run` with the real Ollama backend, scorers and store. It prints:
ms per sample (request phase wall / samples), this process's RSS after 1k samples and at the
end (goal: growth <= 30 MB), the peak RSS, the store size per sample, and the peak RSS of
building the report afterwards (what `moebench report` holds in memory).

    python benchmarks/soak.py [--n 10000] [--cases 100] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from moebench.runner import NullEvents, RunOptions, run
from moebench.types import ModelInfo, Record

MODEL = "mixtral:8x7b"
MB = 1024 * 1024


class Watch(NullEvents):
    """Samples stored so far, and the RSS at the checkpoints."""

    def __init__(self, checkpoints: tuple[int, ...]) -> None:
        self.process = psutil.Process()
        self.checkpoints = checkpoints
        self.rss: dict[int, int] = {}
        self.done = 0
        self.start = self.end = 0.0

    def on_model_start(self, info: ModelInfo, total: int) -> None:
        self.start = time.perf_counter()

    def on_sample(self, record: Record) -> None:
        self.done += 1
        if self.done in self.checkpoints:
            self.rss[self.done] = self.process.memory_info().rss
        self.end = time.perf_counter()


def suite_file(folder: Path, cases: int) -> Path:
    """A suite of `cases` arithmetic cases scored by `number`."""
    lines = ["suite: soak", "tasks:", "  - name: add", "    scorer: number",
             "    prompt: 'Q: {question}'", "    cases:"]
    lines += [f"      - {{id: c{k}, question: '{k}+{k}', expected: {2 * k}}}"
              for k in range(cases)]
    path = folder / "soak.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_standin() -> tuple[subprocess.Popen[str], str]:
    """The stand-in in a subprocess with 4 slots; returns it and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "moebench.testing.ollama_standin", "--port", "0",
         "--parallel", "4", "--model", MODEL, "--answer", "The answer is 4."],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"stand-in did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples in all")
    parser.add_argument("--cases", type=int, default=100, help="cases (n / cases repeats)")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    repeats = max(1, args.n // args.cases)
    n = repeats * args.cases
    first = min(1000, n)
    proc, url = start_standin()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            watch = Watch((first, n))
            result = run(RunOptions(models=[MODEL], suites=[suite_file(Path(tmp), args.cases)],
                                    host=url, out=Path(tmp) / "out", repeats=repeats,
                                    concurrency=args.concurrency), watch)
            peak_run = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            db_bytes = sum(p.stat().st_size for p in result.db_path.parent.glob("moebench.db*"))
            report_peak = report_rss(Path(tmp) / "out", result.run_id)
    finally:
        proc.kill()
        proc.wait()
    show(n, args.concurrency, watch, result.errors, peak_run, db_bytes, report_peak, first)


def report_rss(out: Path, run_id: str) -> int:
    """Peak RSS of building the run's report (summary + frames) in a fresh process."""
    code = ("import resource,sys; from pathlib import Path; "
            "from moebench.report.summary import build_report; "
            f"build_report(Path({str(out)!r}), [{run_id!r}]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.strip().splitlines()[-1])


def show(n: int, concurrency: int, watch: Watch, errors: int, peak: int, db_bytes: int,
         report_peak: int, first: int) -> None:
    wall = watch.end - watch.start
    growth = (watch.rss.get(n, 0) - watch.rss.get(first, 0)) / MB
    table = Table(title=f"soak: {n} samples, concurrency {concurrency}, stand-in subprocess")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("goal", justify="right")
    table.add_row("samples stored (errors)", f"{watch.done} ({errors})", f"{n} (0)")
    table.add_row("ms / sample", f"{wall / max(watch.done, 1) * 1000:.2f}", "")
    table.add_row(f"RSS after {first} samples", f"{watch.rss.get(first, 0) / MB:.1f} MB", "")
    table.add_row(f"RSS after {n} samples", f"{watch.rss.get(n, 0) / MB:.1f} MB", "")
    table.add_row("RSS growth", f"{growth:+.1f} MB", "<= 30 MB")
    table.add_row("peak RSS of the run", f"{peak / MB:.1f} MB", "")
    table.add_row("store size / sample", f"{db_bytes / max(watch.done, 1) / 1024:.2f} KB", "")
    table.add_row("peak RSS of building the report", f"{report_peak / MB:.1f} MB", "")
    Console().print(table)


if __name__ == "__main__":
    main()
