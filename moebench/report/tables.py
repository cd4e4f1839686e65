"""Rich tables for `suites list` and for run-vs-run comparisons (`report --compare`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd


def _shown_path(path: Path, folder: Path | None) -> str:
    """A suite's file: its name when the title names its folder, else relative to the cwd."""
    if folder is not None:
        return path.name
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def suites_table(suites: list[Any]) -> Table:
    """One row per task: suite, file, task, scorer(s), cases."""
    folders = {s.path.resolve().parent for s in suites}
    folder = folders.pop() if len(folders) == 1 else None
    title = f"suites in {folder}" if folder is not None else None
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in (("suite", "left"), ("file", "left"), ("task", "left"),
                          ("scorer", "left"), ("cases", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for suite in suites:
        for i, task in enumerate(suite.tasks):
            scorers = sorted({case.scorer.name for case in task.cases})
            first = i == 0
            file = _shown_path(suite.path, folder) if first else ""
            table.add_row(suite.name if first else "", file, task.name, ", ".join(scorers),
                          str(len(task.cases)),
                          end_section=i == len(suite.tasks) - 1)
    return table


def run_comparison_table(frame: pd.DataFrame, run_a: str, run_b: str) -> Table:
    """The paired run-vs-run table: accuracy of A and B on the same cases, CI, p, verdict,
    and the warm median latency of each run with its change (B − A)."""
    from moebench.report.cells import (
        fmt_p, fmt_pct, fmt_points, fmt_secs, latency_delta_text,
    )

    table = Table(title=f"{run_a} (A) vs {run_b} (B), same cases", title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, header_style="bold",
                  caption="p50 = warm median latency in seconds; Δ = B − A",
                  caption_justify="left")
    for name in ("model", "task", "n", "acc A", "acc B", "A − B [95% CI]", "p", "verdict",
                 "p50 A", "p50 B", "Δ p50"):
        table.add_column(name, justify="left" if name in ("model", "task", "verdict") else
                         "right", no_wrap=name != "model")
    for r in frame.itertuples(index=False):
        verdict = {"A better": f"{r.run_a} better", "B better": f"{r.run_b} better"}.get(
            r.verdict, r.verdict)
        lat = (getattr(r, "latency_a", None), getattr(r, "latency_b", None))
        table.add_row(escape(str(r.model)), escape(str(r.task)), str(r.n), fmt_pct(r.acc_a),
                      fmt_pct(r.acc_b), f"{fmt_points(r.diff)} [{fmt_points(r.diff_low)}, "
                      f"{fmt_points(r.diff_high)}]", fmt_p(r.p_value).lstrip("= "),
                      escape(verdict), fmt_secs(lat[0]), fmt_secs(lat[1]),
                      latency_delta_text(getattr(r, "latency_delta", None),
                                         getattr(r, "latency_delta_pct", None)))
    return table


def machines_table(runs: list[dict[str, Any]]) -> Table:
    """One row per run (`Store.run` rows): the machine it ran on and how, so a comparison of
    runs from two machines (`moebench merge`) says which hardware it compares."""
    from moebench.report.html_report import settings_row

    table = Table(title="machines", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, header_style="bold")
    for name in ("run", "machine", "hardware", "backend", "host", "server", "moebench"):
        table.add_column(name, overflow="fold")
    for run in runs:
        row = settings_row(run)
        table.add_row(escape(str(row["run_id"])), escape(str(run.get("host_name") or "–")),
                      escape(row["hardware"]), escape(row["backend"]), escape(row["host"]),
                      escape(row["server"]), escape(row["version"]))
    return table
