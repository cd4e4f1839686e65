"""Rich rendering for `moebench speed`: the live progress bar, the sweep table, "fastest" lines.

Only draws: the numbers come from `moebench.speed.cells`. Flagged cells show their flags in
the last column and are left out of the "fastest" lines under the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
)
from rich.table import Table

from moebench.speed.cells import Cell, Stat, fastest

_SOURCES = {
    "server": "server = the server's own durations (prompt_eval / eval)",
    "engine": "engine = the built-in engine's prefill / decode clocks",
    "client": "client = measured by moebench (prompt tok/s = prompt tokens / TTFT; tg from "
              "the first→last token gap)",
}


class SpeedProgress:
    """SpeedEvents drawn on `console` (stderr): a bar per model, or plain lines off-terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[last]}"), console=console,
                                 disable=not self.live)
        self._task: TaskID | None = None

    def __enter__(self) -> SpeedProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_note(self, message: str) -> None:
        """One dim line above the bars."""
        self.console.print(f"[dim]{escape(message)}[/]", soft_wrap=True, highlight=False)

    def on_model_start(self, model: str, requests: int) -> None:
        """A new bar for the model."""
        if not self.live:
            self.console.print(f"{escape(model)}: {requests} requests", soft_wrap=True,
                               highlight=False)
        self._task = self.progress.add_task(escape(model), total=requests, last="")

    def on_request(self, label: str) -> None:
        """Advance the bar."""
        if self._task is not None:
            self.progress.update(self._task, advance=1)

    def on_cell(self, cell: Cell) -> None:
        """Show the last finished cell's generation speed next to the bar."""
        tg = cell.stat("tg_tok_s").mean
        last = f"pp{cell.prompt_tokens}×{cell.concurrency}: {tg:.1f} tok/s" if tg else ""
        if self._task is not None:
            self.progress.update(self._task, last=last)
        if not self.live:
            self.console.print(f"{escape(cell.model)} {escape(last)}", soft_wrap=True,
                               highlight=False)


def _pm(stat: Stat, digits: int) -> str:
    if stat.mean is None:
        return "–"
    return f"{stat.mean:.{digits}f} ± {stat.sd or 0:.{digits}f}"


def _med(stat: Stat, digits: int) -> str:
    return "–" if stat.median is None else f"{stat.median:.{digits}f}"


def _digits(value: float | None) -> int:
    return 0 if value is not None and value >= 100 else 1 if value and value >= 10 else 2


def flag_text(cell: Cell) -> str:
    """The raised flags, with detail (GPU share, early stops, resident models)."""
    out = []
    flags = cell.flags()
    share = cell.placement.gpu_share
    if flags["partial_offload"] and share is not None:
        out.append(f"partial_offload ({share:.0%} GPU)")
    if flags["other_models_resident"]:
        out.append(f"other_models_resident ({', '.join(cell.placement.other_models)})")
    if flags["early_stop"]:
        out.append(f"early_stop ({cell.early_stops}/{len(cell.samples)})")
    out += [name for name in ("high_variance", "cpu_only") if flags[name]]
    if cell.errors:
        out.append(f"{cell.errors} failed")
    return ", ".join(out)


def speed_table(cells: Sequence[Cell], title: str | None = None) -> Table:
    """One row per cell: pp / tg tok/s (mean ± sd, median), TTFT, aggregate, roofline, flags."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("model", "prompt", "conc"):
        table.add_column(name, no_wrap=True, justify="left" if name == "model" else "right")
    for name in ("pp tok/s", "pp med", "tg tok/s", "tg med", "TTFT s", "TTFT med",
                 "agg tok/s", "roofline", "% roof", "load s", "GPU"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("timing")
    table.add_column("flags", style="yellow")
    for c in cells:
        pp, tg, ttft = c.stat("pp_tok_s"), c.stat("tg_tok_s"), c.stat("ttft_s")
        share = c.placement.gpu_share
        table.add_row(
            escape(c.model), str(c.prompt_tokens), str(c.concurrency),
            _pm(pp, _digits(pp.mean)), _med(pp, _digits(pp.mean)), _pm(tg, _digits(tg.mean)),
            _med(tg, _digits(tg.mean)), _pm(ttft, 3), _med(ttft, 3),
            _pm(c.aggregate, _digits(c.aggregate.mean)),
            "–" if c.roofline_tok_s is None else f"{c.roofline_tok_s:.0f}",
            "–" if c.roofline_pct is None else f"{c.roofline_pct:.0f}%",
            "–" if c.load_s is None else f"{c.load_s:.2f}",
            "–" if share is None else f"{share:.0%}", c.timing_source or "–",
            escape(flag_text(c)))
    return table


def fastest_lines(cells: Sequence[Cell]) -> list[str]:
    """`fastest generation: …` / `fastest prompt processing: …` over unflagged cells."""
    lines = []
    for measure, what in (("tg_tok_s", "generation"), ("pp_tok_s", "prompt processing")):
        best = fastest(cells, measure)
        left = f" ({best.left_out} flagged cells left out)" if best.left_out else ""
        if best.cell is None:
            lines.append(f"fastest {what}: no unflagged cell to claim it{left}")
            continue
        c = best.cell
        lines.append(f"fastest {what}: {c.model} at {c.prompt_tokens} prompt tokens, "
                     f"concurrency {c.concurrency}: {best.value:.1f} tok/s{left}")
    return lines


def print_speed(console: Console, cells: Sequence[Cell], title: str | None = None) -> None:
    """The sweep table, the timing-source legend, the roofline caveat and the fastest lines."""
    from moebench.report.terminal import print_table

    print_table(console, speed_table(cells, title))
    sources = sorted({c.timing_source for c in cells if c.timing_source})
    console.print("timing: " + "; ".join(_SOURCES[s] for s in sources if s in _SOURCES),
                  soft_wrap=True, highlight=False, markup=False)
    if any(c.roofline_tok_s for c in cells):
        console.print("roofline: bandwidth / active weight bytes per token, an upper bound on "
                      "tg tok/s (KV-cache reads and compute not counted)", soft_wrap=True,
                      highlight=False, markup=False)
    for line in fastest_lines(cells):
        console.print(escape(line), soft_wrap=True, highlight=False)


def report_speed_runs(console: Console, out: Path, run_ids: list[str], csv: Path | None,
                      html: Path | None) -> list[str] | None:
    """`moebench report`: re-print the speed runs among `run_ids` (and re-write their CSV /
    HTML when only speed runs were asked for); returns the other runs' ids, or None when none
    was a speed run."""
    from moebench.speed.options import SpeedOptions
    from moebench.speed.stored import load_speed_runs
    from moebench.speed.sweep import write_outputs

    stored = load_speed_runs(out, run_ids)
    if not stored.speed_ids:
        return None
    print_speed(console, [c for c, _ in stored.cells],
                title="speed run " + ", ".join(stored.speed_ids))
    files = SpeedOptions(csv=csv, html=html) if not stored.other_ids else SpeedOptions()
    for path in write_outputs(files, stored.cells, ", ".join(stored.speed_ids)):
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)
    return list(stored.other_ids)
