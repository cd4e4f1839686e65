"""Signals, concurrent writers and a full disk, with real `moebench run` processes (issue 17).

The stand-in server runs in this process (so a test can hang it or count requests); every
`moebench run` is its own process, so only the SQLite file carries state between them.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from _run_support import MODELS, responder, write_suite

from moebench.testing.ollama_standin import OllamaStandin

pytestmark = pytest.mark.slow


def _moebench(*args: str) -> list[str]:
    return [sys.executable, "-m", "moebench", *args]


def _default_sigint() -> None:
    # as on a terminal: a test runner started in the background (nohup, `&`) ignores SIGINT,
    # and the child would inherit that
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(_moebench("run", "--host", url, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _status(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall()


def _count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])


@pytest.fixture
def hung_server() -> Iterator[tuple[OllamaStandin, threading.Event]]:
    """A stand-in that answers the warm-up but never answers a question until released."""
    release = threading.Event()

    def hang(model: str, messages: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
             ) -> str:
        if str(messages[-1]["content"]).startswith("Q:"):
            release.wait(120)
        return "The answer is 2."

    with OllamaStandin(models=list(MODELS), responder=hang, parallel=4) as server:
        yield server, release
        release.set()


def test_ctrl_c_at_concurrency_4_cancels_hung_requests_at_once(
        hung_server: tuple[OllamaStandin, threading.Event], tmp_path: Path) -> None:
    server, _ = hung_server
    suite = write_suite(tmp_path, n=8)
    proc = _start(server.url, "-s", str(suite), "-m", MODELS[0], "--concurrency", "4",
                  "--timeout", "120", "--out", "out")
    deadline = time.monotonic() + 90  # start-up is slow on a busy machine
    while server.stats.in_flight < 4:  # four questions hang in the server
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 130, stderr
    print(f"Ctrl-C to exit: {took:.2f} s")
    assert took < 5, f"exit took {took:.1f} s"
    assert "interrupted" in stderr and "moebench run --resume" in stderr
    assert [s for _, s in _status(Path("out/moebench.db"))] == ["interrupted"]


def test_sigterm_marks_the_run_interrupted(hung_server: tuple[OllamaStandin, threading.Event],
                                           tmp_path: Path) -> None:
    server, _ = hung_server
    proc = _start(server.url, "-s", str(write_suite(tmp_path)), "-m", MODELS[0], "--out", "out")
    deadline = time.monotonic() + 90  # start-up is slow on a busy machine
    while server.stats.in_flight < 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert "moebench run --resume" in stderr
    assert [s for _, s in _status(Path("out/moebench.db"))] == ["interrupted"]


def test_two_runs_on_one_store_and_reports_meanwhile(tmp_path: Path) -> None:
    # One server per run: two runs sharing a server would also share (and evict) its models,
    # which is the server's business; here only the store is shared.
    with OllamaStandin(models=list(MODELS), responder=responder, token_delay=0.002) as one, \
            OllamaStandin(models=list(MODELS), responder=responder, token_delay=0.002) as two:
        suite = write_suite(tmp_path, n=4)
        procs = [_start(server.url, "-s", str(suite), "-m", model, "--out", "out",
                        "--concurrency", "2") for server, model in zip((one, two), MODELS)]
        reports = 0
        while any(p.poll() is None for p in procs):
            time.sleep(0.2)
            if Path("out/moebench.db").exists() and reports < 3:
                command = ("runs", "report")[reports % 2]  # both read while the runs write
                done = subprocess.run(_moebench(command, "--out", "out"), capture_output=True,
                                      text=True, timeout=60)
                assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
                reports += 1
        for proc in procs:
            _, stderr = proc.communicate()
            assert proc.returncode == 0, stderr
    assert reports >= 1
    assert [s for _, s in _status(Path("out/moebench.db"))] == ["completed", "completed"]
    assert _count(Path("out/moebench.db")) == 2 * 5


def test_full_disk_mid_run_stops_interrupted_with_a_resume_hint(tmp_path: Path,
                                                                tiny_disk: Path) -> None:
    disk = tiny_disk
    big = "x" * 20_000  # each answer ~20 KB stored twice (output + stripped)

    def verbose(model: str, messages: Sequence[Mapping[str, Any]],
                options: Mapping[str, Any]) -> str:
        return big + " The answer is 2."

    with OllamaStandin(models=list(MODELS), responder=verbose) as server:
        suite = write_suite(tmp_path, n=200)
        done = subprocess.run(_moebench("run", "--host", server.url, "-s", str(suite),
                                        "-m", MODELS[0], "--out", str(disk / "out")),
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "full" in last and "moebench run --resume" in last
    match = re.search(r"keeps its (\d+) finished samples", last)
    assert match and int(match[1]) > 0
    kept = _count(disk / "out" / "moebench.db")
    assert kept >= int(match[1])
    listed = subprocess.run(_moebench("runs", "--out", str(disk / "out")),
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "interrupted" in listed.stdout, listed.stderr
