"""Rich consoles for the CLI: stdout for tables, stderr for progress and error lines."""

from __future__ import annotations

import os

from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    """One red line on stderr: `error: <message naming the fix>`."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def print_note(message: str) -> None:
    """One dim informational line on stderr (e.g. which backend a run picked)."""
    err_console.print(f"[dim]{escape(message)}[/]", soft_wrap=True)


def debug_enabled() -> bool:
    """MOEBENCH_DEBUG=1 shows tracebacks for errors the CLI would otherwise shorten."""
    return os.environ.get("MOEBENCH_DEBUG", "") not in ("", "0")
