"""Crash safety for real: a `moebench run` process killed mid-run (SIGKILL, SIGINT), then resumed.

Both the stand-in server and the run are separate processes, so nothing but the SQLite file
carries state across the kill.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _run_support import write_suite

pytestmark = pytest.mark.slow

MODEL = "mixtral:8x7b"
TOTAL = 9  # 8 arithmetic cases + 1 echo case


@pytest.fixture
def server_url() -> Iterator[str]:
    """A stand-in server process with a per-token delay (≈ 0.3 s per answer)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "moebench.testing.ollama_standin", "--port", "0",
         "--token-delay", "0.03"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.startswith("listening on "), line
    yield line.split("listening on ", 1)[1].strip()
    proc.kill()
    proc.wait()


def _start_run(url: str, suite: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OLLAMA_HOST": url}
    return subprocess.Popen(
        [sys.executable, "-m", "moebench", "run", "-s", str(suite), "-m", MODEL, *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as on a terminal


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def _wait_for_rows(db: Path, n: int, proc: subprocess.Popen[str], limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while _count(db) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run stored no samples in time"
        time.sleep(0.05)


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT task, case_id, repeat, created_at, error FROM samples "
                            "ORDER BY seq").fetchall()


def _resume(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": url}
    return subprocess.run([sys.executable, "-m", "moebench", "run", "--resume", "last"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_kill_9_then_resume_loses_and_duplicates_nothing(server_url: str, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, n=8)
    db = Path("results/moebench.db")
    proc = _start_run(server_url, suite)
    _wait_for_rows(db, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _rows(db)
    assert 3 <= len(before) < TOTAL
    listed = subprocess.run([sys.executable, "-m", "moebench", "runs"], capture_output=True,
                            text=True, timeout=60)  # a killed run must not look finished
    assert f"interrupted (process gone) · incomplete: {len(before)}/{TOTAL}" in listed.stdout

    done = _resume(server_url)
    assert done.returncode == 0, done.stderr
    after = _rows(db)
    assert len(after) == TOTAL and len({r[:3] for r in after}) == TOTAL
    assert all(r[4] is None for r in after)
    assert set(before) <= set(after)  # finished samples were kept, not redone
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("completed",)]


def test_ctrl_c_marks_the_run_interrupted_and_says_how_to_resume(
        server_url: str, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, n=8)
    db = Path("results/moebench.db")
    proc = _start_run(server_url, suite)
    _wait_for_rows(db, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "moebench run --resume" in stderr
    with sqlite3.connect(db) as conn:
        run_id, status = conn.execute("SELECT id, status FROM runs").fetchone()
    assert status == "interrupted" and run_id in stderr
    kept = _count(db)
    assert 2 <= kept < TOTAL

    done = _resume(server_url)
    assert done.returncode == 0, done.stderr
    assert _count(db) == TOTAL
