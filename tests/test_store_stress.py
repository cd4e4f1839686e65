"""The store under stress: damaged, foreign, newer/older, read-only and full stores (issue 17).

Each bad store must give one line and exit 1 through the CLI (never a traceback), and a
store that can still be read must still be readable.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.errors import StoreError
from moebench.store import MIGRATIONS, Store
from moebench.store_guard import StoreFull
from moebench.types import Completion, ModelInfo, Record, Request, Score, ScorerSpec

runner = CliRunner()


def _record(run_id: str, case_id: str) -> Record:
    request = Request(suite="s", task="t", case_id=case_id, prompt="p " * 200,
                      scorer=ScorerSpec("number"), case={"id": case_id, "expected": 2})
    completion = Completion(text="2 " * 300, model="m:latest", latency_s=0.1)
    return Record(run_id, "m:latest", "ollama", request, completion, Score(1.0, True, "2"),
                  stripped="2")


def _store_with_run(out: Path, samples: int = 3) -> str:
    store = Store(out)
    run_id = store.create_run({"suites": [{"name": "s", "path": "s.yaml", "sha256": "x"}],
                               "models": ["m"], "backend": "ollama", "options": {},
                               "planned": samples})
    store.add_model(run_id, ModelInfo(name="m:latest", backend="ollama", digest="d"), 0)
    for i in range(samples):
        store.add_record(_record(run_id, f"c{i}"), seq=i, digest="d")
    store.set_status(run_id, "completed")
    store.close()
    return run_id


def _one_line_exit_1(args: list[str], *needles: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(
        result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("content", "needle"), [
    (b"this is not a database at all\n" * 10, "not a moebench store"),
    (b"SQLite format 3\x00" + b"\x00" * 20, "not a moebench store"),  # truncated header
    (os.urandom(4096), "not a moebench store"),
])
def test_garbage_or_truncated_store_is_one_line(tmp_path: Path, content: bytes,
                                                needle: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "moebench.db").write_bytes(content)
    for args in (["report", "--out", str(out)], ["runs", "--out", str(out)],
                 ["run", "--out", str(out), "-m", "x", "--host", "http://127.0.0.1:9"]):
        _one_line_exit_1(args, needle)


def _checkpointed(out: Path, samples: int) -> Path:
    """A store with `samples` rows, all in the main file (WAL checkpointed): its path."""
    _store_with_run(out, samples=samples)
    db = out / "moebench.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def test_truncated_store_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    db = _checkpointed(out, 40)
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    _one_line_exit_1(["report", "--out", str(out)], str(db))


def test_garbage_in_the_middle_is_found_by_quick_check(tmp_path: Path) -> None:
    out = tmp_path / "out"
    db = _checkpointed(out, 60)
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page + 100: 4 * page - 100] = os.urandom(page - 200)  # a page in the middle
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged"):
        Store(out)
    line = _one_line_exit_1(["report", "--out", str(out)], "damaged")
    assert ".recover" in line


def test_foreign_sqlite_file_does_not_get_our_tables(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with sqlite3.connect(out / "moebench.db") as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    _one_line_exit_1(["runs", "--out", str(out)], "did not write", "invoices")
    with pytest.raises(StoreError):
        Store(out)
    with sqlite3.connect(out / "moebench.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}


def test_store_from_a_newer_moebench_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _store_with_run(out)
    with sqlite3.connect(out / "moebench.db") as conn:
        conn.execute("INSERT INTO _migrations VALUES ('m999_future', 'x')")
    _one_line_exit_1(["report", "--out", str(out)], "newer moebench", "m999_future")


def test_older_schema_is_migrated_and_keeps_its_samples(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    db = sqlite3.connect(out / "moebench.db", isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    db.execute("BEGIN")
    MIGRATIONS[0](db)  # a store as the first release wrote it
    db.execute("INSERT INTO _migrations VALUES ('m001_initial', 'x')")
    db.execute("INSERT INTO runs (id, started_at, status, suites, models, backend, options) "
               "VALUES ('r1', '2026', 'completed', '[]', '[\"m\"]', 'ollama', '{}')")
    db.execute("COMMIT")
    db.close()
    store = Store.open(out)
    assert store.run("r1")["status"] == "completed"
    assert store.completeness("r1") == (0, None)  # no plan recorded: no incomplete note
    store.close()
    result = runner.invoke(app, ["runs", "--out", str(out)])
    assert result.exit_code == 0 and "r1" in result.stdout


def test_bad_json_in_a_run_row_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_id = _store_with_run(out)
    with sqlite3.connect(out / "moebench.db") as conn:
        conn.execute("UPDATE runs SET options = '{not json', models = '[oops'")
    _one_line_exit_1(["report", "--out", str(out)], run_id, "damaged `")
    listed = runner.invoke(app, ["runs", "--out", str(out)])
    assert listed.exit_code == 0 and run_id in listed.stdout  # the list still shows it


def test_bad_sql_state_is_a_store_error_not_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _store_with_run(out)
    with sqlite3.connect(out / "moebench.db") as conn:  # a column lost by hand-editing
        conn.execute("ALTER TABLE samples DROP COLUMN ttft_s")
    _one_line_exit_1(["report", "--out", str(out)], "moebench.db")


@pytest.fixture
def read_only_out(tmp_path: Path) -> Iterator[Path]:
    """A store in a read-only folder: a read-only bind mount as root, else chmod."""
    out = tmp_path / "out"
    _store_with_run(out)
    if os.geteuid() == 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        if subprocess.run(["mount", "--bind", "-o", "ro", str(out), str(ro)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot bind-mount read-only here")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True)
        try:
            yield ro
        finally:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
        return
    for path in (out / "moebench.db", out):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield out
    finally:
        out.chmod(0o755)


def test_read_only_store_can_be_read_but_not_run_into(read_only_out: Path) -> None:
    assert not os.access(read_only_out, os.W_OK)
    for args in (["report", "--out", str(read_only_out), "--csv", "s.csv"],
                 ["runs", "--out", str(read_only_out)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert len(Path("s.csv").read_text().splitlines()) == 2
    _one_line_exit_1(["run", "--out", str(read_only_out), "-m", "x"], "not a writable folder")


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system holding `folder` until `leave` bytes are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * max(free - leave, 0))


def test_full_disk_is_store_full_and_keeps_stored_samples(tiny_disk: Path) -> None:
    out = tiny_disk / "out"
    run_id = _store_with_run(out, samples=5)
    store = Store(out)
    _fill(tiny_disk, leave=0)
    with pytest.raises(StoreFull, match="full"):
        for i in range(5, 5000):
            store.add_record(_record(run_id, f"c{i}"), seq=i, digest="d")
    store.close()
    (tiny_disk / "filler").unlink()
    again = Store.open(out)
    assert again.completeness(run_id)[0] >= 5
    again.close()


def test_full_disk_by_max_page_count_without_root(tmp_path: Path) -> None:
    # The same path on any machine: SQLite's page cap stands in for the disk (SQLITE_FULL).
    out = tmp_path / "out"
    run_id = _store_with_run(out, samples=2)
    store = Store(out)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(StoreFull):
        for i in range(2, 2000):
            store.add_record(_record(run_id, f"c{i}"), seq=i, digest="d")
    store.close()
    assert Store.open(out).completeness(run_id)[0] >= 2


def test_new_store_opened_by_many_at_once_migrates_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    errors: list[BaseException] = []

    def open_and_write() -> None:
        try:
            _store_with_run(out, samples=5)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=open_and_write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = Store.open(out)
    assert len(store.runs_frame()) == 6 and store.db.execute(
        "SELECT COUNT(*) FROM samples").fetchone()[0] == 30
    names = [r[0] for r in store.db.execute("SELECT name FROM _migrations")]
    assert names == [fn.__name__ for fn in MIGRATIONS]
    store.close()
