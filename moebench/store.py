"""The results store: one SQLite file (`<out>/moebench.db`) holding every run, model and sample.

Crash safety comes from writing each scored sample in its own transaction (WAL journal), so a
killed process loses at most the samples in flight. The schema grows through numbered
migrations (llm-style: a list of small functions, applied once, recorded in `_migrations`).
Reports read the store through pandas frames whose column names `moebench.types` fixes.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moebench import liveness
from moebench.errors import RunNotFound, StoreError
from moebench.paths import DB_NAME
from moebench.store_rows import (
    MODEL_FIELDS, SAMPLE_SQL, count_rows, names_text, router_rows, sample_row, status_text,
    to_json, utc_now,
)
from moebench.store_guard import (
    StoreReadOnly, check_header, check_store, connect, guarded, retry_locked, translate, writable,
)
from moebench.store_schema import MIGRATIONS
from moebench.types import (
    MODEL_COLUMNS,
    ROUTER_COLUMNS,
    SAMPLE_COLUMNS,
    SAMPLE_FRAME_EXTRA,
    ModelInfo,
    Record,
)

if TYPE_CHECKING:
    import pandas as pd

def new_run_id() -> str:
    """A sortable run id: `YYYYMMDD-HHMMSS-xxxx` (UTC, 4 random hex digits)."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@guarded
class Store:
    """A results store in `out/moebench.db`; use `Store.open(out)` for read-only commands.

    `readonly`: open without writing anything (no migrations; for a read-only folder).
    """

    def __init__(self, out: Path | str, *, readonly: bool = False) -> None:
        self.out = Path(out)
        self.path = self.out / DB_NAME
        self.readonly = readonly
        try:
            if not readonly:
                self.out.mkdir(parents=True, exist_ok=True)
            check_header(self.path)
            self.db = connect(self.path, readonly=readonly)
            try:
                self._check_and_migrate()
            except BaseException:
                self.db.close()
                raise
        except OSError as error:
            raise StoreError(f"cannot open the results store {self.path}: {error} — "
                             "pass another --out DIR") from None
        except sqlite3.DatabaseError as error:
            raise translate(error, self.path) from None
        self.db.row_factory = sqlite3.Row
        #: (run, model, suite, task, case, repeat) → errored, for every sample this process
        #: wrote: what one invocation produced, however often a sample was rewritten
        self._written: dict[tuple[Any, ...], bool] = {}

    @classmethod
    def open(cls, out: Path | str) -> Store:
        """Open an existing store (read-only when its folder cannot be written); RunNotFound
        naming the fix when there is none yet."""
        path = Path(out) / DB_NAME
        if not path.exists():
            raise RunNotFound(f"no runs in {out}/ yet — run: moebench run --out {out}")
        if not writable(Path(out), path):
            return cls(out, readonly=True)
        try:
            return cls(out)
        except StoreReadOnly:
            return cls(out, readonly=True)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        self.db.close()

    def _check_and_migrate(self) -> None:
        names = [fn.__name__ for fn in MIGRATIONS]
        done = check_store(self.db, self.path, names)
        pending = [fn for fn in MIGRATIONS if fn.__name__ not in done]
        if pending and self.readonly:
            raise StoreReadOnly(f"the results store {self.path} uses an older schema and is "
                                "read-only — copy its folder somewhere writable and read it there")
        if pending:
            self._migrate()

    def _migrate(self) -> None:
        # One IMMEDIATE transaction: two processes opening a new store at once cannot both
        # apply a migration (the second sees the first's rows once it gets the lock).
        with self._tx():
            self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, "
                            "applied_at TEXT NOT NULL)")
            done = {row[0] for row in self.db.execute("SELECT name FROM _migrations")}
            for fn in MIGRATIONS:
                if fn.__name__ not in done:
                    fn(self.db)
                    self.db.execute("INSERT INTO _migrations VALUES (?, ?)",
                                    (fn.__name__, utc_now()))
        # The schema version is the number of migrations applied (tools can read it cheaply).
        self.db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _tx(self) -> _Transaction:
        return _Transaction(self.db)

    # ---- runs ---------------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> str:
        """Insert a run row (keys: the runs columns; dict/list values stored as JSON)."""
        run_id = run.get("id") or new_run_id()
        row = {**run, "id": run_id, "started_at": run.get("started_at") or utc_now(),
               "status": run.get("status", "running")}
        row = {k: to_json(v) if isinstance(v, (dict, list)) else v for k, v in row.items()}
        cols = ", ".join(row)
        with self._tx():
            self.db.execute(f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * len(row))})",
                            tuple(row.values()))
        return str(run_id)

    def set_status(self, run_id: str, status: str, *, finished: bool = True) -> None:
        """Mark a run running / completed / interrupted / failed."""
        with self._tx():
            self.db.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                            (status, utc_now() if finished else None, run_id))

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Update some columns of a run (JSON-encoding dicts and lists)."""
        values = {k: to_json(v) if isinstance(v, (dict, list)) else v for k, v in fields.items()}
        sets = ", ".join(f"{k} = ?" for k in values)
        with self._tx():
            self.db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*values.values(), run_id))

    def resolve(self, run_id: str) -> str:
        """The id of run `run_id` (or of the newest run for `last`); RunNotFound otherwise."""
        if run_id == "last":
            row = self.db.execute("SELECT id FROM runs ORDER BY started_at DESC, id DESC "
                                  "LIMIT 1").fetchone()
            if row is None:
                raise RunNotFound(f"no runs in {self.out}/ yet — run: moebench run --out "
                                  f"{self.out}")
            return str(row[0])
        if self.db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise RunNotFound(f"no run '{run_id}' in {self.out}/ — list them with: moebench runs "
                              f"--out {self.out}")
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        """A run's row as a dict with JSON columns decoded."""
        row = self.db.execute("SELECT * FROM runs WHERE id = ?",
                              (self.resolve(run_id),)).fetchone()
        data = dict(row)
        for key in ("suites", "models", "options", "machine", "assignment"):
            try:
                data[key] = json.loads(data[key]) if data.get(key) else None
            except (TypeError, ValueError) as error:
                raise StoreError(f"run {data['id']} in {self.path} has a damaged `{key}` value "
                                 f"({error}) — start a new run, or pass another --out DIR"
                                 ) from None
        data["stored_status"], data["status"] = data["status"], liveness.effective_status(data)
        return data

    def run_rows(self) -> list[dict[str, Any]]:
        """id, started_at and status of every run, newest first (no pandas)."""
        rows = self.db.execute("SELECT id, started_at, status FROM runs ORDER BY started_at "
                               "DESC, id DESC")
        return [dict(r) for r in rows]

    def delete_run(self, run_id: str) -> tuple[str, str, int]:
        """Delete a run with its models, samples and router counts in one transaction.

        Returns (started_at, status, samples deleted).
        """
        row = self.db.execute("SELECT started_at, status FROM runs WHERE id = ?",
                              (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run '{run_id}' in {self.out}/ — list them with: moebench "
                              f"runs --out {self.out}")
        with self._tx():
            n = self.db.execute("DELETE FROM samples WHERE run_id = ?", (run_id,)).rowcount
            for table in ("router_load", "models", "runs"):
                key = "id" if table == "runs" else "run_id"
                self.db.execute(f"DELETE FROM {table} WHERE {key} = ?", (run_id,))
        return str(row[0]), str(row[1]), int(n)

    def runs_of_process(self, process: dict[str, Any]) -> list[str]:
        """Ids of `running` runs started by `process` (`liveness.this_process()`)."""
        rows = self.db.execute("SELECT id FROM runs WHERE status = 'running' AND pid = ? AND "
                               "pid_started = ?", (process["pid"], process["pid_started"]))
        return [str(r[0]) for r in rows]

    def completeness(self, run_id: str) -> tuple[int, int | None]:
        """(samples stored, samples planned) of a run; planned is None for older runs."""
        stored = self.db.execute("SELECT COUNT(*) FROM samples WHERE run_id = ?",
                                 (run_id,)).fetchone()[0]
        row = self.db.execute("SELECT planned FROM runs WHERE id = ?", (run_id,)).fetchone()
        return int(stored), (int(row[0]) if row and row[0] is not None else None)

    def incomplete_note(self, run_id: str) -> str | None:
        """`incomplete: 23/120` when the run has fewer samples stored than it planned."""
        stored, planned = self.completeness(run_id)
        return f"incomplete: {stored}/{planned}" if planned and stored < planned else None

    # ---- models and samples -------------------------------------------------------------

    def add_model(self, run_id: str, info: ModelInfo, position: int) -> None:
        """Insert or replace the run's row for model `info.name`."""
        values = {name: getattr(info, name) for name in MODEL_FIELDS}
        cols = ["run_id", "position", "model", "backend", *values, "extra"]
        params = [run_id, position, info.name, info.backend, *values.values(),
                  to_json(dict(info.extra))]
        with self._tx():
            self.db.execute(f"INSERT OR REPLACE INTO models ({', '.join(cols)}) VALUES "
                            f"({', '.join('?' * len(cols))})", params)

    def model_info(self, run_id: str, position: int) -> ModelInfo | None:
        """The stored info of the run's `position`-th model, or None before it ran."""
        row = self.db.execute("SELECT * FROM models WHERE run_id = ? AND position = ?",
                              (run_id, position)).fetchone()
        if row is None:
            return None
        data = dict(row)
        fields = {name: data[name] for name in MODEL_FIELDS}
        return ModelInfo(name=data["model"], backend=data["backend"],
                         extra=json.loads(data["extra"] or "{}"), **fields)

    def add_record(self, record: Record, *, seq: int, cold: bool = False,
                   digest: str | None = None) -> None:
        """Write one scored sample (and its router counts) in one transaction."""
        router = list(router_rows(record))
        with self._tx():
            self.db.execute(SAMPLE_SQL, sample_row(record, seq=seq, cold=cold, digest=digest))
            if router:  # most backends report no router counts: no empty statement
                self.db.executemany(
                    "INSERT INTO router_load VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                    "(run_id, model, suite, task, phase, layer, expert) DO UPDATE SET "
                    "tokens = tokens + excluded.tokens", router)
        # counted once committed: a write the disk refused is not this invocation's sample
        self._written[(record.run_id, record.model, *record.request.key)] = (
            record.error is not None)

    def done_keys(self, run_id: str, model: str,
                  digest: str | None) -> set[tuple[str, str, str, int]]:
        """(suite, task, case_id, repeat) of samples stored without error for this model digest."""
        rows = self.db.execute(
            "SELECT suite, task, case_id, repeat FROM samples WHERE run_id = ? AND model = ? "
            "AND error IS NULL AND digest IS ?", (run_id, model, digest))
        return {(r[0], r[1], r[2], int(r[3])) for r in rows}

    def invocation_counts(self, run_id: str,
                          planned: set[tuple[str, str, str, int]]) -> tuple[int, int, int]:
        """(samples, errors, kept) of this process's work on a run: samples it wrote (a sample
        rewritten, e.g. an error row redone on another host, counts once, as it ended), and the
        error-free samples of earlier invocations it kept among the `planned` request keys."""
        mine = [errored for key, errored in self._written.items() if key[0] == run_id]
        errors = sum(mine)
        ok = sum(tuple(r) in planned for r in self.db.execute(
            "SELECT suite, task, case_id, repeat FROM samples WHERE run_id = ? AND error IS NULL",
            (run_id,)))
        return len(mine), errors, ok - (len(mine) - errors)

    def forget_model(self, run_id: str, model: str) -> int:
        """Delete a model's samples and router counts from a run (its digest changed)."""
        with self._tx():
            n = self.db.execute("DELETE FROM samples WHERE run_id = ? AND model = ?",
                                (run_id, model)).rowcount
            self.db.execute("DELETE FROM router_load WHERE run_id = ? AND model = ?",
                            (run_id, model))
        self._written = {k: v for k, v in self._written.items() if k[:2] != (run_id, model)}
        return int(n)

    def stored_digests(self, run_id: str, model: str) -> set[str | None]:
        """Digests the run's stored samples of `model` were produced with."""
        rows = self.db.execute("SELECT DISTINCT digest FROM samples WHERE run_id = ? AND "
                               "model = ?", (run_id, model))
        return {r[0] for r in rows}

    def outputs(self, run_id: str) -> list[dict[str, Any]]:
        """Stored outputs with their current verdicts (for `rescore`), in run order."""
        rows = self.db.execute(
            "SELECT rowid, model, suite, task, case_id, repeat, output, answer, score, passed "
            "FROM samples WHERE run_id = ? AND error IS NULL ORDER BY model, seq", (run_id,))
        return [dict(r) for r in rows]

    def update_verdicts(self, changes: Sequence[dict[str, Any]]) -> None:
        """Rewrite the verdict columns (and `expected`, `expected_detail`) of samples by rowid, in one transaction."""
        with self._tx():
            self.db.executemany(
                "UPDATE samples SET stripped = :stripped, answer = :answer, score = :score, "
                "passed = :passed, explanation = :explanation, expected = :expected, "
                "expected_detail = :expected_detail WHERE rowid = :rowid", changes)

    def generation_options(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Distinct generation options per run × suite × task (`options` decoded), run order."""
        rows = self.db.execute(
            f"SELECT DISTINCT run_id, suite, task, options FROM samples WHERE run_id IN "
            f"({_marks(run_ids)}) ORDER BY run_id, seq", list(run_ids))
        return [{**dict(r), "options": json.loads(r["options"] or "{}")} for r in rows]

    def transcript_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Every sample of a run with prompt, output and verdict, in run order (`show`)."""
        rows = self.db.execute(
            "SELECT s.run_id, s.model, s.suite, s.task, s.case_id, s.repeat, s.prompt, "
            "s.system, s.output, s.stripped, s.answer, s.score, s.passed, s.explanation, "
            "s.expected, s.expected_detail, s.latency_s, s.ttft_s, s.prompt_tokens, "
            "s.output_tokens, s.decode_s, s.prompt_eval_s, s.error FROM samples s JOIN models m "
            "ON m.run_id = s.run_id AND m.model = s.model WHERE s.run_id = ? "
            "ORDER BY m.position, s.seq, s.repeat", (run_id,))
        return [dict(r) for r in rows]

    # ---- speed sweeps (`moebench speed`) ------------------------------------------------

    def add_speed_cell(self, row: dict[str, Any]) -> None:
        """Insert or replace one speed cell (keys: `speed_results` columns but created_at)."""
        row = {**row, "created_at": utc_now()}
        cols = ", ".join(row)
        with self._tx():
            self.db.execute(f"INSERT OR REPLACE INTO speed_results ({cols}) VALUES "
                            f"({', '.join('?' * len(row))})", tuple(row.values()))

    def speed_rows(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored speed cells of the runs, in run and sweep order (empty for task runs)."""
        rows = self.db.execute(
            f"SELECT * FROM speed_results WHERE run_id IN ({_marks(run_ids)}) ORDER BY "
            "run_id, position, concurrency, prompt_tokens", list(run_ids))
        return [dict(r) for r in rows]

    # ---- frames for reports (pandas imported lazily) ------------------------------------

    def samples_frame(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """One row per stored sample; columns SAMPLE_COLUMNS + SAMPLE_FRAME_EXTRA, run order."""
        import pandas as pd

        frame = pd.read_sql_query(_samples_sql(run_ids), self.db, params=list(run_ids))
        frame["passed"] = frame["passed"].map({1: True, 0: False}).astype("boolean")
        frame["cold"] = frame["cold"].astype(bool)
        for column in ("repeat", "prompt_tokens", "output_tokens", "attempts"):
            frame[column] = frame[column].astype("Int64")  # no "12.0" when some are missing
        frame["tokens_per_s"] = frame["output_tokens"] / frame["decode_s"].where(
            frame["decode_s"] > 0)
        return frame[list((*SAMPLE_COLUMNS, *SAMPLE_FRAME_EXTRA))]

    def sample_rows(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """`samples_frame` as plain dicts (no pandas, for a run's own table and CSV):
        `passed` True/False/None, `cold` bool, `tokens_per_s` None without a decode time."""
        rows = []
        cursor = self.db.cursor()
        cursor.row_factory = None  # plain tuples zipped with the names: 5x cheaper than Row
        cursor.execute(_samples_sql(run_ids), list(run_ids))
        names = [d[0] for d in cursor.description]
        for values in cursor:
            data = dict(zip(names, values, strict=True))
            data["passed"] = None if data["passed"] is None else bool(data["passed"])
            data["cold"] = bool(data["cold"])
            tokens, decode = data["output_tokens"], data["decode_s"]
            data["tokens_per_s"] = (tokens / decode if tokens is not None and decode is not None
                                   and decode > 0 else None)
            rows.append(data)
        return rows

    def model_rows(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """`models_frame` as plain dicts (`extra` decoded), run order."""
        rows = [dict(r) for r in self.db.execute(_models_sql(run_ids), list(run_ids))]
        for row in rows:
            row["extra"] = json.loads(row["extra"]) if row["extra"] else {}
        return rows

    def models_frame(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """One row per model per run (MODEL_COLUMNS; `extra` decoded to a dict), run order."""
        import pandas as pd

        frame = pd.read_sql_query(_models_sql(run_ids), self.db, params=list(run_ids))
        frame["extra"] = frame["extra"].map(lambda v: json.loads(v) if v else {})
        return frame

    def router_frame(self, run_ids: Sequence[str], *, by_sample: bool = False) -> pd.DataFrame:
        """Tokens per expert, per model × suite × task × phase × layer (ROUTER_COLUMNS).

        `by_sample=True`: one row group per sample instead (ROUTER_COLUMNS + `case_id`,
        `repeat`), from the samples' own counts; empty for runs stored before they were kept.
        """
        import pandas as pd

        if by_sample:
            return pd.DataFrame(self._router_sample_rows(run_ids),
                                columns=[*ROUTER_COLUMNS, "case_id", "repeat"])
        sql = (f"SELECT {', '.join(ROUTER_COLUMNS)} FROM router_load WHERE run_id IN "
               f"({_marks(run_ids)}) ORDER BY run_id, model, suite, task, phase, layer, expert")
        return pd.read_sql_query(sql, self.db, params=list(run_ids))

    def has_router(self, run_ids: Sequence[str]) -> bool:
        """Whether any of the runs stored router counts (engine runs), without pandas."""
        sql = f"SELECT 1 FROM router_load WHERE run_id IN ({_marks(run_ids)}) LIMIT 1"
        return self.db.execute(sql, list(run_ids)).fetchone() is not None

    def _router_sample_rows(self, run_ids: Sequence[str]) -> Iterable[tuple[Any, ...]]:
        """Each sample's nonzero router counts as rows (a damaged JSON value is skipped)."""
        sql = ("SELECT run_id, model, suite, task, case_id, repeat, router FROM samples WHERE "
               f"router IS NOT NULL AND run_id IN ({_marks(run_ids)}) "
               "ORDER BY run_id, model, seq, repeat")
        for run, model, suite, task, case, repeat, text in self.db.execute(sql, list(run_ids)):
            try:
                counts = list(count_rows(json.loads(text)))
            except (ValueError, TypeError, AttributeError):
                continue
            yield from ((run, model, suite, task, *c, case, repeat) for c in counts)

    def runs_frame(self) -> pd.DataFrame:
        """Every run, newest first, with its sample and error counts."""
        import pandas as pd

        sql = ("SELECT r.id AS run_id, r.started_at, r.finished_at, r.status, r.backend, "
               "r.models, r.suites, COUNT(s.rowid) AS samples, "
               "COALESCE(SUM(s.passed), 0) AS passed, "
               "COALESCE(SUM(s.error IS NOT NULL), 0) AS errors "
               "FROM runs r LEFT JOIN samples s ON s.run_id = r.id "
               "GROUP BY r.id ORDER BY r.started_at DESC, r.id DESC")
        frame = pd.read_sql_query(sql, self.db)
        frame["models"] = frame["models"].map(lambda v: names_text(v, lambda m: str(m)))
        frame["suites"] = frame["suites"].map(lambda v: names_text(v, lambda s: str(s["name"])))
        live = pd.read_sql_query("SELECT id AS run_id, status, pid, pid_started, host_name, "
                                 "planned FROM runs", self.db).set_index("run_id")
        frame["status"] = [status_text(dict(live.loc[r]), int(n))
                           for r, n in zip(frame["run_id"], frame["samples"])]
        return frame


def _samples_sql(run_ids: Sequence[str]) -> str:
    """The samples of `run_ids` in run order (SAMPLE_COLUMNS + extra, no tokens_per_s)."""
    cols = [c for c in (*SAMPLE_COLUMNS, *SAMPLE_FRAME_EXTRA) if c != "tokens_per_s"]
    return (f"SELECT {', '.join('s.' + c for c in cols)} FROM samples s JOIN models m ON "
            f"m.run_id = s.run_id AND m.model = s.model WHERE s.run_id IN "
            f"({_marks(run_ids)}) ORDER BY s.run_id, m.position, s.seq, s.repeat")


def _models_sql(run_ids: Sequence[str]) -> str:
    """The models of `run_ids` (MODEL_COLUMNS), run order."""
    return (f"SELECT {', '.join(MODEL_COLUMNS)} FROM models WHERE run_id IN "
            f"({_marks(run_ids)}) ORDER BY run_id, position")


def _marks(values: Sequence[Any]) -> str:
    if not values:
        raise StoreError("no run ids given — pass RUN_ID or `last`")
    return ", ".join("?" * len(values))


class _Transaction:
    """`with store._tx():` — BEGIN IMMEDIATE … COMMIT, ROLLBACK on error (autocommit conn)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        retry_locked(lambda: self.db.execute("BEGIN IMMEDIATE"))
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            retry_locked(lambda: self.db.execute("COMMIT"))
        elif self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (e.g. disk full); keep the first error


def model_info_dict(info: ModelInfo) -> dict[str, Any]:
    """ModelInfo as a JSON-friendly dict (for run manifests and debugging)."""
    data = asdict(info)
    data["extra"] = dict(info.extra)
    return data
