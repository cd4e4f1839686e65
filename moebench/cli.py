"""The command line: parse options, call one library function, render the result.

Every command is thin. A `MoebenchError` from the library becomes one red line naming the
fix and exit 1 (MOEBENCH_DEBUG=1 keeps the traceback); usage errors are Typer's exit 2.
Heavy modules (pandas, torch, HTTP clients) are imported inside commands, never at the top.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from moebench import __version__
from moebench.console import debug_enabled, print_error
from moebench.errors import MoebenchError


class _Group(TyperGroup):
    """Maps MoebenchError to one red line and exit 1, for every (sub)command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MoebenchError as error:
            if debug_enabled():
                raise
            print_error(str(error))
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    help="Benchmark local Mixture-of-Experts models: accuracy, latency, experts.",
    rich_markup_mode=None,
)
suites_app = typer.Typer(help="List and validate task suites.", no_args_is_help=True)
app.add_typer(suites_app, name="suites")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moebench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """moebench: benchmark local MoE models on task suites."""


# ---- commands are added below this line, one block per command ----


def main() -> None:
    """Console-script entry point."""
    app()
