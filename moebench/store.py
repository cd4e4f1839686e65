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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moebench.errors import RunNotFound, StoreError
from moebench.paths import DB_NAME
from moebench.scorers import describe_expected
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

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def _migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@_migration
def m001_initial(db: sqlite3.Connection) -> None:
    _script(db, """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
        suites TEXT NOT NULL, models TEXT NOT NULL, backend TEXT NOT NULL, host TEXT,
        options TEXT NOT NULL, moebench_version TEXT, server_version TEXT, machine TEXT);
    CREATE TABLE models (
        run_id TEXT NOT NULL REFERENCES runs(id), position INTEGER NOT NULL, model TEXT NOT NULL,
        backend TEXT NOT NULL, digest TEXT, family TEXT, parameter_size TEXT, quantization TEXT,
        context_length INTEGER, experts INTEGER, top_k INTEGER, shared_experts INTEGER,
        total_params INTEGER, active_params INTEGER, size_bytes INTEGER, vram_bytes INTEGER,
        load_s REAL, loads INTEGER, extra TEXT, PRIMARY KEY (run_id, model));
    CREATE TABLE samples (
        run_id TEXT NOT NULL REFERENCES runs(id), model TEXT NOT NULL, backend TEXT NOT NULL,
        suite TEXT NOT NULL, task TEXT NOT NULL, case_id TEXT NOT NULL, repeat INTEGER NOT NULL,
        seq INTEGER NOT NULL, digest TEXT, prompt TEXT, system TEXT, options TEXT,
        output TEXT, stripped TEXT, answer TEXT, score REAL, passed INTEGER, explanation TEXT,
        expected TEXT, latency_s REAL, ttft_s REAL, prompt_tokens INTEGER, output_tokens INTEGER,
        decode_s REAL, prompt_eval_s REAL, server_load_s REAL, server_total_s REAL,
        done_reason TEXT, timing_source TEXT, queue_s REAL, cold INTEGER NOT NULL DEFAULT 0,
        error TEXT, attempts INTEGER, created_at TEXT NOT NULL,
        UNIQUE (run_id, model, suite, task, case_id, repeat));
    CREATE TABLE router_load (
        run_id TEXT NOT NULL, model TEXT NOT NULL, suite TEXT NOT NULL, task TEXT NOT NULL,
        phase TEXT NOT NULL, layer INTEGER NOT NULL, expert INTEGER NOT NULL,
        tokens INTEGER NOT NULL, PRIMARY KEY (run_id, model, suite, task, phase, layer, expert));
    """)


@_migration
def m002_samples_expected_detail(db: sqlite3.Connection) -> None:
    # What the scorer expected, in words ("6 words × 9 letters"), for every scorer (issue 18).
    db.execute("ALTER TABLE samples ADD COLUMN expected_detail TEXT")


@_migration
def m003_speed_results(db: sqlite3.Connection) -> None:
    """`moebench speed`: one row per model × prompt length × concurrency (additive)."""
    _script(db, """
    CREATE TABLE speed_results (
        run_id TEXT NOT NULL REFERENCES runs(id), position INTEGER NOT NULL,
        model TEXT NOT NULL, backend TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
        gen_tokens INTEGER NOT NULL, concurrency INTEGER NOT NULL, repeats INTEGER NOT NULL,
        pp_tok_s REAL, pp_tok_s_sd REAL, tg_tok_s REAL, tg_tok_s_sd REAL, ttft_s REAL,
        load_s REAL, gpu_share REAL, partial_offload INTEGER NOT NULL,
        other_models_resident INTEGER NOT NULL, early_stop INTEGER NOT NULL,
        roofline_tok_s REAL, roofline_pct REAL, pp_tok_s_median REAL, tg_tok_s_median REAL,
        ttft_s_sd REAL, ttft_s_median REAL, agg_tok_s REAL, agg_tok_s_sd REAL,
        high_variance INTEGER NOT NULL, cpu_only INTEGER NOT NULL,
        prompt_tokens_measured REAL, gen_tokens_measured REAL, early_stops INTEGER,
        errors INTEGER, timing_source TEXT, resident_models TEXT, notes TEXT, detail TEXT,
        created_at TEXT NOT NULL, PRIMARY KEY (run_id, model, prompt_tokens, concurrency))
    """)


def _script(db: sqlite3.Connection, sql: str) -> None:
    # executescript() would COMMIT the migration's open transaction; run statements one by one.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def utc_now() -> str:
    """Current UTC time as ISO-8601 with seconds precision and a `Z`."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """A sortable run id: `YYYYMMDD-HHMMSS-xxxx` (UTC, 4 random hex digits)."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


_MODEL_FIELDS = MODEL_COLUMNS[3:-1]  # digest … loads (run_id, model, backend and extra apart)

_SAMPLE_SQL = """
INSERT INTO samples (run_id, model, backend, suite, task, case_id, repeat, seq, digest, prompt,
    system, options, output, stripped, answer, score, passed, explanation, expected, latency_s,
    ttft_s, prompt_tokens, output_tokens, decode_s, prompt_eval_s, server_load_s,
    server_total_s, done_reason, timing_source, queue_s, cold, error, attempts, created_at,
    expected_detail)
VALUES (:run_id, :model, :backend, :suite, :task, :case_id, :repeat, :seq, :digest, :prompt,
    :system, :options, :output, :stripped, :answer, :score, :passed, :explanation, :expected,
    :latency_s, :ttft_s, :prompt_tokens, :output_tokens, :decode_s, :prompt_eval_s,
    :server_load_s, :server_total_s, :done_reason, :timing_source, :queue_s, :cold, :error,
    :attempts, :created_at, :expected_detail)
ON CONFLICT (run_id, model, suite, task, case_id, repeat) DO UPDATE SET
    seq=excluded.seq, digest=excluded.digest, prompt=excluded.prompt, system=excluded.system,
    options=excluded.options, output=excluded.output, stripped=excluded.stripped,
    answer=excluded.answer, score=excluded.score, passed=excluded.passed,
    explanation=excluded.explanation, expected=excluded.expected, latency_s=excluded.latency_s,
    ttft_s=excluded.ttft_s, prompt_tokens=excluded.prompt_tokens,
    output_tokens=excluded.output_tokens, decode_s=excluded.decode_s,
    prompt_eval_s=excluded.prompt_eval_s, server_load_s=excluded.server_load_s,
    server_total_s=excluded.server_total_s, done_reason=excluded.done_reason,
    timing_source=excluded.timing_source, queue_s=excluded.queue_s, cold=excluded.cold,
    error=excluded.error, attempts=excluded.attempts, created_at=excluded.created_at,
    expected_detail=excluded.expected_detail
"""


def _sample_row(record: Record, *, seq: int, cold: bool, digest: str | None) -> dict[str, Any]:
    """Flatten a Record into the samples table's columns."""
    req, comp, score = record.request, record.completion, record.score
    row: dict[str, Any] = {
        "run_id": record.run_id, "model": record.model, "backend": record.backend,
        "suite": req.suite, "task": req.task, "case_id": req.case_id, "repeat": req.repeat,
        "seq": seq, "digest": digest, "prompt": req.prompt, "system": req.system,
        "options": _json(dict(req.options)), "expected": _json(req.expected),
        "stripped": record.stripped, "error": record.error, "cold": int(cold),
        "created_at": utc_now(), "answer": None, "score": None, "passed": None,
        "explanation": None, "output": None, "attempts": None,
        "expected_detail": describe_expected(req.scorer, req.case),
    }
    if score is not None:
        row.update(answer=score.answer, score=score.score, passed=int(score.passed),
                   explanation=score.explanation)
    fields = ("latency_s", "ttft_s", "prompt_tokens", "output_tokens", "decode_s",
              "prompt_eval_s", "server_total_s", "done_reason", "timing_source", "queue_s")
    row.update({name: getattr(comp, name, None) for name in fields})
    row["server_load_s"] = comp.load_s if comp else None
    if comp is not None:
        row.update(output=comp.text, attempts=comp.attempts)
    return row


def _router_rows(record: Record) -> Iterable[tuple[Any, ...]]:
    """(run, model, suite, task, phase, layer, expert, tokens) for each nonzero router count."""
    router = record.completion.router if record.completion else None
    req = record.request
    for phase, layers in (router or {}).items():
        for layer, counts in enumerate(layers or []):
            for expert, tokens in enumerate(counts):
                if tokens:
                    yield (record.run_id, record.model, req.suite, req.task, phase, layer,
                           expert, int(tokens))


class Store:
    """A results store in `out/moebench.db`; use `Store.open(out)` for read-only commands."""

    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)
        self.path = self.out / DB_NAME
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL
            self._migrate()
        except (OSError, sqlite3.DatabaseError) as error:
            raise StoreError(f"cannot open the results store {self.path}: {error} — "
                             "pass another --out DIR") from None
        self.db.row_factory = sqlite3.Row

    @classmethod
    def open(cls, out: Path | str) -> Store:
        """Open an existing store; RunNotFound naming the fix when there is none yet."""
        if not (Path(out) / DB_NAME).exists():
            raise RunNotFound(f"no runs in {out}/ yet — run: moebench run --out {out}")
        return cls(out)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        self.db.close()

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, "
                        "applied_at TEXT NOT NULL)")
        done = {row[0] for row in self.db.execute("SELECT name FROM _migrations")}
        for fn in MIGRATIONS:
            if fn.__name__ not in done:
                with self._tx():
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
        row = {k: _json(v) if isinstance(v, (dict, list)) else v for k, v in row.items()}
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
        values = {k: _json(v) if isinstance(v, (dict, list)) else v for k, v in fields.items()}
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
        for key in ("suites", "models", "options", "machine"):
            data[key] = json.loads(data[key]) if data.get(key) else None
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

    # ---- models and samples -------------------------------------------------------------

    def add_model(self, run_id: str, info: ModelInfo, position: int) -> None:
        """Insert or replace the run's row for model `info.name`."""
        values = {name: getattr(info, name) for name in _MODEL_FIELDS}
        cols = ["run_id", "position", "model", "backend", *values, "extra"]
        params = [run_id, position, info.name, info.backend, *values.values(),
                  _json(dict(info.extra))]
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
        fields = {name: data[name] for name in _MODEL_FIELDS}
        return ModelInfo(name=data["model"], backend=data["backend"],
                         extra=json.loads(data["extra"] or "{}"), **fields)

    def add_record(self, record: Record, *, seq: int, cold: bool = False,
                   digest: str | None = None) -> None:
        """Write one scored sample (and its router counts) in one transaction."""
        with self._tx():
            self.db.execute(_SAMPLE_SQL, _sample_row(record, seq=seq, cold=cold, digest=digest))
            self.db.executemany(
                "INSERT INTO router_load VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(run_id, model, suite, task, phase, layer, expert) DO UPDATE SET "
                "tokens = tokens + excluded.tokens", list(_router_rows(record)))

    def done_keys(self, run_id: str, model: str,
                  digest: str | None) -> set[tuple[str, str, str, int]]:
        """(suite, task, case_id, repeat) of samples stored without error for this model digest."""
        rows = self.db.execute(
            "SELECT suite, task, case_id, repeat FROM samples WHERE run_id = ? AND model = ? "
            "AND error IS NULL AND digest IS ?", (run_id, model, digest))
        return {(r[0], r[1], r[2], int(r[3])) for r in rows}

    def forget_model(self, run_id: str, model: str) -> int:
        """Delete a model's samples and router counts from a run (its digest changed)."""
        with self._tx():
            n = self.db.execute("DELETE FROM samples WHERE run_id = ? AND model = ?",
                                (run_id, model)).rowcount
            self.db.execute("DELETE FROM router_load WHERE run_id = ? AND model = ?",
                            (run_id, model))
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

        cols = [c for c in (*SAMPLE_COLUMNS, *SAMPLE_FRAME_EXTRA) if c != "tokens_per_s"]
        sql = (f"SELECT {', '.join('s.' + c for c in cols)} FROM samples s JOIN models m ON "
               f"m.run_id = s.run_id AND m.model = s.model WHERE s.run_id IN "
               f"({_marks(run_ids)}) ORDER BY s.run_id, m.position, s.seq, s.repeat")
        frame = pd.read_sql_query(sql, self.db, params=list(run_ids))
        frame["passed"] = frame["passed"].map({1: True, 0: False}).astype("boolean")
        frame["cold"] = frame["cold"].astype(bool)
        for column in ("repeat", "prompt_tokens", "output_tokens", "attempts"):
            frame[column] = frame[column].astype("Int64")  # no "12.0" when some are missing
        frame["tokens_per_s"] = frame["output_tokens"] / frame["decode_s"].where(
            frame["decode_s"] > 0)
        return frame[list((*SAMPLE_COLUMNS, *SAMPLE_FRAME_EXTRA))]

    def models_frame(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """One row per model per run (MODEL_COLUMNS; `extra` decoded to a dict), run order."""
        import pandas as pd

        sql = (f"SELECT {', '.join(MODEL_COLUMNS)} FROM models WHERE run_id IN "
               f"({_marks(run_ids)}) ORDER BY run_id, position")
        frame = pd.read_sql_query(sql, self.db, params=list(run_ids))
        frame["extra"] = frame["extra"].map(lambda v: json.loads(v) if v else {})
        return frame

    def router_frame(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Tokens per expert, per model × suite × task × phase × layer (ROUTER_COLUMNS)."""
        import pandas as pd

        sql = (f"SELECT {', '.join(ROUTER_COLUMNS)} FROM router_load WHERE run_id IN "
               f"({_marks(run_ids)}) ORDER BY run_id, model, suite, task, phase, layer, expert")
        return pd.read_sql_query(sql, self.db, params=list(run_ids))

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
        frame["models"] = frame["models"].map(lambda v: ", ".join(json.loads(v)))
        frame["suites"] = frame["suites"].map(
            lambda v: ", ".join(s["name"] for s in json.loads(v)))
        return frame


def _marks(values: Sequence[Any]) -> str:
    if not values:
        raise StoreError("no run ids given — pass RUN_ID or `last`")
    return ", ".join("?" * len(values))


class _Transaction:
    """`with store._tx():` — BEGIN IMMEDIATE … COMMIT, ROLLBACK on error (autocommit conn)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def model_info_dict(info: ModelInfo) -> dict[str, Any]:
    """ModelInfo as a JSON-friendly dict (for run manifests and debugging)."""
    data = asdict(info)
    data["extra"] = dict(info.extra)
    return data
