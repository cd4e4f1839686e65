"""`moebench suites list | validate | generate`."""

from __future__ import annotations

from pathlib import Path

import typer

from moebench.cli.app import suites_app


@suites_app.command("list")
def suites_list(
    paths: list[Path] = typer.Argument(None, metavar="[PATH...]",
                                       help="suite files or folders (default: bundled tasks/)"),
) -> None:
    """Show each suite's tasks, scorers and case counts."""
    from moebench.console import console
    from moebench.paths import BUNDLED_TASKS
    from moebench.report.tables import suites_table
    from moebench.suites.loader import load_suites

    suites = load_suites(paths or [BUNDLED_TASKS])
    console.print(suites_table(suites))
    tasks = sum(len(s.tasks) for s in suites)
    console.print(f"{len(suites)} suites, {tasks} tasks, {sum(s.n_cases for s in suites)} cases",
                  soft_wrap=True)


@suites_app.command("validate")
def suites_validate(
    paths: list[Path] = typer.Argument(..., metavar="PATH...", help="suite files or folders"),
) -> None:
    """Check suite files: exit 0 when all are valid, else list every error and exit 1."""
    from rich.markup import escape

    from moebench.console import console, err_console
    from moebench.suites.loader import check_paths

    suites, errors = check_paths(paths)
    for line in errors:
        err_console.print(f"[red]{escape(line)}[/]", soft_wrap=True)
    if errors:
        plural = "" if len(errors) == 1 else "s"
        err_console.print(f"[bold red]{len(errors)} error{plural}[/]", soft_wrap=True)
        raise typer.Exit(1)
    tasks = sum(len(s.tasks) for s in suites)
    console.print(f"ok: {len(suites)} suites, {tasks} tasks, {sum(s.n_cases for s in suites)} "
                  "cases", soft_wrap=True)


@suites_app.command("generate")
def suites_generate(
    family: str = typer.Argument(..., metavar="FAMILY",
                                 help="word_length | arithmetic | entities | summarization | gsm8k"),
    n: int | None = typer.Option(None, "-n", min=1, metavar="N",
                                 help="how many cases (gsm8k: all 1,319 if left out)"),
    seed: int = typer.Option(0, "--seed", metavar="S", help="same seed, same cases"),
    variants: int = typer.Option(0, "--variants", min=0, metavar="K",
                                 help="arithmetic: K more instantiations of each problem"),
    suite: str | None = typer.Option(None, "--suite", metavar="NAME",
                                     help="suite name (default: FAMILY-generated)"),
    output: Path | None = typer.Option(None, "-o", "--output", metavar="FILE",
                                       help="write the suite here instead of stdout"),
) -> None:
    """Write generated cases out as a normal suite file (answers computed, seeded)."""
    from moebench.suites.generators import suite_yaml

    text = suite_yaml(family, n, seed, variants, suite)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)
