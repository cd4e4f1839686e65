"""The report as GitHub-flavoured Markdown: tables to paste into an issue, PR or README.

Same numbers as the HTML report (`moebench.report.metrics`, `moebench.report.compare`), text only:
summary per model × task, per model pooled (cold/warm latency), paired comparisons and,
with several runs, the same model lined up across runs.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moebench.report.cells import fmt_mdd, fmt_num, fmt_p, fmt_pct, fmt_points, fmt_secs
from moebench.report.compare import (
    compare_runs,
    label_runs,
    multi_run_models,
    paired_matrix,
    power_note,
)
from moebench.report.html_report import run_pairs
from moebench.report.metrics import model_table, task_table

if TYPE_CHECKING:
    import pandas as pd


def md_cell(value: Any) -> str:
    """One table cell: pipes escaped, newlines flattened (user text stays one cell), raw HTML
    shown as text (GitHub renders `<img>` or `<details>` in a model or task name otherwise)."""
    text = html.escape("" if value is None else str(value), quote=False)
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]],
             right: Sequence[bool] = ()) -> str:
    """A pipe table; columns flagged in `right` are right-aligned (numbers)."""
    align = ["---:" if i < len(right) and right[i] else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |",
             "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ci(row: pd.Series) -> str:
    return (f"{fmt_pct(row['accuracy'])} [{fmt_pct(row['accuracy_low'])}, "
            f"{fmt_pct(row['accuracy_high'])}]")


def _summary(per_task: pd.DataFrame) -> str:
    repeats = bool(len(per_task)) and per_task["repeats"].max() > 1
    header = ["model", "suite", "task", "n", "accuracy [95% CI]", "p50 s", "p95 s", "TTFT s",
              "tok/s", "load s", "errors", *(["pass^N", "flaky"] if repeats else [])]
    rows = [[r["model"], r["suite"], r["task"], r["n"], _ci(r), fmt_secs(r["latency_p50_s"]),
             fmt_secs(r["latency_p95_s"]), fmt_secs(r["ttft_p50_s"]),
             fmt_num(r["tokens_per_s"], 1), fmt_num(r["load_s"], 1), r["errors"],
             *([fmt_pct(r["pass_all"]), r["flaky"]] if repeats else [])]
            for _, r in per_task.iterrows()]
    right = [False, False, False, True, False, *[True] * 8]
    return md_table(header, rows, right)


def _per_model(per_model: pd.DataFrame) -> str:
    header = ["model", "n", "accuracy [95% CI]", "warm p50 s", "warm p95 s", "cold s",
              "tok/s", "acc/s", "errors"]
    rows = [[r["model"], r["n"], _ci(r), fmt_secs(r["latency_p50_s"]), fmt_secs(r["latency_p95_s"]),
             fmt_secs(r["cold_latency_s"]), fmt_num(r["tokens_per_s"], 1),
             fmt_num(r["accuracy_per_s"], 3), r["errors"]]
            for _, r in per_model.iterrows()]
    return md_table(header, rows, [False, True, False, *[True] * 6])


def _verdict(row: pd.Series, a: str, b: str) -> str:
    return {"A better": f"{a} better", "B better": f"{b} better"}.get(row["verdict"],
                                                                     row["verdict"])


def _paired(frame: pd.DataFrame, a_col: str, b_col: str, lead: Sequence[str]) -> str:
    header = [*lead, "A", "B", "n", "A − B (pts) [95% CI]", "p", "verdict", "MDD (pts)", "note"]
    rows = [[*(r[c] for c in lead), r[a_col], r[b_col], r["n"],
             f"{fmt_points(r['diff'])} [{fmt_points(r['diff_low'])}, "
             f"{fmt_points(r['diff_high'])}]", fmt_p(r["p_value"]).lstrip("= "),
             _verdict(r, str(r[a_col]), str(r[b_col])), fmt_mdd(r["mdd"]), power_note(r)]
            for _, r in frame.iterrows()]
    return md_table(header, rows, [*[False] * (len(lead) + 2), True, True, True, True, False])


def render_markdown(samples: pd.DataFrame, models: pd.DataFrame | None = None, *,
                    compare: Sequence[tuple[str, str]] | None = None,
                    notes: Sequence[str] = ()) -> str:
    """The report's tables as Markdown (no charts).

    `compare`: (run A, run B) pairs to line up; default the first run against each later.
    `notes`: lines shown first, e.g. `run X: incomplete: 23/120`.
    """
    multi = multi_run_models(samples)
    labelled, models_l = label_runs(samples, multi), label_runs(models, multi)
    assert labelled is not None
    parts = [*(f"> **{md_cell(n)}**" for n in notes), "## Summary (model × task)", _summary(task_table(labelled, models_l)),
             "## Per model (all tasks pooled; cold = first request)",
             _per_model(model_table(labelled, models_l))]
    if labelled["model"].nunique() > 1:
        pairs = paired_matrix(labelled)
        parts += ["## Paired comparison (same cases; exact McNemar test)",
                  _paired(pairs, "model_a", "model_b", [])]
    run_ids = list(dict.fromkeys(samples["run_id"].astype(str)))
    for run_a, run_b in (list(compare) if compare is not None else run_pairs(run_ids)):
        frame = compare_runs(samples, run_a, run_b)
        if len(frame):
            parts += [f"## Runs compared: {run_a} vs {run_b}",
                      _paired(frame, "run_a", "run_b", ["model", "task"])]
    notes = ("Accuracy intervals: Wilson 95%. Latency: warm request wall time (model load and "
             "each model's first request excluded). "
             "Differences: paired bootstrap 95% interval; p: exact McNemar test; MDD: minimum "
             "detectable difference at 80% power for this n (Connor 1987).")
    return "\n\n".join([*parts, notes]) + "\n"


def markdown_from_store(out: Path | str, run_ids: Sequence[str]) -> str:
    """The Markdown report of stored runs (`last` allowed); the first run is the baseline."""
    from moebench.store import Store

    store = Store.open(out)
    try:
        ids = list(dict.fromkeys(store.resolve(r) for r in (run_ids or ["last"])))
        notes = [f"run {i}: {n}" for i in ids if (n := store.incomplete_note(i))]
        return render_markdown(store.samples_frame(ids), store.models_frame(ids),
                               compare=run_pairs(ids), notes=notes)
    finally:
        store.close()
