"""`moebench merge`: runs of another machine's store copied in, idempotently, the other store
never changed; newer schemas refused, older ones migrated in a copy; `report A B` then shows
each run's machine."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from _run_support import MODELS, standin, write_suite  # noqa: F401
from typer.testing import CliRunner

from moebench.cli import app
from moebench.merge import SKIPPED_TABLES, TABLE_KEYS
from moebench.store import Store
from moebench.store_schema import MIGRATIONS
from moebench.testing.ollama_standin import OllamaStandin

runner = CliRunner()


def _machine_run(server: OllamaStandin, suite: Path, out: str, name: str) -> str:
    """A run in `out` as if made on machine `name` (its facts set, router counts added), and a
speed run."""
    result = runner.invoke(app, ["run", "-s", str(suite), "--host", server.url, "-m",
                                 MODELS[0], "--out", out, "--limit", "2"])
    assert result.exit_code == 0, result.output
    store = Store(out)
    run_id = store.resolve("last")
    store.update_run(run_id, host_name=name, machine={"cpu": f"CPU of {name}", "cores": 8})
    store.db.execute("INSERT INTO router_load VALUES (?, ?, 'mini', 'arith', 'decode', 0, 1, 7)",
                     (run_id, MODELS[0]))
    speed = store.create_run({"suites": [], "models": [MODELS[0]], "backend": "ollama",
                              "options": {"kind": "speed"}})
    store.add_speed_cell({"run_id": speed, "position": 0, "model": MODELS[0],
                          "backend": "ollama", "prompt_tokens": 128, "gen_tokens": 32,
                          "concurrency": 1, "repeats": 1, "partial_offload": 0,
                          "other_models_resident": 0, "early_stop": 0, "high_variance": 0,
                          "cpu_only": 0, "tg_tok_s": 42.0})
    store.close()
    return run_id


def _counts(out: str) -> dict[str, int]:
    db = sqlite3.connect(Path(out) / "moebench.db")
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLE_KEYS}
    finally:
        db.close()


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file in the folder by name with its sha256: byte-for-byte unchanged means equal."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_merge_twice_adds_nothing_and_report_compares_the_machines(
        standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    run_a = _machine_run(standin, suite, "a", "box-a")
    run_b = _machine_run(standin, suite, "b", "box-b")
    before, other = _counts("a"), _fingerprint(Path("b"))
    first = runner.invoke(app, ["merge", "b/moebench.db", "--out", "a"])
    assert first.exit_code == 0, first.output
    assert "merged 2 runs (3 samples, 1 model, 1 router count, 1 speed cell)" in first.stdout
    merged = _counts("a")
    assert merged == {t: before[t] + n for t, n in _counts("b").items()}
    again = runner.invoke(app, ["merge", "b", "--out", "a"])  # the folder works too
    assert again.exit_code == 0, again.output
    assert "merged 0 runs" in again.stdout and "2 already here" in again.stdout
    assert _counts("a") == merged and _fingerprint(Path("b")) == other
    store = Store.open("a")
    assert store.run(run_b)["machine"] == {"cpu": "CPU of box-b", "cores": 8}
    store.close()

    report = runner.invoke(app, ["report", run_a, run_b, "--out", "a"])
    assert report.exit_code == 0, report.output
    assert "machines" in report.stdout and "box-a" in report.stdout
    assert "CPU of box-a" in report.stdout and "CPU of box-b" in report.stdout
    assert f"{run_a} (A) vs {run_b} (B)" in report.stdout
    compare = runner.invoke(app, ["report", "--compare", run_a, run_b, "--out", "a"])
    assert compare.exit_code == 0 and "CPU of box-b" in compare.stdout

    Store("b").update_run(run_b, status="interrupted")  # the run changed there since
    changed = runner.invoke(app, ["merge", "b", "--out", "a"])
    assert changed.exit_code == 0, changed.output
    assert f"run {run_b} differs between the stores (runs: 1 rows here" in changed.stderr
    assert "1 differing (skipped)" in changed.stdout and _counts("a") == merged


def test_a_store_of_a_newer_moebench_is_refused_in_one_line(tmp_path: Path) -> None:
    Store("a").close()
    Store("b").close()
    db = sqlite3.connect("b/moebench.db")
    db.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01')")
    db.commit()
    db.close()
    result = runner.invoke(app, ["merge", "b/moebench.db", "--out", "a"])
    assert result.exit_code == 1
    assert "written by a newer moebench (schema step m999_from_the_future)" in result.stderr
    assert "upgrade moebench" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_older_store_is_migrated_in_a_copy_and_left_unchanged(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / "moebench.db", isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    MIGRATIONS[0](db)  # a store of the first moebench: no expected_detail, no speed_results
    db.execute("INSERT INTO _migrations VALUES ('m001_initial', '2024-01-01')")
    db.execute("INSERT INTO runs (id, started_at, status, suites, models, backend, options) "
               "VALUES ('20240101-000000-abcd', '2024-01-01', 'completed', '[]', '[\"m\"]', "
               "'ollama', '{}')")
    db.execute("INSERT INTO models (run_id, position, model, backend) VALUES "
               "('20240101-000000-abcd', 0, 'm', 'ollama')")
    db.execute("INSERT INTO samples (run_id, model, backend, suite, task, case_id, repeat, seq, "
               "passed, created_at) VALUES ('20240101-000000-abcd', 'm', 'ollama', 's', 't', "
               "'c1', 1, 0, 1, '2024-01-01')")
    db.close()
    other = _fingerprint(old)
    result = runner.invoke(app, ["merge", str(old / "moebench.db"), "--out", "a"])
    assert result.exit_code == 0, result.output
    assert "older schema" in result.stderr and "merged 1 run (1 sample," in result.stdout
    assert _fingerprint(old) == other  # no migration, no WAL, no lock file beside it
    store = Store.open("a")
    (row,) = store.sample_rows(["20240101-000000-abcd"])
    assert row["passed"] is True and row["expected_detail"] is None
    store.close()


def test_every_table_of_the_schema_has_merge_keys(tmp_path: Path) -> None:
    store = Store("fresh")
    tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")}
    store.close()
    assert tables == set(TABLE_KEYS) | set(SKIPPED_TABLES)
