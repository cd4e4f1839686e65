"""`moebench merge`: copy another machine's runs into this store, idempotently.

The other store is never touched: its file (and its WAL, if any) is copied to a temporary
folder, checked there (a moebench store, not damaged, not written by a newer moebench) and
migrated there when its schema is older. The copy is then attached to this store and every
run this store lacks is copied, all tables at once, in one transaction.

Rows are identified by natural keys (`TABLE_KEYS`: the run id plus what makes a row unique
within the run), never by rowids: no table refers to another's rowid, so nothing needs to be
remapped and a sample gets a fresh rowid here. A run id already here with identical content
(every table, every column) is skipped silently — merging twice adds nothing. A run id here
with *different* content (the run went on after an earlier merge, or was resumed here) is
skipped with one line saying how to take the other copy: this store's rows are never
overwritten by a merge.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from moebench.errors import StoreError
from moebench.paths import DB_NAME
from moebench.store import Store
from moebench.store_guard import SQLITE_HEADER, retry_locked, translate
from moebench.store_schema import MIGRATIONS

#: table → the columns that identify one of its rows. Every table of the schema must be here
#: (tests/test_merge.py checks it), so a table a later migration adds cannot be forgotten.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "runs": ("id",),
    "models": ("run_id", "model"),
    "samples": ("run_id", "model", "suite", "task", "case_id", "repeat"),
    "router_load": ("run_id", "model", "suite", "task", "phase", "layer", "expert"),
    "speed_results": ("run_id", "model", "prompt_tokens", "concurrency"),
}
#: the schema's own bookkeeping, never copied
SKIPPED_TABLES = ("_migrations",)


class MergeError(StoreError):
    """The other store cannot be merged (missing, not a moebench store, newer schema)."""


@dataclass(frozen=True)
class Conflict:
    """A run id both stores hold with different content; this store's copy was kept."""

    run_id: str
    detail: str


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: runs copied (with rows per table), runs already here, conflicts."""

    source: Path
    target: Path
    added: tuple[str, ...]
    same: tuple[str, ...]
    conflicts: tuple[Conflict, ...]
    rows: dict[str, int] = field(default_factory=dict)
    #: migrations the copy of an older store needed (0: same schema)
    migrated: int = 0
    #: copied runs still marked `running` in the other store (copied as they stand)
    running: tuple[str, ...] = ()


def merge_store(out: Path | str, other: Path | str) -> MergeResult:
    """Copy the runs of the store `other` (a moebench.db or its folder) into `out`'s store."""
    source = source_path(Path(other))
    target = Path(out) / DB_NAME
    if target.exists() and source.samefile(target):
        raise MergeError(f"{source} is this store itself — pass another machine's moebench.db "
                         f"(or choose the store to merge into with --out DIR)")
    with tempfile.TemporaryDirectory(prefix="moebench-merge-") as tmp:
        migrated = _checked_copy(source, Path(tmp))
        store = Store(out)
        try:
            return _merge_into(store, source, Path(tmp) / DB_NAME, migrated)
        finally:
            store.close()


def source_path(other: Path) -> Path:
    """The other store's file: `other` itself, or `other/moebench.db` for a results folder."""
    path = other / DB_NAME if other.is_dir() else other
    if not path.is_file():
        raise MergeError(f"no store at {path} — pass another machine's moebench.db (or the "
                         "results folder holding it)")
    with path.open("rb") as handle:
        head = handle.read(100)
    if not head.startswith(SQLITE_HEADER) or len(head) < 100:
        raise MergeError(f"{path} is not a moebench store (not an SQLite file) — pass "
                         "another machine's moebench.db")
    return path.resolve()


def _checked_copy(source: Path, folder: Path) -> int:
    """Copy the store (with its WAL) into `folder`, check it, migrate the copy; returns the
    number of migrations it needed."""
    copy = folder / DB_NAME
    shutil.copyfile(source, copy)
    wal = source.with_name(source.name + "-wal")
    if wal.is_file():  # samples not checkpointed yet live in the WAL: take them too
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    known = [fn.__name__ for fn in MIGRATIONS]
    db = sqlite3.connect(copy, isolation_level=None)
    try:
        done = _applied(db, source)
    except sqlite3.DatabaseError as error:
        raise MergeError(f"{source} cannot be read ({' '.join(str(error).split())}) — "
                         "pass an undamaged moebench.db") from None
    finally:
        db.close()
    newer = sorted(done - set(known))
    if newer:
        raise MergeError(f"{source} was written by a newer moebench (schema step {newer[-1]}) "
                         "— upgrade moebench here (pip install -U moebench), then merge again")
    pending = len(set(known) - done)
    if pending:
        Store(folder).close()  # migrates the copy, never the other store
    return pending


def _applied(db: sqlite3.Connection, source: Path) -> set[str]:
    """The migrations a store's copy records; MergeError for a damaged or foreign file."""
    if [r[0] for r in db.execute("PRAGMA quick_check")] != ["ok"]:
        raise MergeError(f"{source} is damaged (quick_check failed) — pass an undamaged "
                         "moebench.db (`sqlite3 FILE .recover` may rescue its samples)")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "_migrations" not in tables:
        raise MergeError(f"{source} is an SQLite file moebench did not write — pass another "
                         "machine's moebench.db")
    return {r[0] for r in db.execute("SELECT name FROM _migrations")}


def _merge_into(store: Store, source: Path, copy: Path, migrated: int) -> MergeResult:
    db = store.db
    try:
        db.execute("ATTACH DATABASE ? AS other", (str(copy),))
        try:
            added, same, conflicts, rows, running = _copy_runs(db, source)
        finally:
            db.execute("DETACH DATABASE other")
    except sqlite3.Error as error:
        raise translate(error, store.path) from None
    return MergeResult(source, store.path, added, same, conflicts, rows, migrated, running)


def _copy_runs(db: sqlite3.Connection, source: Path) -> tuple[
        tuple[str, ...], tuple[str, ...], tuple[Conflict, ...], dict[str, int], tuple[str, ...]]:
    """In one transaction: every run of `other` that `main` lacks, with its rows."""
    tables = _tables(db)
    added: list[str] = []
    same: list[str] = []
    conflicts: list[Conflict] = []
    rows = dict.fromkeys(tables, 0)
    retry_locked(lambda: db.execute("BEGIN IMMEDIATE"))
    try:
        here = {r[0] for r in db.execute("SELECT id FROM main.runs")}
        theirs = db.execute("SELECT id, status FROM other.runs ORDER BY started_at, id").fetchall()
        for run_id, _ in theirs:
            if run_id not in here:
                for table, columns in tables.items():
                    rows[table] += _copy(db, table, columns, run_id)
                added.append(run_id)
            elif (detail := _difference(db, tables, run_id, source)) is None:
                same.append(run_id)
            else:
                conflicts.append(Conflict(run_id, detail))
        retry_locked(lambda: db.execute("COMMIT"))
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    running = tuple(r for r, status in theirs if status == "running" and r in added)
    return tuple(added), tuple(same), tuple(conflicts), rows, running


def _tables(db: sqlite3.Connection) -> dict[str, list[str]]:
    """Table → the columns both stores have (after migration: all of them), `runs` first."""
    names = {r[0] for r in db.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table'")} - set(SKIPPED_TABLES)
    unknown = sorted(names - set(TABLE_KEYS))
    if unknown:  # a migration added a table this module does not know how to merge
        raise MergeError(f"the store has tables merge does not know ({', '.join(unknown)}) — "
                         "upgrade moebench (pip install -U moebench)")
    tables: dict[str, list[str]] = {}
    for table in (t for t in TABLE_KEYS if t in names):
        mine = [r[1] for r in db.execute(f"PRAGMA main.table_info({table})")]
        theirs = {r[1] for r in db.execute(f"PRAGMA other.table_info({table})")}
        tables[table] = [c for c in mine if c in theirs]
    return tables


def _run_column(table: str) -> str:
    return TABLE_KEYS[table][0]  # every key starts with the run's id


def _copy(db: sqlite3.Connection, table: str, columns: list[str], run_id: str) -> int:
    cols = ", ".join(columns)
    return db.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM other.{table} "
                      f"WHERE {_run_column(table)} = ?", (run_id,)).rowcount


def _difference(db: sqlite3.Connection, tables: dict[str, list[str]], run_id: str,
                source: Path) -> str | None:
    """None when the run's rows are the same in both stores, else what differs, in words."""
    for table, columns in tables.items():
        cols, key = ", ".join(columns), _run_column(table)
        select = f"SELECT {cols} FROM {{}}.{table} WHERE {key} = ?"
        differ = db.execute(f"SELECT EXISTS ({select.format('main')} EXCEPT "
                            f"{select.format('other')}) OR EXISTS ({select.format('other')} "
                            f"EXCEPT {select.format('main')})", (run_id,) * 4).fetchone()[0]
        if differ:
            counts = [db.execute(f"SELECT COUNT(*) FROM {side}.{table} WHERE {key} = ?",
                                 (run_id,)).fetchone()[0] for side in ("main", "other")]
            return f"{table}: {counts[0]} rows here, {counts[1]} in {source}"
    return None
