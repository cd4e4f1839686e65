"""The command line: parse options, call one library function, render the result.

Every command is thin. A `MoebenchError` from the library becomes one red line naming the
fix and exit 1 (MOEBENCH_DEBUG=1 keeps the traceback); usage errors are Typer's exit 2.
Heavy modules (pandas, torch, HTTP clients) are imported inside commands, never at the top.
One module per group of commands; `app` holds what they share.
"""

from __future__ import annotations

from moebench.cli.app import app

# importing a command module registers its commands; this order is the order `--help` lists
from moebench.cli import run_cmd  # noqa: E402,F401,I001
from moebench.cli import results_cmd  # noqa: E402,F401
from moebench.cli import suites_cmd  # noqa: E402,F401
from moebench.cli import ollama_cmd  # noqa: E402,F401
from moebench.cli import speed_cmd  # noqa: E402,F401
from moebench.cli import merge_cmd  # noqa: E402,F401

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as end:
        if end.code in (130, 143):  # interrupted: do not wait for requests hung in threads
            from moebench.run_control import exit_now

            exit_now(int(end.code))
        raise
