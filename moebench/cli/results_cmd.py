"""`moebench runs`, `report`, `rescore` and `show`: read the store, no model is called."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from moebench.cli.app import app, csv_option, out_option, samples_csv_option


@app.command()
def runs(
    out: Path = out_option(),
    delete: list[str] = typer.Option(
        [], "--delete", metavar="RUN_ID", help="delete this run (or `last`); repeatable"),
    older_than: str | None = typer.Option(
        None, "--older-than", metavar="DURATION",
        help="delete every finished run older than this (30m, 12h, 7d, 2w)"),
) -> None:
    """List the runs in the store, newest first; --delete / --older-than remove runs."""
    from moebench.console import console
    from moebench.report.terminal import print_table, runs_table
    from moebench.store import Store

    if delete or older_than is not None:
        from moebench.housekeeping import delete_runs, parse_duration

        age = parse_duration(older_than) if older_than is not None else None
        gone = delete_runs(out, delete, older_than=age)
        for run in gone:
            console.print(f"deleted run {run.run_id} ({run.status}, started {run.started_at}, "
                          f"{run.samples} samples)", soft_wrap=True, highlight=False)
        console.print(f"{len(gone)} run{'s' if len(gone) != 1 else ''} deleted",
                      highlight=False)
        return

    store = Store.open(out)
    try:
        print_table(console, runs_table(store.runs_frame()))
    finally:
        store.close()


class PairsChoice(str, Enum):
    """Which model pairs `report --pairs` compares."""

    best = "best"
    all = "all"


@app.command()
def report(
    run_ids: list[str] = typer.Argument(None, metavar="[RUN_ID|last ...]",
                                        help="runs to report (default: last)"),
    out: Path = out_option(),
    csv: Path | None = csv_option(),
    samples_csv: Path | None = samples_csv_option(),
    html: Path | None = typer.Option(
        None, "--html", metavar="FILE", help="write the HTML report"),
    compare: tuple[str, str] | None = typer.Option(
        None, "--compare", metavar="RUN_A RUN_B",
        help="line up the models of two runs on the same cases (paired test, A = baseline)"),
    markdown: bool = typer.Option(
        False, "--markdown", help="print the tables as Markdown (to paste in an issue or PR)"),
    pairs: PairsChoice = typer.Option(
        PairsChoice.best, "--pairs", help="model vs model: the best model against each "
        "other one per task, or every pair"),
) -> None:
    """Re-print the tables and write CSVs / HTML of stored runs (no model is called)."""
    from moebench.console import console
    from moebench.report.model_compare import (
        print_run_comparisons,
        print_run_machines,
        print_stored_comparisons,
        run_comparisons,
    )
    from moebench.report.specialisation import print_specialisation
    from moebench.report.summary import build_report
    from moebench.report.terminal import print_results
    from moebench.speed.stored import report_speed_runs

    found = run_comparisons(out, compare, []) if compare else None  # no common case: exit 1
    run_ids = [*(compare or ()), *(run_ids or [])]  # compared runs are reported too, A first
    others = None if compare else report_speed_runs(console, out, run_ids, csv, html)
    if others is not None:  # some were `moebench speed` runs, printed above
        if not others:
            return
        run_ids = others
    result = build_report(out, run_ids, csv=csv, samples_csv=samples_csv, html=html)
    title = result.title
    if markdown:
        from moebench.report.markdown_report import markdown_from_store

        typer.echo(markdown_from_store(out, list(result.run_ids)))
    else:
        print_results(console, result.summary, result.models, title=title)
        print_specialisation(console, result.specialisation)
        print_stored_comparisons(console, out, result.run_ids, pairs.value, result.samples)
        print_run_machines(console, out, result.run_ids)
        print_run_comparisons(console, found if found is not None
                              else run_comparisons(out, None, result.run_ids))
    for path in result.written:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)


@app.command()
def rescore(
    run_id: str = typer.Argument("last", metavar="RUN_ID|last", help="the run to re-score"),
    out: Path = out_option(),
) -> None:
    """Re-apply the current scorers to a run's stored outputs (no model is called)."""
    from moebench.console import console, print_note
    from moebench.rescore import rescore as rescore_run

    result = rescore_run(out, run_id)
    for name in result.changed_suites:
        print_note(f"suite {name} changed since run {result.run_id}; scored with the current file")
    if result.missing:
        print_note(f"{result.missing} samples have no case in the current suites; "
                   "left as they were")
    for c in result.changed:
        verdict = "pass" if c.after else "fail"
        console.print(f"{c.model} {c.suite}/{c.task}/{c.case_id} #{c.repeat}: now {verdict} "
                      f"(answer {c.answer!r})", soft_wrap=True, highlight=False, markup=False)
    console.print(f"run {result.run_id}: {len(result.changed)} verdicts changed of "
                  f"{result.checked} samples", soft_wrap=True, highlight=False)


@app.command()
def show(
    run_id: str = typer.Argument("last", metavar="RUN_ID|last", help="the run to show"),
    case: str | None = typer.Option(
        None, "--case", metavar="ID",
        help="transcripts of one case (ID, task/ID or suite/task/ID) for every model"),
    failed: bool = typer.Option(False, "--failed", help="transcripts of the failed samples"),
    out: Path = out_option(),
) -> None:
    """Why did a case fail? Without options: the case × model matrix; with --case/--failed:
    each sample's prompt, output, answer, expected answer and the scorer's explanation."""
    from moebench.console import console
    from moebench.report.transcript import print_show
    from moebench.transcripts import load_transcripts

    resolved, transcripts = load_transcripts(out, run_id, case=case, failed=failed)
    print_show(console, resolved, transcripts, matrix=case is None and not failed)
