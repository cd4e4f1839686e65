"""Housekeeping of the results store: delete runs by id or by age (`moebench runs --delete`).

`parse_duration("7d")` reads the ages users type (`30m`, `12h`, `7d`, `2w`, combined as
`1d12h`). `delete_runs(out, run_ids, older_than=...)` removes whole runs (runs, models,
samples and router rows) in one transaction each and says what went; a run still marked
`running` is only deleted when named explicitly, never by age (it may be live).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from moebench.errors import MoebenchError

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w`, `1d12h` → timedelta; MoebenchError naming the format."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(f"{n}{u}" for n, u in parts) != compact:
        raise MoebenchError(f"--older-than {text!r}: give a number and a unit, e.g. 30m, "
                            "12h, 7d or 2w")
    return sum((timedelta(**{_UNIT[u]: float(n)}) for n, u in parts), timedelta())


@dataclass(frozen=True)
class DeletedRun:
    """One run removed from the store."""

    run_id: str
    started_at: str
    status: str
    samples: int


def _started(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def delete_runs(out: Path | str, run_ids: Sequence[str] = (), *,
                older_than: timedelta | None = None,
                now: datetime | None = None) -> list[DeletedRun]:
    """Delete the named runs (ids or `last`) and, with `older_than`, every finished run
    that started longer ago than that. Returns what was deleted, oldest first."""
    from moebench.store import Store

    store = Store.open(out)
    try:
        chosen = {store.resolve(r): True for r in run_ids}
        if older_than is not None:
            cutoff = (now or datetime.now(timezone.utc)) - older_than
            for run in store.run_rows():
                if run["status"] != "running" and _started(run["started_at"]) < cutoff:
                    chosen.setdefault(run["id"], False)
        deleted = [DeletedRun(r, *store.delete_run(r)) for r in chosen]
    finally:
        store.close()
    return sorted(deleted, key=lambda d: (d.started_at, d.run_id))
