"""Stored speed sweeps: which of the asked runs are `moebench speed` runs, and their cells.

`moebench report` asks this first: speed runs are re-printed (and their CSV / HTML re-written)
from the `speed_results` table, task runs go on to the ordinary report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from moebench.speed.cells import Cell
from moebench.speed.rows import cell_from_row
from moebench.store import Store


@dataclass(frozen=True)
class StoredSpeed:
    """The asked runs split into speed runs (with their cells) and the other runs."""

    speed_ids: tuple[str, ...]
    other_ids: tuple[str, ...]
    cells: tuple[tuple[Cell, str], ...]


def load_speed_runs(out: Path, run_ids: Sequence[str]) -> StoredSpeed:
    """Resolve `run_ids` (`last` when none) and load the speed cells of those that have any."""
    store = Store.open(out)
    try:
        ids = tuple(dict.fromkeys(store.resolve(r) for r in (run_ids or ["last"])))
        rows = store.speed_rows(ids)
        runs = {i: store.run(i) for i in ids}
    finally:
        store.close()
    cells = tuple((cell_from_row(r), str(r["run_id"])) for r in rows)
    speed = {run_id for _, run_id in cells} | {
        i for i, run in runs.items() if (run.get("options") or {}).get("kind") == "speed"}
    return StoredSpeed(tuple(i for i in ids if i in speed),
                       tuple(i for i in ids if i not in speed), cells)
