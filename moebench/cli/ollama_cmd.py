"""`moebench pull`, `models`, `ps` (talk to Ollama) and `backends` (what each measures)."""

from __future__ import annotations

import typer

from moebench.cli.app import OLLAMA_HOST_HELP, check_url, app
from moebench.errors import MoebenchError


@app.command()
def pull(
    names: list[str] = typer.Argument(..., metavar="NAME...",
                                      help="models to pull, e.g. mixtral:8x7b"),
    host: str | None = typer.Option(None, "--host", metavar="URL", callback=check_url,
                                     help=OLLAMA_HOST_HELP),
) -> None:
    """Download models into Ollama, with a progress bar per layer."""
    from moebench.backends.ollama_api import pull_model
    from moebench.console import console, err_console, print_error
    from moebench.errors import BackendUnavailable
    from moebench.report.ollama_tables import PullView

    failed = 0
    with PullView(err_console) as view:
        for name in names:
            try:
                pull_model(host, name, view.update)
            except BackendUnavailable:
                raise
            except MoebenchError as error:  # report it, go on with the other names
                print_error(str(error))
                failed += 1
            else:
                console.print(f"pulled {name}")
    if failed:
        raise typer.Exit(1)


@app.command()
def models(
    host: str | None = typer.Option(None, "--host", metavar="URL", callback=check_url,
                                     help=OLLAMA_HOST_HELP),
) -> None:
    """List local Ollama models: size, family, quantization, experts, top-k, shared experts."""
    from moebench.backends.ollama_api import list_models
    from moebench.console import console, print_note
    from moebench.report.terminal import print_table
    from moebench.report.ollama_tables import models_table

    found = list_models(host)
    if not found:
        print_note("no local models — pull one, e.g.: moebench pull granite3-moe:1b")
        return
    print_table(console, models_table(found))


@app.command()
def ps(
    host: str | None = typer.Option(None, "--host", metavar="URL", callback=check_url,
                                     help=OLLAMA_HOST_HELP),
) -> None:
    """Show models loaded in Ollama: memory, CPU/GPU split, context, keep-alive expiry."""
    from moebench.backends.ollama_api import running_models
    from moebench.console import console, print_note
    from moebench.report.terminal import print_table
    from moebench.report.ollama_tables import ps_table

    loaded = running_models(host)
    if not loaded:
        print_note("no model is loaded")
        return
    print_table(console, ps_table(loaded))


# ---- backends (backends engineer) ----


@app.command("backends")
def backends_command() -> None:
    """List the backends `run --backend` accepts and what each measures."""
    from moebench.backends import backends as registered
    from moebench.console import console, print_note
    from moebench.report.terminal import print_table
    from moebench.report.backends_table import FOOTNOTE, backends_table

    print_table(console, backends_table(registered().values()))
    print_note(FOOTNOTE)
