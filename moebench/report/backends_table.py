"""Rich rendering for `moebench backends`: the registered backends and what each measures.

Only draws; the facts are the `BackendEntry.measures` tags of `moebench.backends.backends()`
("ttft", "server timings" / "engine timings" / "client timings", "load time", "memory",
"moe facts", "router load"; "client load time" when only the warm-up wall time is known).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.markup import escape
from rich.table import Table

from moebench.backends import BackendEntry

#: where a backend's decode time (tokens/s) comes from, by its timing tag
_TIMING_SOURCES = (("server timings", "server"), ("engine timings", "engine"),
                   ("client timings", "client"))
_YES, _NO = "yes", "-"

#: printed under the table: what "client" means
FOOTNOTE = ("TTFT and latency are always measured on the client clock. tokens/s from "
            "'client': the API reports no decode time, so it comes from the client's first → "
            "last token gap (timing_source = client in the samples) unless the server sends "
            "its own timings (llama.cpp's server does). Load time 'client': the warm-up "
            "request's wall time.")


def _timings(entry: BackendEntry) -> str:
    return next((label for tag, label in _TIMING_SOURCES if tag in entry.measures), _NO)


def _has(entry: BackendEntry, tag: str) -> str:
    if tag in entry.measures:
        return _YES
    return "client" if f"client {tag}" in entry.measures else _NO


def backends_table(entries: Iterable[BackendEntry]) -> Table:
    """One row per backend: name, description, TTFT, tokens/s source, load, memory, MoE facts."""
    table = Table(box=box.SIMPLE_HEAD, title="backends (moebench run --backend NAME)",
                  title_justify="left")
    table.add_column("backend", style="bold")
    table.add_column("what it runs")
    for column in ("TTFT", "tokens/s from", "load time", "memory", "MoE facts", "router load"):
        table.add_column(column, justify="center")
    for entry in entries:
        table.add_row(escape(entry.name), escape(entry.description),
                      "client" if "ttft" in entry.measures else _NO, _timings(entry),
                      _has(entry, "load time"), _has(entry, "memory"),
                      _has(entry, "moe facts"), _has(entry, "router load"))
    return table
