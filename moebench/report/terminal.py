"""Rich rendering for runs: the live progress bar, the results table, model lines, run lists.

Everything here only draws: numbers come from `moebench.report.summary` / `moebench.store` frames.
The progress display implements `runner.RunEvents`; on a terminal it is a live bar
(model, task, done/total, elapsed, ETA, tok/s), elsewhere (CI logs, pipes) one line per model.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from moebench.types import ModelInfo, Record
from moebench.units import human_bytes

if TYPE_CHECKING:
    import pandas as pd


class RichProgress:
    """RunEvents drawn on `console` (stderr); use as a context manager around `runner.run`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            TextColumn("{task.fields[speed]}"), console=console, disable=not self.live,
            transient=False)
        self._task: TaskID | None = None
        self._model = ""
        self._started = 0.0
        self._done = self._errors = 0

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_model_start(self, info: ModelInfo, total: int) -> None:
        """A new bar for the model (its warm-up is already done)."""
        self._model, self._started = info.name, time.perf_counter()
        self._done = self._errors = 0
        load = f" (loaded in {info.load_s:.1f} s)" if info.load_s is not None else ""
        if not self.live:
            self.console.print(f"{escape(info.name)}{load}: {total} samples to run",
                               soft_wrap=True, highlight=False)
        self._task = self.progress.add_task(escape(info.name), total=total, speed="")

    def on_sample(self, record: Record) -> None:
        """Advance the bar; show the task being run and the last decode speed."""
        self._done += 1
        self._errors += record.error is not None
        if self._task is None:
            return
        tps = record.completion.tokens_per_s if record.completion else None
        speed = f"{tps:.1f} tok/s" if tps else ""
        req = record.request
        self.progress.update(self._task, advance=1, speed=speed,
                             description=escape(f"{record.model} · {req.suite}/{req.task}"))

    def on_model_end(self, info: ModelInfo) -> None:
        """Close the model's bar (or print its one-line summary off-terminal)."""
        if self._task is not None:
            self.progress.update(self._task, description=escape(info.name))
        if not self.live:
            elapsed = time.perf_counter() - self._started
            self.console.print(f"{escape(info.name)}: {self._done} samples, {self._errors} "
                               f"errors in {elapsed:.1f} s", soft_wrap=True, highlight=False)

    def on_note(self, message: str) -> None:
        """One dim line above the bars."""
        self.console.print(f"[dim]{escape(message)}[/]", soft_wrap=True, highlight=False)


# ---- tables -----------------------------------------------------------------------------


def _num(value: Any, fmt: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:{fmt}}{suffix}"


def _ci(row: Any) -> str:
    if not row.n:
        return "–"
    return f"{row.accuracy_low * 100:.0f}–{row.accuracy_high * 100:.0f}%"


def summary_table(summary: pd.DataFrame, title: str | None = None) -> Table:
    """Rows model × suite/task: accuracy with its 95% CI, latency p50/p95, TTFT, tok/s, errors."""
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  show_edge=False, padding=(0, 1, 0, 0), caption="latency, TTFT in seconds",
                  caption_justify="left")
    runs = summary["run_id"].nunique() > 1  # several runs: say which row is which
    if runs:
        table.add_column("run", no_wrap=True)
    width = max([len(str(m)) for m in summary["model"]] + [5])
    table.add_column("model", no_wrap=True, min_width=min(width, 40))
    table.add_column("task", overflow="fold", min_width=10)
    for name in ("acc", "95% CI", "passed", "p50", "p95", "TTFT", "tok/s", "err"):
        table.add_column(name, justify="right", no_wrap=True)
    previous = None
    for row in summary.itertuples(index=False):
        key = (row.run_id, row.model)
        model = "" if key == previous else escape(str(row.model))
        lead = ([row.run_id if key[0] != (previous or ("",))[0] else ""] if runs else [])
        previous = key
        errors = f"[red]{row.errors}[/]" if row.errors else "0"
        task = row.task if row.task == row.suite else f"{row.suite}/{row.task}"
        table.add_row(*lead, model, escape(str(task)), _num(row.accuracy * 100, ".0f", "%"), _ci(row),
                      f"{row.passed}/{row.n}", _num(row.latency_p50_s, ".2f"),
                      _num(row.latency_p95_s, ".2f"), _num(row.ttft_p50_s, ".2f"),
                      _num(row.tokens_per_s, ".1f"), errors)
    return table


def model_line(row: Any) -> str:
    """`name: load 1.2 s · 4.10 GB (100% GPU) · 8 experts, top-2 · 1 load` for one model."""
    info = ModelInfo.from_row(row._asdict())
    parts = [f"load {_num(row.load_s, '.2f', ' s')}"]
    if info.size_bytes:
        split = f" ({info.memory_split()})" if info.memory_split() else ""
        parts.append(f"memory {human_bytes(info.size_bytes)}{split}")
    if info.experts_line():
        parts.append(info.experts_line())
    loads = _int(row.loads)
    if loads is not None:
        parts.append(f"{loads} load{'s' if loads != 1 else ''}")
    return f"{row.model}: " + " · ".join(parts)


def _int(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def runs_table(runs: pd.DataFrame) -> Table:
    """Every stored run, newest first (the id encodes its UTC start time)."""
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                  padding=(0, 1, 0, 0))
    table.add_column("run id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("backend", no_wrap=True)
    table.add_column("models", min_width=12, overflow="fold")
    table.add_column("suites", min_width=6, overflow="fold")
    table.add_column("passed", justify="right", no_wrap=True)
    table.add_column("err", justify="right", no_wrap=True)
    colours = {"completed": "green", "interrupted": "yellow", "failed": "red"}
    for row in runs.itertuples(index=False):
        colour = colours.get(str(row.status).split(" ")[0])
        status = f"[{colour}]{row.status}[/]" if colour else escape(str(row.status))
        table.add_row(row.run_id, status, escape(str(row.backend)), escape(str(row.models)),
                      escape(str(row.suites)), f"{row.passed}/{row.samples}",
                      str(row.errors))
    return table


def print_table(console: Console, table: Table) -> None:
    """Print `table`; off-terminal (pipes, CI logs) at its natural width instead of 80 columns."""
    if console.is_terminal:
        console.print(table)
        return
    wide = console.measure(table, options=console.options.update(max_width=240)).maximum
    # Console.print(width=) only narrows; a same-file console of the table's width widens.
    Console(file=console.file, width=max(wide, console.width), highlight=False).print(table)


def print_results(console: Console, summary: pd.DataFrame, models: pd.DataFrame,
                  title: str | None = None) -> None:
    """The results table and one line per model (load, memory, experts, loads)."""
    print_table(console, summary_table(summary, title))
    for row in models.itertuples(index=False):
        console.print(escape(model_line(row)), soft_wrap=True, highlight=False)
