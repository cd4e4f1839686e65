"""Rich rendering for runs: the live progress bar, the results table, model lines, run lists.

Everything here only draws: numbers come from `moebench.report.summary` / `moebench.store` (as
frames, or as plain rows, so a plain run never imports pandas).
The progress display implements `runner.RunEvents`; on a terminal it is a live bar
(model, task, done/total, elapsed, ETA, tok/s), elsewhere (CI logs, pipes) one line per model.
"""

from __future__ import annotations

import math
import time
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

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

#: a table to draw: a frame, or dict rows with the same columns (`summary_rows`, `model_rows`)
Rows = Union["pd.DataFrame", Sequence[Mapping[str, Any]]]


@dataclass
class _Bar:
    """One model bar (or, on several hosts, one host's bar) and what it has counted."""

    task: TaskID
    label: str = ""
    model: str = ""
    started: float = 0.0
    done: int = 0
    errors: int = 0
    where: tuple[str, str, str] | None = None


class RichProgress:
    """RunEvents drawn on `console` (stderr); use as a context manager around `runner.run`.

    On a terminal: one bar for the whole run (samples done of all models, running accuracy,
    errors so far) above one bar per model (task being run, ETA, last decode speed) — or, when
    several hosts run models in parallel (`on_hosts`), one bar per host showing its model.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            TextColumn("{task.fields[speed]}"), console=console, disable=not self.live,
            transient=False)
        self._overall: TaskID | None = None
        self._per_model = 0
        self._hosts: dict[str, _Bar] = {}  # host label → its bar (several hosts only)
        self._bars: dict[str, _Bar] = {}  # model name → the bar it advances
        self._last: _Bar | None = None
        self.tally = RunningTally()

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_run_start(self, models: int, per_model: int) -> None:
        """The overall bar: every sample of every model."""
        self._per_model = per_model
        self._overall = self.progress.add_task("all models", total=models * per_model,
                                               speed=self.tally.text())

    def on_hosts(self, labels: Sequence[str]) -> None:
        """Several hosts work in parallel: one bar per host from now on."""
        for label in labels:
            task = self.progress.add_task(escape(f"{label} · waiting"), total=None, speed="")
            self._hosts[label] = _Bar(task, label)

    def on_model_start(self, info: ModelInfo, total: int) -> None:
        """A new bar for the model (its warm-up is already done), or its host's bar."""
        if self._overall is not None and self._per_model > total:  # kept from before
            self.progress.advance(self._overall, self._per_model - total)
        load = f" (loaded in {info.load_s:.1f} s)" if info.load_s is not None else ""
        compiled = compile_part(info.extra) or ""
        if load and compiled.startswith("compiled"):  # the fallback has its own note
            load = f"{load[:-1]}, {compiled})"
        if not self.live:
            self.console.print(f"{escape(info.name)}{load}: {total} samples to run",
                               soft_wrap=True, highlight=False)
        bar = self._hosts.get(_label(info.host)) if self._hosts else None
        if bar is None:
            bar = _Bar(self.progress.add_task(escape(info.name), total=total, speed=""))
        else:
            self.progress.reset(bar.task, total=total, description=escape(
                f"{bar.label} · {info.name}"), speed="")
        bar.model, bar.started, bar.done, bar.errors, bar.where = (
            info.name, time.perf_counter(), 0, 0, None)
        self._bars[info.name] = self._last = bar

    def on_sample(self, record: Record) -> None:
        """Advance the bars; show the task being run, the last decode speed, the tally."""
        self.tally.add(record)
        if self._overall is not None:
            self.progress.update(self._overall, advance=1, speed=self.tally.text())
        bar = self._bars.get(record.model, self._last)
        if bar is None:
            return
        bar.done += 1
        bar.errors += record.error is not None
        tps = record.completion.tokens_per_s if record.completion else None
        req = record.request
        where = (record.model, req.suite, req.task)
        if where != bar.where:  # the description changes once per task, not per sample
            bar.where = where
            prefix = f"{bar.label} · " if bar.label else ""
            self.progress.update(bar.task, description=escape(
                f"{prefix}{record.model} · {req.suite}/{req.task}"))
        self.progress.update(bar.task, advance=1, speed=f"{tps:.1f} tok/s" if tps else "")

    def on_model_end(self, info: ModelInfo) -> None:
        """Close the model's bar (or print its one-line summary off-terminal)."""
        bar = self._bars.get(info.name)
        if bar is None:
            return
        prefix = f"{bar.label} · " if bar.label else ""
        self.progress.update(bar.task, description=escape(f"{prefix}{info.name}"))
        if not self.live:
            elapsed = time.perf_counter() - bar.started
            self.console.print(f"{escape(info.name)}: {bar.done} samples, {bar.errors} "
                               f"errors in {elapsed:.1f} s · run so far: "
                               f"{self.tally.text(markup=False)}", soft_wrap=True,
                               highlight=False)

    def on_note(self, message: str) -> None:
        """One dim line above the bars."""
        self.console.print(f"[dim]{escape(message)}[/]", soft_wrap=True, highlight=False)


def _label(host: str | None) -> str:
    from moebench.hosts import host_label

    return host_label(host) if host else ""


class RunningTally:
    """Passed / scored and errors so far, over every model of the run."""

    def __init__(self) -> None:
        self.scored = self.passed = self.errors = 0

    def add(self, record: Record) -> None:
        """Count one sample (an error counts as an error, not as a scored sample)."""
        if record.error is not None:
            self.errors += 1
        elif record.score is not None:
            self.scored += 1
            self.passed += bool(record.score.passed)

    def text(self, markup: bool = True) -> str:
        """`acc 75% (3/4) · 1 error`."""
        acc = f"acc {self.passed / self.scored:.0%} ({self.passed}/{self.scored})" if (
            self.scored) else "acc –"
        errors = f"{self.errors} error{'s' if self.errors != 1 else ''}"
        if markup and self.errors:
            errors = f"[red]{errors}[/]"
        return f"{acc} · {errors}"


# ---- tables -----------------------------------------------------------------------------


def _num(value: Any, fmt: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:{fmt}}{suffix}"


def _ci(row: Any) -> str:
    if not row.n:
        return "–"
    return f"{row.accuracy_low * 100:.0f}–{row.accuracy_high * 100:.0f}%"


def row_tuples(table: Rows) -> list[Any]:
    """The rows of a frame or of a list of dicts as named tuples (`row.model`, `_asdict()`)."""
    if hasattr(table, "itertuples"):
        return list(table.itertuples(index=False))
    if not table:
        return []
    row_type = namedtuple("Row", list(table[0]))  # type: ignore[misc]
    return [row_type(**row) for row in table]


#: summary columns: (header, cell function); those in _OPTIONAL are dropped, first first,
#: when the table would not fit the terminal (task names never wrap mid-word instead)
_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("acc", lambda r: _num(r.accuracy * 100, ".0f", "%")), ("95% CI", _ci),
    ("passed", lambda r: f"{r.passed}/{r.n}"), ("p50", lambda r: _num(r.latency_p50_s, ".2f")),
    ("p95", lambda r: _num(r.latency_p95_s, ".2f")), ("TTFT", lambda r: _num(r.ttft_p50_s, ".2f")),
    ("in tok", lambda r: _num(getattr(r, "prompt_tokens_p50", None), ".0f")),
    ("prefill/s", lambda r: _num(getattr(r, "prefill_tokens_per_s", None), ".0f")),
    ("out tok", lambda r: _num(getattr(r, "output_tokens_p50", None), ".0f")),
    ("tok/s", lambda r: _num(r.tokens_per_s, ".1f")),
    ("err", lambda r: f"[red]{r.errors}[/]" if r.errors else "0"),
)
_OPTIONAL = ("in tok", "out tok", "p95", "prefill/s", "TTFT", "passed", "95% CI")
#: cells that replace the figures of a model whose load failed
_FAILED_CELLS = {"acc": "[red]load failed[/]", "95% CI": "–"}
_CAPTION = "seconds; in/out tok: median prompt/output tokens; prefill/s, tok/s: their speeds"


def summary_table(summary: Rows, title: str | None = None,
                  width: int | None = None,
                  failed: frozenset[tuple[str, str]] = frozenset()) -> Table:
    """Rows model × suite/task: accuracy with its 95% CI, latency p50/p95, TTFT, tokens in and
    out with their speeds (as `ollama run --verbose`), errors.

    `width`: the terminal's width; optional columns are left out until the table fits.
    Models in `failed` ((run_id, model) pairs whose load failed) say so in the accuracy cell.
    """
    shown = [name for name, _ in _COLUMNS]
    table = _summary_table(summary, title, shown, failed)
    for name in _OPTIONAL:
        if width is None or _width(table) <= width:
            break
        shown.remove(name)
        table = _summary_table(summary, title, shown, failed)
    hidden = [name for name, _ in _COLUMNS if name not in shown]
    table.caption = _CAPTION + (f"; hidden to fit {width} columns: {', '.join(hidden)}"
                                if hidden else "")
    return table


def _width(table: Table) -> int:
    return Console(width=1000).measure(table).maximum


def _summary_table(summary: Rows, title: str | None, shown: list[str],
                   failed: frozenset[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  show_edge=False, padding=(0, 1, 0, 0), caption_justify="left")
    rows = row_tuples(summary)
    runs = len({row.run_id for row in rows}) > 1  # several runs: say which row is which
    if runs:
        table.add_column("run", no_wrap=True)
    width = max([len(str(row.model)) for row in rows] + [5])
    table.add_column("model", no_wrap=True, min_width=min(width, 40), overflow="ellipsis")
    table.add_column("task", no_wrap=True, overflow="ellipsis")
    cells = [(name, fn) for name, fn in _COLUMNS if name in shown]
    for name, _ in cells:
        table.add_column(name, justify="right", no_wrap=True)
    previous = None
    for row in rows:
        key = (row.run_id, row.model)
        model = "" if key == previous else escape(str(row.model))
        lead = ([row.run_id if key[0] != (previous or ("",))[0] else ""] if runs else [])
        previous = key
        task = row.task if row.task == row.suite else f"{row.suite}/{row.task}"
        overrides = _FAILED_CELLS if key in failed else {}
        table.add_row(*lead, model, escape(str(task)),
                      *(overrides.get(name) or fn(row) for name, fn in cells))
    return table


def model_line(row: Any) -> str:
    """`name: load 1.2 s · 4.10 GB (100% GPU) · 8 experts, top-2 · 1 load` for one model, or
    `name: load failed: <reason> — <hint>` for one that could not be loaded."""
    reason = load_error(row)
    if reason is not None:
        hint = (row.extra or {}).get("load_hint") if isinstance(row.extra, dict) else None
        return f"{row.model}: load failed: {reason}" + (f" — {hint}" if hint else "")
    info = ModelInfo.from_row(row._asdict())
    parts = [f"load {_num(row.load_s, '.2f', ' s')}"]
    compiled = compile_part(getattr(row, "extra", None))
    if compiled:
        parts.append(compiled)
    if info.size_bytes:
        split = f" ({info.memory_split()})" if info.memory_split() else ""
        parts.append(f"memory {human_bytes(info.size_bytes)}{split}")
    if info.experts_line():
        parts.append(info.experts_line())
    quantization = getattr(row, "quantization", None)
    if isinstance(quantization, str) and quantization.startswith("GGUF"):
        parts.append(quantization)  # torch runs of GGUF weights: `GGUF Q4_K_M · 4.8 bits/weight`
    loads = _int(row.loads)
    if loads is not None:
        parts.append(f"{loads} load{'s' if loads != 1 else ''}")
    return f"{row.model}: " + " · ".join(parts)


def compile_part(extra: Any) -> str | None:
    """`compiled in 16.3 s` (`--compile`, timed apart from the load), `eager (not compiled)`
    when it fell back, `native decode` (`--native`), None without either."""
    if not isinstance(extra, dict):
        return None
    if extra.get("decode_step") == "native":  # `--native`: the C step, built in well under 1 s
        return "native decode"
    seconds = extra.get("compile_s")
    if isinstance(seconds, (int, float)):
        return f"compiled in {seconds:.1f} s"
    return "eager (not compiled)" if extra.get("compile_error") else None


def load_error(row: Any) -> str | None:
    """The stored reason a model's load failed (models_frame row), or None."""
    extra = getattr(row, "extra", None)
    if isinstance(extra, dict) and extra.get("status") == "failed":
        return str(extra.get("load_error") or "unknown error")
    return None


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


def print_results(console: Console, summary: Rows, models: Rows,
                  title: str | None = None) -> None:
    """The results table and one line per model (load, memory, experts, loads)."""
    width = console.width if console.is_terminal else None
    failed = frozenset((r.run_id, r.model) for r in row_tuples(models)
                       if load_error(r) is not None)
    print_table(console, summary_table(summary, title, width=width, failed=failed))
    for row in row_tuples(models):
        console.print(escape(model_line(row)), soft_wrap=True, highlight=False)
