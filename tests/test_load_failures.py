"""Runs survive models that cannot load, faulty servers and servers that die (issue 17).

Every test starts a real stand-in server on 127.0.0.1 and drives it through the real `ollama`
(or `openai`) client; the CLI tests go through Typer's CliRunner.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _run_support import MODELS, RecordingEvents, responder, write_suite
from typer.testing import CliRunner

from moebench.cli import app
from moebench.errors import ModelNotFound
from moebench.runner import RunOptions, run
from moebench.store import Store
from moebench.testing.ollama_standin import OllamaStandin

BROKEN = "deepseek-v2:16b"
THREE = [*MODELS, BROKEN]
RUNNER_DIED = "llama runner process has terminated: exit status 2"
NO_MEMORY = "model requires more system memory (74.2 GiB) than is available (22.5 GiB)"


def _frames(run_id: str = "last"):
    store = Store.open("out")
    try:
        rid = store.resolve(run_id)
        return store.samples_frame([rid]), store.models_frame([rid]), store.run(rid)
    finally:
        store.close()


def _chats_for(server: OllamaStandin, model: str) -> int:
    return sum(1 for _, path, body in server.stats.log
               if path == "/api/chat" and body and body.get("model") == model)


def test_scenario_broken_model_flaky_server_then_resume(tmp_path: Path) -> None:
    """Done-means: one model never loads, every 5th request 500s, every 7th stream is cut."""
    suite = write_suite(tmp_path)
    with OllamaStandin(models=THREE, responder=responder, token_delay=0.0005) as server:
        server.faults.fail_loads(BROKEN, RUNNER_DIED)
        server.faults.fail_every(5)
        server.faults.drop_every(7)
        args = ["run", "-s", str(suite), "--host", server.url, "--out", "out", "--retries", "2"]
        for name in THREE:
            args += ["-m", name]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert f"{BROKEN}: load failed: {RUNNER_DIED} (after 3 attempts)" in result.output
        assert "quantisation" in result.output and "num_gpu" in result.output
        samples, models, row = _frames()
        assert row["status"] == "completed"
        healthy = samples[samples["model"].isin(MODELS)]
        assert len(healthy) == 10 and healthy["error"].isna().all()
        assert healthy["score"].notna().all() and healthy["attempts"].max() > 1
        broken = samples[samples["model"] == BROKEN]
        assert len(broken) == 5 and broken["error"].str.contains(RUNNER_DIED).all()
        failed = models.set_index("model").loc[BROKEN, "extra"]
        assert failed["status"] == "failed" and RUNNER_DIED in failed["load_error"]

        server.faults.clear()  # the fault is fixed: resume completes the broken model
        again = CliRunner().invoke(app, ["run", "--resume", "last", "--out", "out"])
        assert again.exit_code == 0, again.output
        samples, models, row = _frames()
        assert row["status"] == "completed" and len(samples) == 15
        assert samples["error"].isna().all()
        keys = samples[["model", "suite", "task", "case_id", "repeat"]]
        assert not keys.duplicated().any()
        assert "status" not in models.set_index("model").loc[BROKEN, "extra"]


def test_memory_refusal_is_not_retried(tmp_path: Path) -> None:
    with OllamaStandin(models=THREE, responder=responder) as server:
        server.faults.fail_loads(BROKEN, NO_MEMORY)
        events = RecordingEvents()
        result = run(RunOptions(models=[BROKEN, MODELS[0]], suites=[write_suite(tmp_path)],
                                host=server.url, out=Path("out"), retries=3), events)
        assert result.status == "completed" and _chats_for(server, BROKEN) == 1
        samples, _, _ = _frames(result.run_id)
        broken = samples[samples["model"] == BROKEN]
        assert broken["error"].str.contains("requires more system memory").all()
        assert samples[samples["model"] == MODELS[0]]["error"].isna().all()
        assert any("smaller quantisation tag" in note for note in events.notes)


def test_unknown_model_is_found_before_any_request(tmp_path: Path) -> None:
    with OllamaStandin(models=list(MODELS), responder=responder) as server:
        with pytest.raises(ModelNotFound, match="nosuch"):
            run(RunOptions(models=[*MODELS, "nosuch"], suites=[write_suite(tmp_path)],
                           host=server.url, out=Path("out")))
        assert server.stats.by_path["/api/chat"] == 0


def test_trickling_server_is_cut_at_the_deadline(tmp_path: Path) -> None:
    # parallel 2: the echo sample need not wait for the cut request's server thread to notice
    with OllamaStandin(models=list(MODELS), responder=responder, parallel=2) as server:
        server.faults.trickle_next(1, byte_delay=0.02)  # ~150-byte lines: 3 s per line
        start = time.perf_counter()
        result = run(RunOptions(models=[MODELS[0]], suites=[write_suite(tmp_path, n=1)],
                                host=server.url, out=Path("out"), retries=0, timeout=1.0,
                                limit=1))
        elapsed = time.perf_counter() - start
        samples, _, _ = _frames(result.run_id)
        assert samples["error"].str.contains("timed out after 1s").sum() == 1
        assert elapsed < 8.0  # the trickled stream alone would take ~24 s


@pytest.mark.parametrize("line", [b"this is not json\n", b"[1, 2]\n", b'"text"\n',
                                  b'{"model": "m", "done": "soon"}\n'])
def test_an_invalid_stream_line_is_retried_like_a_cut_stream(tmp_path: Path,
                                                             line: bytes) -> None:
    with OllamaStandin(models=list(MODELS), responder=responder) as server:
        server.faults.bad_line_next(1, line=line)
        result = run(RunOptions(models=[MODELS[0]], suites=[write_suite(tmp_path, n=1)],
                                host=server.url, out=Path("out"), retries=1, limit=1))
        samples, _, _ = _frames(result.run_id)
        assert samples["error"].isna().all() and samples["attempts"].max() == 2
        server.faults.bad_line_next(1, line=line)
        result = run(RunOptions(models=[MODELS[0]], suites=[write_suite(tmp_path, n=1)],
                                host=server.url, out=Path("out"), retries=0, limit=1))
        samples, _, _ = _frames(result.run_id)
        assert samples["error"].str.contains("invalid stream line").sum() == 1


def test_server_dying_mid_run_stops_fast_as_interrupted_and_resumes(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, n=6)
    server = OllamaStandin(models=list(MODELS), responder=responder, token_delay=0.001).start()
    port = server.port
    server.faults.die_after(4)  # warm-up + 2 samples + the 3rd sample kills it
    args = ["run", "-s", str(suite), "--host", server.url, "--out", "out", "--concurrency", "2",
            *(a for m in MODELS for a in ("-m", m))]
    start = time.perf_counter()
    result = CliRunner().invoke(app, args)
    elapsed = time.perf_counter() - start
    server.close()
    assert result.exit_code == 1, result.output
    assert "stopped" in result.output and "moebench run --resume" in result.output
    assert elapsed < 15.0  # 3 retries with backoff at most, not a timeout per sample
    samples, _, row = _frames()
    assert row["status"] == "interrupted"
    assert samples["error"].notna().any() and set(samples["model"]) == {MODELS[0]}
    with OllamaStandin(models=list(MODELS), responder=responder, port=port):
        again = CliRunner().invoke(app, ["run", "--resume", "last", "--out", "out"])
    assert again.exit_code == 0, again.output
    samples, _, row = _frames()
    assert row["status"] == "completed" and len(samples) == 14
    assert samples["error"].isna().all()


def test_retry_after_is_honoured_by_the_ollama_backend() -> None:
    from moebench.backends import BackendConfig
    from moebench.backends.ollama import OllamaBackend
    from moebench.types import Request, ScorerSpec

    with OllamaStandin(models=list(MODELS), responder=responder) as server:
        backend = OllamaBackend(BackendConfig(host=server.url, retries=1, backoff_s=0.01))
        try:
            backend.prepare(MODELS[0])
            server.faults.fail_next(1, status=503, message="server busy", retry_after=1.2)
            start = time.perf_counter()
            done = backend.generate(MODELS[0], Request("s", "t", "c", "Q: 1+1",
                                                       ScorerSpec("number")))
            assert done.attempts == 2 and time.perf_counter() - start >= 1.2
        finally:
            backend.close()


def test_scorer_exception_keeps_the_output(tmp_path: Path) -> None:
    from moebench.scorers import _REGISTRY, registry, scorer

    registry()

    @scorer("explodes", description="test scorer that always raises")
    def explodes(text: str, case: object, params: object) -> object:
        raise ZeroDivisionError("division by zero in a test scorer")

    try:
        path = tmp_path / "boom.yaml"
        path.write_text("suite: boom\ntasks:\n  - name: t\n    scorer: explodes\n"
                        "    prompt: 'Q: {question}'\n    cases:\n"
                        "      - {id: c1, question: '1+1', expected: 2}\n")
        with OllamaStandin(models=list(MODELS), responder=responder) as server:
            result = run(RunOptions(models=[MODELS[0]], suites=[path], host=server.url,
                                    out=Path("out")))
        samples, _, row = _frames(result.run_id)
        assert row["status"] == "completed"
        assert samples["error"].iloc[0] == "scorer explodes: division by zero in a test scorer"
        assert "The answer is 2" in samples["output"].iloc[0]
    finally:
        _REGISTRY.pop("explodes", None)


def test_a_memory_error_on_a_request_is_not_retried() -> None:
    from moebench.backends import BackendConfig
    from moebench.backends.ollama import OllamaBackend
    from moebench.errors import RequestFailed
    from moebench.types import Request, ScorerSpec

    with OllamaStandin(models=list(MODELS), responder=responder) as server:
        backend = OllamaBackend(BackendConfig(host=server.url, retries=3, backoff_s=0.01))
        try:
            backend.prepare(MODELS[0])
            before = _chats_for(server, MODELS[0])
            server.faults.fail_next(1, message=NO_MEMORY)
            with pytest.raises(RequestFailed, match="requires more system memory"):
                backend.generate(MODELS[0], Request("s", "t", "c", "Q: 1+1",
                                                    ScorerSpec("number")))
            assert _chats_for(server, MODELS[0]) == before + 1
        finally:
            backend.close()


@pytest.mark.slow
def test_killed_server_process_stops_the_run_fast(tmp_path: Path) -> None:
    """The stand-in as a real process, killed with SIGKILL while a 3-model run is going."""
    import sqlite3
    import subprocess
    import sys

    server = subprocess.Popen(
        [sys.executable, "-m", "moebench.testing.ollama_standin", "--port", "0",
         "--token-delay", "0.02", *(a for m in THREE for a in ("--model", m))],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline() if server.stdout else ""
    assert line.startswith("listening on "), line
    url = line.split("listening on ", 1)[1].strip()
    run_proc = subprocess.Popen(
        [sys.executable, "-m", "moebench", "run", "-s", str(write_suite(tmp_path, n=8)),
         "--host", url, "--out", "out", *(a for m in THREE for a in ("-m", m))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = Path("out/moebench.db")
    limit = time.monotonic() + 30
    while True:  # wait for the first stored samples, then kill the server
        time.sleep(0.05)
        assert run_proc.poll() is None and time.monotonic() < limit
        try:
            with sqlite3.connect(db) as conn:
                if conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] >= 2:
                    break
        except sqlite3.OperationalError:
            continue
    server.kill()
    server.wait()
    killed = time.monotonic()
    out, err = run_proc.communicate(timeout=60)
    assert run_proc.returncode == 1, out + err
    print(f"stopped {time.monotonic() - killed:.1f} s after the kill")
    assert time.monotonic() - killed < 10
    assert "stopped" in err and "moebench run --resume" in err
    _, _, row = _frames()
    assert row["status"] == "interrupted"
