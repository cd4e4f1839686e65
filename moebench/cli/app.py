"""The Typer application and what every command shares: the error mapping (one red line
naming the fix, exit 1), the version flag, option callbacks and help strings.

Command modules (`run_cmd`, `results_cmd`, `suites_cmd`, `ollama_cmd`, `speed_cmd`,
`merge_cmd`) register their commands on `app`; `moebench.cli` imports them all.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
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
suites_app = typer.Typer(help="List, validate and generate task suites.", no_args_is_help=True)
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


class BackendName(str, Enum):
    """Backends `moebench run --backend` accepts."""

    ollama = "ollama"
    torch = "torch"
    langchain = "langchain"
    openai = "openai"


def positive(value: float) -> float:
    if not value > 0 or value == float("inf"):  # `not >` also refuses nan
        raise typer.BadParameter("must be a number greater than 0 (seconds), e.g. 300")
    return value


def check_url(value: Any) -> Any:
    """`--host` must be a URL we can connect to (`http://[::1` is not); None passes."""
    from moebench.paths import check_host

    for host in value if isinstance(value, list | tuple) else [value]:
        if host is not None:
            problem = check_host(host)
            if problem:
                raise typer.BadParameter(problem)
    return value


OUT_HELP = "results folder; the run's store lives here"


def env_name(value: str) -> str:
    """`--api-key-env` names a variable (the key itself never goes on the command line)."""
    if not value.isidentifier() or not value.isascii():
        raise typer.BadParameter("must be an environment variable name, e.g. OPENAI_API_KEY")
    return value


OLLAMA_HOST_HELP = "Ollama base URL (default: $OLLAMA_HOST or http://127.0.0.1:11434)"


# Options several commands share (one definition, the same flag and help everywhere).


def out_option() -> Any:
    """`--out DIR`: the results folder holding the store."""
    return typer.Option(Path("results"), "--out", metavar="DIR", help=OUT_HELP)


def native_option() -> Any:
    """`--native`: the torch engine decodes with its C step where it covers the model."""
    return typer.Option(
        False, "--native",
        help="torch backend: decode with the built-in C step (GQA + routed experts: Mixtral, "
        "DBRX; fp32, float16 or q8_0 on CPU; built once with the system C compiler). At "
        "llama.cpp's speed on the same GGUF: see moebench/engine/README.md. Models it does not "
        "cover decode as without it, with a note")


def csv_option() -> Any:
    """`--csv PATH`: the summary table as CSV."""
    return typer.Option(None, "--csv", metavar="PATH",
                        help="write the summary table (model × task) as CSV")


def samples_csv_option() -> Any:
    """`--samples-csv PATH`: every scored sample as CSV."""
    return typer.Option(None, "--samples-csv", metavar="PATH",
                        help="write every scored sample as CSV")
