"""Rich rendering for `moebench pull`, `models` and `ps`: progress bars and model tables.

Only draws; the facts come from `moebench.backends.ollama_api` (`PullProgress`, `ModelInfo`).
Sizes are decimal (GB), as `ollama list` prints them.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from moebench.types import ModelInfo

if TYPE_CHECKING:
    from moebench.backends.ollama_api import PullProgress


def format_bytes(n: int | None) -> str:
    """`26 GB`, `822 MB`, `12 KB` (decimal, like `ollama list`); `-` when unknown."""
    if n is None:
        return "-"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{n} B"


def processor(info: ModelInfo) -> str:
    """Where the model sits, like `ollama ps`: `100% GPU`, `100% CPU`, `55%/45% CPU/GPU`."""
    share = info.gpu_share
    if share is None:
        return "-"
    gpu = round(share * 100)
    if gpu >= 100:
        return "100% GPU"
    if gpu <= 0:
        return "100% CPU"
    return f"{100 - gpu}%/{gpu}% CPU/GPU"


def _int(value: int | None) -> str:
    return "-" if value is None else str(value)


def _table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, collapse_padding=True)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left",
                         no_wrap=name not in ("name",))
    return table


def models_table(models: list[ModelInfo]) -> Table:
    """`moebench models`: local models with size, family, quantization and MoE facts."""
    table = _table("name", "id", "size", "family", "params", "quant", "context", "experts",
                   "top-k", "shared", right=("size", "params", "context", "experts", "top-k",
                                              "shared"))
    for m in models:
        table.add_row(escape(m.name), (m.digest or "")[:12], format_bytes(m.size_bytes),
                      escape(m.family or "-"), m.parameter_size or "-", m.quantization or "-",
                      _int(m.context_length), _int(m.experts) if m.experts else "dense",
                      _int(m.top_k) if m.experts else "-",
                      _int(m.shared_experts) if m.experts else "-")
    return table


def _until(info: ModelInfo) -> str:
    raw = info.extra.get("expires_at")
    if not raw:
        return "-"
    when = datetime.fromisoformat(str(raw))
    if when.year > datetime.now().year + 100:
        return "forever"
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def ps_table(models: list[ModelInfo]) -> Table:
    """`moebench ps`: loaded models, resident memory, CPU/GPU split, context, expiry."""
    table = _table("name", "id", "size", "vram", "processor", "context", "until",
                   right=("size", "vram", "context"))
    for m in models:
        table.add_row(escape(m.name), (m.digest or "")[:12], format_bytes(m.size_bytes),
                      format_bytes(m.vram_bytes), processor(m),
                      _int(m.extra.get("loaded_context_length")), _until(m))
    return table


class PullView:
    """`moebench pull` on stderr: a live download bar per layer on a terminal; elsewhere (CI
    logs, pipes) one line per finished layer. Status lines are printed as they come."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=False),
            TransferSpeedColumn(), TimeRemainingColumn(), console=console)
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._finished: set[tuple[str, str]] = set()

    def __enter__(self) -> PullView:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.live:
            self.progress.stop()

    def update(self, line: PullProgress) -> None:
        """Draw one `/api/pull` progress line."""
        name = escape(line.model)
        if line.digest is None:
            self.console.print(f"[dim]{name}: {escape(line.status)}[/]")
            return
        key = (line.model, line.digest)
        if not self.live:
            if line.total and line.completed == line.total and key not in self._finished:
                self._finished.add(key)
                self.console.print(f"{name}: {escape(line.status)} "
                                   f"{format_bytes(line.total)} done")
            return
        if key not in self._tasks:
            self._tasks[key] = self.progress.add_task(f"{name} {escape(line.status)}",
                                                      total=line.total or None)
        self.progress.update(self._tasks[key], total=line.total or None,
                             completed=line.completed or 0)
