"""The store's schema: numbered migrations (llm-style: a list of small functions, applied once
each, in order, recorded in `_migrations`). A migration only adds (tables, columns), so an
older moebench's store opens in a newer one; `store_guard` refuses a store that has a step this
version does not know (written by a newer moebench).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

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


@_migration
def m004_run_process(db: sqlite3.Connection) -> None:
    # who runs the run (dead-run detection) and how many samples it plans (incomplete notes)
    _script(db, """
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    ALTER TABLE runs ADD COLUMN pid_started REAL;
    ALTER TABLE runs ADD COLUMN host_name TEXT;
    ALTER TABLE runs ADD COLUMN planned INTEGER;
    """)


@_migration
def m005_model_hosts(db: sqlite3.Connection) -> None:
    # several hosts in one run (issue 15): where each model ran, that host's server version,
    # and the run's model → host assignment (`--resume` keeps it)
    _script(db, """
    ALTER TABLE models ADD COLUMN host TEXT;
    ALTER TABLE models ADD COLUMN server_version TEXT;
    ALTER TABLE runs ADD COLUMN assignment TEXT;
    """)


def _script(db: sqlite3.Connection, sql: str) -> None:
    # executescript() would COMMIT the migration's open transaction; run statements one by one.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)
