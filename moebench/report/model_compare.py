"""Terminal rendering of paired comparisons: model vs model, run vs run, and robustness.

Model vs model (`moebench report` of a run with two or more models, and the end of such a
`run`): per task, the best model against each other one (or every pair), with the accuracy
difference and its 95% interval, the exact McNemar p, a verdict, and the minimum detectable
difference (MDD) at 80% power for this n — so a "no detectable difference" says whether n
was too small, and about how many cases would separate the pair. Numbers come from
`moebench.report.compare`; this module only draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

Rows = Any  # a frame, or a list of dict rows (the same columns)

DETERMINISTIC_NOTE = ("repeats are deterministic: timing spread only (each case counts once "
                      "in accuracy and its interval)")


def _fmt() -> Any:
    from moebench.report import cells

    return cells


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def power_note(row: Any) -> str:
    """`compare.power_note` of a frame row (itertuples)."""
    from moebench.report.compare import power_note as note

    return note(row._asdict())


def verdict_text(row: Any, a: str, b: str) -> str:
    """`A better` → `<model a> better`; otherwise the verdict as stored."""
    return {"A better": f"{a} better", "B better": f"{b} better"}.get(row.verdict, row.verdict)


def model_pairs_table(frame: Rows, title: str | None = None) -> Table:
    """One row per task × pair: n, accuracies, A − B [95% CI], p, verdict, MDD, note
    (`frame`: `compare.model_pairs`, or its `model_pair_rows`)."""
    from moebench.report.terminal import row_tuples

    f = _fmt()
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  header_style="bold", caption="A − B, MDD in percentage points; p: exact "
                  "McNemar; MDD: minimum detectable difference at 80% power, this n",
                  caption_justify="left")
    for name in ("task", "A", "B", "n", "acc A", "acc B", "A − B [95% CI]", "p", "verdict",
                 "MDD", "note"):
        table.add_column(name, justify="right" if name in ("n", "p", "MDD") else "left",
                         overflow="fold")
    for r in row_tuples(frame):
        task = r.task if not r.suite or r.suite == r.task else f"{r.suite}/{r.task}"
        mdd = f"±{r.mdd * 100:.1f}" if _finite(r.mdd) else "–"
        table.add_row(escape(str(task)), escape(str(r.model_a)), escape(str(r.model_b)),
                      str(r.n), f.fmt_pct(r.acc_a), f.fmt_pct(r.acc_b),
                      f"{f.fmt_points(r.diff)} [{f.fmt_points(r.diff_low)}, "
                      f"{f.fmt_points(r.diff_high)}]", f.fmt_p(r.p_value).lstrip("= "),
                      escape(verdict_text(r, str(r.model_a), str(r.model_b))), mdd, escape(power_note(r)))
    return table


def variants_table(frame: Rows) -> Table:
    """Robustness: accuracy on originals vs variants and the spread across instantiations
    (`frame`: `metrics.variant_sets`, or its `variant_rows`)."""
    from moebench.report.terminal import row_tuples

    f = _fmt()
    table = Table(title="robustness to new names and numbers (GSM-Symbolic style)",
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  header_style="bold", caption="sets: the originals and each re-instantiation; "
                  "spread: min–max (sd) of accuracy across sets", caption_justify="left")
    for name in ("model", "task", "originals", "sets", "original", "variants", "drop",
                 "spread"):
        table.add_column(name, justify="left" if name in ("model", "task") else "right")
    for r in row_tuples(frame):
        sd = f" (sd {r.set_sd * 100:.1f})" if _finite(r.set_sd) else ""
        table.add_row(escape(str(r.model)), escape(str(r.task)), str(r.originals), str(r.sets),
                      f.fmt_pct(r.acc_original), f.fmt_pct(r.acc_variants),
                      f.fmt_points(r.drop),
                      f"{r.set_min * 100:.0f}–{r.set_max * 100:.0f}%{sd}")
    return table


def print_model_comparisons(console: Console, samples: Rows, pairs: str = "best") -> None:
    """Per run with two or more models: the model-vs-model table, then robustness if any.

    `samples`: `Store.sample_rows()` dicts (or a samples frame); no pandas for dicts."""
    from moebench.report.compare import model_pair_rows
    from moebench.report.metrics import variant_rows
    from moebench.report.terminal import print_table

    if hasattr(samples, "to_dict"):
        from moebench.report.figures import frame_rows

        samples = frame_rows(samples)  # type: ignore[arg-type]
    runs: dict[Any, list[Mapping[str, Any]]] = {}
    for row in samples:
        runs.setdefault(row["run_id"], []).append(row)
    for run_id, run in runs.items():
        if len({r["model"] for r in run}) >= 2:
            who = "best model vs each other" if pairs == "best" else "every pair"
            print_table(console, model_pairs_table(
                model_pair_rows(run, pairs), f"run {run_id}: model vs model, same cases ({who})"))
        variants = variant_rows(run)
        if variants:
            print_table(console, variants_table(variants))


def run_comparisons(out: Path, compare: tuple[str, str] | None,
                    run_ids: Sequence[str]) -> list[pd.DataFrame | str]:
    """Run-vs-run frames (--compare, or every pair of 2+ runs); a note for a pair of the
    reported runs that shares no case.

    Raises:
        NoCommonCases: `--compare` of two runs with no case in common (before anything is
            printed, so the user sees one line).
    """
    if not compare and len(run_ids) < 2:  # nothing to pair: no pandas/scipy for one run
        return []
    from moebench.report.compare import NoCommonCases, compare_stored_runs
    from moebench.report.html_report import run_pairs

    found: list[pd.DataFrame | str] = []
    for run_a, run_b in [compare] if compare else run_pairs(list(run_ids)):
        try:
            found.append(compare_stored_runs(out, run_a, run_b))
        except NoCommonCases as error:
            if compare:
                raise
            found.append(str(error))
    return found


def print_run_comparisons(console: Console, found: Sequence[pd.DataFrame | str]) -> None:
    """Draw `run_comparisons`: titles name the resolved run ids, never `last`."""
    from moebench.console import print_note
    from moebench.report.tables import run_comparison_table
    from moebench.report.terminal import print_table

    for frame in found:
        if isinstance(frame, str):
            print_note(frame)
            continue
        a, b = str(frame["run_a"].iloc[0]), str(frame["run_b"].iloc[0])
        print_table(console, run_comparison_table(frame, a, b))


def print_repeats_note(console: Console, rows: Sequence[Mapping[str, Any]]) -> None:
    """Say once when every repeat of every case was identical (`Store.sample_rows` rows)."""
    from moebench.report.figures import repeats_are_deterministic

    if repeats_are_deterministic(rows):
        console.print(f"[dim]{DETERMINISTIC_NOTE}[/]", soft_wrap=True, highlight=False)


def print_stored_comparisons(console: Console, out: Path, run_ids: Sequence[str],
                             pairs: str = "best",
                             rows: Sequence[Mapping[str, Any]] | None = None) -> None:
    """The repeats note, the model-vs-model and robustness tables of stored runs (no pandas;
    scipy only when two models disagree somewhere). `rows`: the runs' `Store.sample_rows`
    when the caller has them (`Report.samples`)."""
    import re

    if rows is None:
        from moebench.store import Store

        store = Store.open(out)
        try:
            rows = store.sample_rows(list(run_ids))
        finally:
            store.close()
    print_repeats_note(console, rows)
    models = {(r["run_id"], r["model"]) for r in rows}
    if len(models) < 2 and not any(re.search(r"-v\d+$", str(r["case_id"])) for r in rows):
        return
    print_model_comparisons(console, rows, pairs)


def print_run_machines(console: Console, out: Path, run_ids: Sequence[str]) -> None:
    """Two or more runs reported together: the machine facts of each (host name, CPU, cores,
    RAM, GPU, OS, backend, server), above their comparison."""
    if len(run_ids) < 2:
        return
    from moebench.report.tables import machines_table
    from moebench.report.terminal import print_table
    from moebench.store import Store

    store = Store.open(out)
    try:
        runs = [store.run(run_id) for run_id in dict.fromkeys(run_ids)]
    finally:
        store.close()
    print_table(console, machines_table(runs))
