"""Several hosts in one run (issue 15), against stand-in servers the tests start.

Hosts run in parallel (a 4-model run on two hosts takes about half the one-host wall), each
host loads only its models, once each, and every sample lands in the one store once; pins
(`-m NAME@HOST`), `--hosts FILE`, a host that dies mid-run, and a killed run resumed.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _run_support import RecordingEvents, responder, write_suite
from typer.testing import CliRunner

from moebench.cli import app
from moebench.errors import ModelNotFound
from moebench.hosts import HostsFileError, UnknownHost, host_label, read_hosts_file
from moebench.runner import RunOptions, run
from moebench.testing.ollama_standin import OllamaStandin

A_MODELS = ["mixtral:8x7b", "granite3-moe:1b"]
B_MODELS = ["deepseek-v2:16b", "dbrx:latest"]
CASES = 5  # write_suite(n=4): 4 arith cases + 1 echo case


@pytest.fixture
def two_hosts() -> Iterator[tuple[OllamaStandin, OllamaStandin]]:
    """Host A has mixtral and granite, host B deepseek, dbrx and mixtral (~0.1 s answers)."""
    with OllamaStandin(models=A_MODELS, responder=responder, token_delay=0.01,
                       load_delay=0.05) as a, \
         OllamaStandin(models=[*B_MODELS, "mixtral:8x7b"], responder=responder,
                       token_delay=0.01, load_delay=0.05) as b:
        yield a, b


def _options(tmp_path: Path, hosts: list[str], models: list[str], **extra: object) -> RunOptions:
    return RunOptions(models=models, suites=[write_suite(tmp_path)], backend="ollama",
                      host=hosts[0], hosts=hosts if len(hosts) > 1 else [], **extra)


def _samples(out: Path = Path("results")) -> list[tuple[str, str, str, int, str | None]]:
    with sqlite3.connect(out / "moebench.db") as db:
        return db.execute("SELECT model, task, case_id, repeat, error FROM samples").fetchall()


def _hosts_of_models(out: Path = Path("results")) -> dict[str, str]:
    with sqlite3.connect(out / "moebench.db") as db:
        return dict(db.execute("SELECT model, host FROM models").fetchall())


def test_two_hosts_take_about_half_the_one_host_wall(
        two_hosts: tuple[OllamaStandin, OllamaStandin], tmp_path: Path) -> None:
    a, b = two_hosts
    models = [*A_MODELS, *B_MODELS]
    with OllamaStandin(models=models, responder=responder, token_delay=0.01,
                       load_delay=0.05) as one:
        start = time.perf_counter()
        single = run(_options(tmp_path, [one.url], models, out=Path("one")))
        one_wall = time.perf_counter() - start
    assert single.status == "completed" and [m.name for m in single.models] == models
    assert set(_hosts_of_models(Path("one")).values()) == {one.url}  # plain names, host kept

    start = time.perf_counter()
    result = run(_options(tmp_path, [a.url, b.url], models))
    wall = time.perf_counter() - start
    assert result.status == "completed" and result.errors == 0
    assert wall < 0.75 * one_wall, (wall, one_wall)
    assert dict(a.stats.loads) == dict.fromkeys(A_MODELS, 1)  # only its models, one load each
    assert dict(b.stats.loads) == dict.fromkeys(B_MODELS, 1)
    rows = _samples()
    assert len(rows) == 4 * CASES and len({r[:4] for r in rows}) == 4 * CASES
    assert _hosts_of_models() == {**dict.fromkeys(A_MODELS, a.url),
                                  **dict.fromkeys(B_MODELS, b.url)}


def test_pins_and_the_same_model_on_two_hosts(
        two_hosts: tuple[OllamaStandin, OllamaStandin], tmp_path: Path) -> None:
    a, b = two_hosts
    models = [f"mixtral:8x7b@{host_label(b.url)}", f"mixtral:8x7b@{a.url}", "granite3-moe:1b"]
    result = run(_options(tmp_path, [a.url, b.url], models, limit=1))
    assert result.status == "completed", result
    names = [f"mixtral:8x7b@{host_label(b.url)}", f"mixtral:8x7b@{host_label(a.url)}",
             "granite3-moe:1b"]
    assert [m.name for m in result.models] == names
    assert _hosts_of_models() == dict(zip(names, [b.url, a.url, a.url], strict=True))
    assert a.stats.loads["mixtral:8x7b"] == 1 and b.stats.loads["mixtral:8x7b"] == 1
    with sqlite3.connect("results/moebench.db") as db:
        versions = {v for (v,) in db.execute("SELECT server_version FROM models")}
    assert versions == {a.state.config.version}


def test_a_pin_that_matches_no_host_says_so(
        two_hosts: tuple[OllamaStandin, OllamaStandin], tmp_path: Path) -> None:
    a, b = two_hosts
    with pytest.raises(UnknownHost, match="'gpu9:11434' matches none of the run's hosts"):
        run(_options(tmp_path, [a.url, b.url], ["mixtral:8x7b@gpu9:11434"]))


def test_hosts_file_lines_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "hosts.txt"
    good.write_text("# lab machines\nhttp://10.0.0.2:11434\n\n10.0.0.3  # no scheme\n")
    assert read_hosts_file(good) == ["http://10.0.0.2:11434", "http://10.0.0.3:11434"]
    bad = tmp_path / "bad.txt"
    bad.write_text("http://10.0.0.2:11434\n# fine\nftp://10.0.0.4\n")
    with pytest.raises(HostsFileError, match=r"bad\.txt:3: 'ftp://10.0.0.4' is not an http"):
        read_hosts_file(bad)
    (tmp_path / "empty.txt").write_text("# nothing\n")
    result = CliRunner().invoke(app, ["run", "--hosts", str(tmp_path / "empty.txt"), "-m", "x"])
    assert result.exit_code == 1 and "no URL in it" in result.output


def test_a_dead_host_hands_its_models_on_or_stores_errors(
        two_hosts: tuple[OllamaStandin, OllamaStandin], tmp_path: Path) -> None:
    a, b = two_hosts
    a.faults.die_after(3)  # A's warm-up of mixtral and two requests, then A is gone
    events = RecordingEvents()
    result = run(_options(tmp_path, [a.url, b.url], [*A_MODELS, *B_MODELS], retries=0), events)
    assert result.status == "interrupted" and "not finished: granite3-moe:1b" in result.stopped
    assert any("mixtral:8x7b moves to" in note for note in events.notes)
    errors = {}
    for model, *_, error in _samples():
        errors.setdefault(model, []).append(error)
    assert {m: len(e) for m, e in errors.items()} == dict.fromkeys([*A_MODELS, *B_MODELS], CASES)
    assert errors["mixtral:8x7b"] == [None] * CASES  # finished on B
    assert all("host" in e and "stopped answering" in e for e in errors["granite3-moe:1b"])
    assert _hosts_of_models()["mixtral:8x7b"] == b.url
    assert b.stats.loads["mixtral:8x7b"] == 1
    # mixtral's error rows written when A died were redone on B: counted once, as they ended
    n_models = len([*A_MODELS, *B_MODELS])
    assert (result.samples, result.errors, result.kept) == (n_models * CASES, CASES, 0)


def _standin_process(*models: str) -> tuple[subprocess.Popen[str], str]:
    args = [a for m in models for a in ("--model", m)]
    proc = subprocess.Popen([sys.executable, "-m", "moebench.testing.ollama_standin", "--port",
                             "0", "--token-delay", "0.02", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.startswith("listening on "), line
    return proc, line.split("listening on ", 1)[1].strip()


@pytest.mark.slow
def test_kill_9_then_resume_keeps_the_assignment_and_duplicates_nothing(tmp_path: Path) -> None:
    servers = [_standin_process(*A_MODELS), _standin_process(*B_MODELS)]
    (a, url_a), (b, url_b) = servers
    try:
        suite = write_suite(tmp_path)
        cmd = [sys.executable, "-m", "moebench", "run", "-s", str(suite), "--host", url_a,
               "--host", url_b, *[x for m in (*A_MODELS, *B_MODELS) for x in ("-m", m)]]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 30
        while _count() < 4:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = set(_samples())
        assert 4 <= len(before) < 4 * CASES
        done = subprocess.run([sys.executable, "-m", "moebench", "run", "--resume", "last"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        for proc, _ in servers:
            proc.kill()
            proc.wait()
    after = _samples()
    assert len(after) == 4 * CASES and len({r[:4] for r in after}) == 4 * CASES
    assert before <= set(after) and all(r[4] is None for r in after)
    assert _hosts_of_models() == {**dict.fromkeys(A_MODELS, url_a),
                                  **dict.fromkeys(B_MODELS, url_b)}


def _count() -> int:
    try:
        with sqlite3.connect("results/moebench.db") as db:
            return int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
    except sqlite3.OperationalError:  # no store (or no tables) yet
        return 0


def test_an_interrupted_multi_host_run_resumes(
        two_hosts: tuple[OllamaStandin, OllamaStandin], tmp_path: Path) -> None:
    a, b = two_hosts
    options = _options(tmp_path, [a.url, b.url], [*A_MODELS, *B_MODELS])
    first = run(options, RecordingEvents(interrupt_after=3))
    assert first.status == "interrupted" and 3 <= len(_samples()) < 4 * CASES
    done = run(RunOptions(resume="last"))
    assert done.status == "completed" and done.kept >= 3
    rows = _samples()
    assert len(rows) == 4 * CASES and len({r[:4] for r in rows}) == 4 * CASES


def test_a_model_missing_on_its_pinned_host_names_the_host(
        two_hosts: tuple[OllamaStandin, OllamaStandin], tmp_path: Path) -> None:
    a, b = two_hosts
    with pytest.raises(ModelNotFound, match=f"moebench pull dbrx --host {a.url}"):
        run(_options(tmp_path, [a.url, b.url], [f"dbrx@{host_label(a.url)}"]))


def test_progress_draws_one_bar_per_host() -> None:
    import io

    from rich.console import Console

    from moebench.report.terminal import RichProgress
    from moebench.types import ModelInfo

    progress = RichProgress(Console(file=io.StringIO(), force_terminal=True))
    progress.on_run_start(3, 5)
    progress.on_hosts(["gpu1:11434", "mac:11434"])
    for name, host in (("a", "http://gpu1:11434"), ("b", "http://mac:11434"),
                       ("c", "http://gpu1:11434")):
        progress.on_model_start(ModelInfo(name=name, backend="ollama", host=host), 5)
    bars = [t.description for t in progress.progress.tasks]
    assert bars == ["all models", "gpu1:11434 · c", "mac:11434 · b"]
