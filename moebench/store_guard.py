"""What keeps the results store honest under stress: checks on open, SQLite errors as one line.

`moebench.store.Store` opens its file through `connect()` (writable, or read-only when the
folder or file cannot be written) and checks it with `check_store()`: not an SQLite file
(garbage, truncated), damaged pages (`PRAGMA quick_check`), another program's SQLite file (it
must not silently get moebench's tables), a store written by a newer moebench. Every public
`Store` method is wrapped by `guarded()`, so an `sqlite3.Error` anywhere (a full disk, a lock
held too long, a damaged page met later) becomes a `StoreError` naming the file and the fix
instead of a traceback. `StoreFull` is the full-disk case the runner turns into `interrupted`.
"""

from __future__ import annotations

import functools
import inspect
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from moebench.errors import StoreError

SQLITE_HEADER = b"SQLite format 3\x00"
#: how long a writer waits for another process's transaction (SQLite busy timeout)
BUSY_TIMEOUT_S = 30.0
#: extra tries of BEGIN IMMEDIATE when SQLite still answers "database is locked"
LOCK_RETRIES = 8

T = TypeVar("T")


class StoreFull(StoreError):
    """The disk holding the store is full (or refused a write): stop, keep what is stored."""


class StoreReadOnly(StoreError):
    """The store can be read but not written (a read-only folder, file or mount)."""


def _fix(path: Path) -> str:
    return f"move {path} away or pass another --out DIR"


def translate(error: BaseException, path: Path) -> StoreError:
    """An sqlite3 (or pandas-wrapped sqlite3) error as the StoreError a user can act on."""
    text = " ".join(str(error).split())  # one line, whatever SQLite or pandas said
    low = text.lower()
    if "disk is full" in low or "disk i/o error" in low:
        return StoreFull(f"the disk holding {path} is full ({text}) — free space or pass "
                         "another --out DIR; every sample stored so far is kept")
    if "readonly" in low or "read-only" in low:
        return StoreReadOnly(f"the results store {path} is read-only ({text}) — make its "
                             "folder writable or pass another --out DIR")
    if "locked" in low or "busy" in low:
        return StoreError(f"the results store {path} stayed locked by another process for "
                          f"over {BUSY_TIMEOUT_S:.0f} s ({text}) — wait for the other moebench "
                          "run to finish or pass another --out DIR")
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return StoreError(f"the results store {path} is damaged ({text}) — {_fix(path)} "
                          "(`sqlite3 FILE .recover` may rescue its samples)")
    return StoreError(f"the results store {path} cannot be used ({text}) — {_fix(path)}")


def _is_db_error(error: BaseException) -> bool:
    # pandas.read_sql_query wraps sqlite3 errors in pandas.errors.DatabaseError
    return isinstance(error, sqlite3.Error) or type(error).__name__ == "DatabaseError"


def guarded(cls: type[T]) -> type[T]:
    """Class decorator: every public method maps database errors to `translate()`."""
    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        setattr(cls, name, _guard(fn))
    return cls


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as error:
            if not _is_db_error(error):
                raise
            raise translate(error, self.path) from error
    return wrapper


def writable(out: Path, path: Path) -> bool:
    """Whether a store at `path` in folder `out` can be written (root on a ro mount: False)."""
    if not out.exists():
        return True  # it will be created (or fail with a clear error)
    if not os.access(out, os.W_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode; read-only ones fall back to `immutable` when SQLite
    cannot create the WAL index beside a file in a read-only folder."""
    if not readonly:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
        db.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL
        return db
    uri = path.resolve().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=BUSY_TIMEOUT_S,
                             isolation_level=None)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
    raise StoreReadOnly(f"cannot read the results store {path}: its folder is read-only and "
                        "SQLite cannot open it — copy the folder somewhere writable")


def retry_locked(action: Callable[[], T], tries: int = LOCK_RETRIES) -> T:
    """Run `action`, retrying with backoff while SQLite says the database is locked/busy."""
    for attempt in range(tries):
        try:
            return action()
        except sqlite3.OperationalError as error:
            text = str(error).lower()
            if ("locked" not in text and "busy" not in text) or attempt == tries - 1:
                raise
            time.sleep(min(0.05 * 2 ** attempt, 2.0))
    raise AssertionError("unreachable")


def check_header(path: Path) -> None:
    """Refuse a file that is not SQLite at all (garbage, truncated, another format)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        head = handle.read(100)
    if not head.startswith(SQLITE_HEADER) or len(head) < 100:
        raise StoreError(f"{path} is not a moebench store (not an SQLite database: damaged, "
                         f"truncated or another program's file) — {_fix(path)}")


def check_store(db: sqlite3.Connection, path: Path, known: Iterable[str]) -> set[str]:
    """Integrity, ownership and schema checks; returns the migrations already applied."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check")]
    if rows != ["ok"]:
        first = " ".join(str(rows[0]).replace("*** in database main ***", "").split())
        raise StoreError(f"the results store {path} is damaged (quick_check: {first}) — "
                         f"{_fix(path)} (`sqlite3 FILE .recover` may rescue its samples)")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "_migrations" not in tables:
        raise StoreError(f"{path} is an SQLite file moebench did not write (tables: "
                         f"{', '.join(sorted(tables)[:5])}) — {_fix(path)}")
    if not tables:
        return set()
    done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
    newer = sorted(done - set(known))
    if newer:
        raise StoreError(f"the results store {path} was written by a newer moebench (schema "
                         f"step {newer[-1]}) — upgrade moebench (pip install -U moebench) or "
                         "pass another --out DIR")
    return done
