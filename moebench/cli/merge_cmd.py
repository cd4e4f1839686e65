"""`moebench merge`: copy another machine's runs into this store (idempotent)."""

from __future__ import annotations

from pathlib import Path

import typer

from moebench.cli.app import app


@app.command()
def merge(
    other: Path = typer.Argument(
        ..., metavar="OTHER.db",
        help="another machine's store: its moebench.db, or the results folder holding it "
        "(read only, never changed)"),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR",
                             help="results folder whose store receives the runs"),
) -> None:
    """Copy another machine's runs (samples, models, router load, speed results, machine
    facts) into this store; merging twice adds nothing. Compare them with
    `moebench report RUN_A RUN_B`."""
    from rich.markup import escape

    from moebench.console import console, print_note
    from moebench.merge import merge_store

    result = merge_store(out, other)
    if result.migrated:
        print_note(f"{result.source} uses an older schema: merged from a migrated copy "
                   f"({result.migrated} steps); the file itself is unchanged")
    for conflict in result.conflicts:
        print_note(f"run {conflict.run_id} differs between the stores ({conflict.detail}): "
                   f"kept this store's copy — to take the other, delete it here (moebench runs "
                   f"--delete {conflict.run_id} --out {out}) and merge again")
    for run_id in result.running:
        print_note(f"run {run_id} is still marked running in {result.source}: copied as it "
                   "stands")
    rows = result.rows
    counts = ", ".join(_count(rows.get(table, 0), noun) for table, noun in (
        ("samples", "sample"), ("models", "model"), ("router_load", "router count"),
        ("speed_results", "speed cell")))
    console.print(f"merged {_count(len(result.added), 'run')} ({counts}) from "
                  f"{escape(str(result.source))} into {escape(str(result.target))}; "
                  f"{len(result.same)} already here, {len(result.conflicts)} differing "
                  "(skipped)", soft_wrap=True, highlight=False)
    for run_id in result.added:
        console.print(f"  {run_id}", highlight=False)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
