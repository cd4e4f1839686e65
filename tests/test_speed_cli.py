"""`moebench speed` end to end: the stand-in Ollama (real `ollama` / `openai` clients) and the
built-in engine on a demo model, driven through the CLI as a user would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ollama
import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.speed.rows import CONTRACT_COLUMNS, SPEED_CSV_COLUMNS, csv_rows
from moebench.store import Store
from moebench.testing import FakeModel, OllamaStandin

runner = CliRunner()
PP, TG = 4000.0, 400.0
FAST = FakeModel("mixtral:8x7b", prompt_tok_s=PP, gen_tok_s=TG, expert_ffn=14336)
SPLIT = FakeModel("dbrx:latest", arch="dbrx", experts=16, experts_used=4,
                  parameter_count=131_596_523_520, size=74_000_000_000, block_count=40,
                  embedding_length=6144, gpu_fraction=0.45, prompt_tok_s=PP / 2,
                  gen_tok_s=TG / 2, expert_ffn=10752)
CPU = FakeModel("granite3-moe:1b", arch="granitemoe", experts=32, experts_used=8,
                parameter_count=1_334_000_000, quantization="Q4_K_M", size=821_690_000,
                gpu_fraction=0.0, prompt_tok_s=PP, gen_tok_s=TG, eos_after=6)
#: the stand-in's shortest prompt is 20 tokens (template + nonce + instruction)
SMALL = ["--prompt-tokens", "32", "--gen-tokens", "16", "--repeats", "3", "--bandwidth", "100"]


@pytest.fixture()
def server() -> Iterator[OllamaStandin]:
    with OllamaStandin(models=[FAST, SPLIT, CPU, "deepseek-v2:16b"]) as s:
        yield s


def _speed(server: OllamaStandin, *args: str) -> tuple[str, list[dict[str, str]]]:
    result = runner.invoke(app, ["speed", "--host", server.url, *SMALL, "--csv", "s.csv",
                                 *args])
    assert result.exit_code == 0, result.output
    return result.output, list(csv_rows(Path("s.csv")))


def test_rates_match_the_configured_ones_at_every_prompt_length(server: OllamaStandin) -> None:
    output, rows = _speed(server, "-m", "mixtral:8x7b", "--prompt-tokens", "32,64,128")
    assert list(rows[0])[:len(CONTRACT_COLUMNS)] == list(CONTRACT_COLUMNS)
    assert list(rows[0]) == list(SPEED_CSV_COLUMNS)
    assert [int(r["prompt_tokens"]) for r in rows] == [32, 64, 128]
    for row in rows:
        assert abs(float(row["pp_tok_s"]) / PP - 1) < 0.10, row
        assert abs(float(row["tg_tok_s"]) / TG - 1) < 0.10, row
        assert abs(float(row["prompt_tokens_measured"]) - int(row["prompt_tokens"])) <= 2
        assert float(row["gen_tokens_measured"]) == 16
        flags = [row[f] for f in ("partial_offload", "other_models_resident", "early_stop")]
        assert flags == ["false"] * 3 and row["timing_source"] == "server"
        assert float(row["roofline_tok_s"]) > 0 and float(row["roofline_pct"]) > 0
    assert "fastest generation: mixtral:8x7b" in output
    store = Store.open(Path("results"))
    assert [r["run_id"] for r in store.speed_rows([rows[0]["run_id"]])] == [rows[0]["run_id"]] * 3


def test_the_nonce_is_what_keeps_prompt_rates_honest(server: OllamaStandin) -> None:
    """The trap the nonce avoids: a repeated prompt is served from the prompt cache."""
    client = ollama.Client(server.url)
    prompt = " ".join(["word"] * 200)
    rates = []
    for _ in range(2):
        r = client.generate("mixtral:8x7b", prompt, options={"num_predict": 1})
        rates.append(r.prompt_eval_count / r.prompt_eval_duration * 1e9)
    assert rates[0] == pytest.approx(PP, rel=0.1) and rates[1] > 10 * PP


def test_partial_offload_and_cpu_only_are_flagged(server: OllamaStandin) -> None:
    output, rows = _speed(server, "-m", "dbrx", "-m", "granite3-moe:1b")
    split = [r for r in rows if r["model"] == "dbrx:latest"]
    cpu = [r for r in rows if r["model"] == "granite3-moe:1b"]
    assert all(r["partial_offload"] == "true" and float(r["gpu_share"]) == 0.45 for r in split)
    assert all(r["cpu_only"] == "true" and r["partial_offload"] == "false" for r in cpu)
    assert all(r["early_stop"] == "true" and float(r["gen_tokens_measured"]) == 6 for r in cpu)
    assert "partial_offload (45% GPU)" in output and "early_stop (3/3)" in output
    assert "no unflagged cell to claim it (2 flagged cells left out)" in output


def test_other_resident_models_are_flagged_and_evict_unloads_them(
        server: OllamaStandin) -> None:
    client = ollama.Client(server.url)
    client.generate("deepseek-v2:16b", keep_alive=-1)  # left over from an earlier chat
    _, rows = _speed(server, "-m", "mixtral:8x7b")
    assert all(r["other_models_resident"] == "true" for r in rows)
    assert {r["resident_models"] for r in rows} == {"deepseek-v2:16b"}
    result = runner.invoke(app, ["speed", "--host", server.url, *SMALL, "--csv", "e.csv",
                                 "-m", "mixtral:8x7b", "--evict"])
    assert result.exit_code == 0, result.output
    assert "--evict: unloaded deepseek-v2:16b before mixtral:8x7b" in result.output
    assert all(r["other_models_resident"] == "false" for r in csv_rows(Path("e.csv")))
    assert [m.model for m in client.ps().models] == []  # ours is unloaded after its sweep


def test_concurrency_adds_throughput_when_the_server_has_slots() -> None:
    with OllamaStandin(models=[FAST], parallel=2) as server:
        _, rows = _speed(server, "-m", "mixtral:8x7b", "--concurrency", "1,2",
                         "--gen-tokens", "32")
    agg = {int(r["concurrency"]): float(r["agg_tok_s"]) for r in rows}
    assert agg[2] > 1.4 * agg[1]  # ideally 2×; client overheads on a busy 2-core box
    assert all(abs(float(r["tg_tok_s"]) / TG - 1) < 0.10 for r in rows)


def test_openai_backend_uses_client_timings_and_ignores_eos(server: OllamaStandin) -> None:
    output, rows = _speed(server, "-m", "granite3-moe:1b", "--backend", "openai")
    (row,) = rows
    assert row["timing_source"] == "client" and row["early_stop"] == "false"
    assert float(row["gen_tokens_measured"]) == 16  # ignore_eos honoured past eos_after
    assert row["roofline_tok_s"] == "" and "client = measured by moebench" in output


def test_report_reprints_a_stored_sweep_and_html_marks_flags(server: OllamaStandin) -> None:
    _speed(server, "-m", "dbrx", "--html", "s.html")
    page = Path("s.html").read_text()
    assert page.count("<svg") == 2 and "flagged: partial_offload (45% GPU)" in page
    again = runner.invoke(app, ["report", "--csv", "r.csv"])
    assert again.exit_code == 0, again.output
    assert "partial_offload (45% GPU)" in again.output
    assert Path("r.csv").read_text() == Path("s.csv").read_text()


@pytest.mark.parametrize("args", [
    ["--prompt-tokens", "0"], ["--gen-tokens", "-1"], ["--repeats", "0"],
    ["--prompt-tokens", "128;512"], ["--concurrency", "1,,2"], ["--prompt-tokens", "12,abc"],
])
def test_bad_values_are_usage_errors(args: list[str]) -> None:
    result = runner.invoke(app, ["speed", "--backend", "torch", *args])
    assert result.exit_code == 2, result.output


def test_torch_engine_on_a_demo_model() -> None:
    result = runner.invoke(app, ["speed", "--backend", "torch", "-m", "demo-mixtral",
                                 "--prompt-tokens", "48,400", "--gen-tokens", "8", "--bandwidth", "20",
                                 "--repeats", "2", "--csv", "t.csv"])
    assert result.exit_code == 0, result.output
    assert "skipped 400 prompt tokens" in result.output
    (row,) = csv_rows(Path("t.csv"))
    assert row["timing_source"] == "engine" and row["early_stop"] == "false"
    assert abs(float(row["prompt_tokens_measured"]) - 48) <= 2
    assert float(row["tg_tok_s"]) > 0 and float(row["roofline_tok_s"]) > 0
    assert float(row["load_s"]) > 0 and row["cpu_only"] == "false"


@pytest.mark.slow
def test_a_user_interrupts_a_sweep_and_keeps_its_finished_cells(tmp_path: Path) -> None:
    """Stand-in and sweep as separate processes; Ctrl-C (SIGINT) after the first cell."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    server = subprocess.Popen(
        [sys.executable, "-m", "moebench.testing.ollama_standin", "--port", "0", "--model",
         "mixtral:8x7b", "--rates", f"{PP},{TG}"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        url = line.split("listening on ", 1)[1].strip()
        sweep = subprocess.Popen(
            [sys.executable, "-m", "moebench", "speed", "--host", url, "-m", "mixtral:8x7b",
             "--prompt-tokens", "32,48,64,96,128,192,256,384", "--gen-tokens", "32",
             "--repeats", "5", "--bandwidth", "100", "--csv", "s.csv"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        db, deadline = Path("results/moebench.db"), time.monotonic() + 60
        while time.monotonic() < deadline and sweep.poll() is None:
            try:
                with sqlite3.connect(db) as conn:
                    if conn.execute("SELECT COUNT(*) FROM speed_results").fetchone()[0]:
                        break
            except sqlite3.OperationalError:  # not created yet
                pass
            time.sleep(0.05)
        sweep.send_signal(signal.SIGINT)
        out, err = sweep.communicate(timeout=60)
    finally:
        server.kill()
        server.wait()
    assert sweep.returncode == 130, (out, err)
    assert "interrupted" in err and "finished cells" in err
    rows = csv_rows(Path("s.csv"))
    assert 1 <= len(rows) < 8
    assert all(abs(float(r["pp_tok_s"]) / PP - 1) < 0.10 for r in rows)


def test_a_strict_openai_server_that_refuses_ignore_eos(server: OllamaStandin) -> None:
    """Like api.openai.com: unknown request fields are a 400; the sweep goes on without."""
    from moebench.testing import StandinRequest
    from moebench.testing.openai_routes import chat_completions, send_error

    inner = chat_completions()

    def strict(standin: OllamaStandin, req: StandinRequest) -> None:
        body = req.json_body()
        if body is not None and "ignore_eos" in body:
            return send_error(req, 400, "Unrecognized request argument supplied: ignore_eos")
        if body is not None:
            inner(standin, req)

    server.add_route("POST", "/v1/chat/completions", strict)
    output, rows = _speed(server, "-m", "granite3-moe:1b", "--backend", "openai")
    assert "refuses ignore_eos; early stops will be reported" in output
    assert rows[0]["early_stop"] == "true" and float(rows[0]["gen_tokens_measured"]) == 6


def test_errors_name_the_fix(server: OllamaStandin) -> None:
    no_model = runner.invoke(app, ["speed", "--host", server.url])
    assert no_model.exit_code == 1 and "name the models to measure: -m NAME" in no_model.output
    missing = runner.invoke(app, ["speed", "--host", server.url, "-m", "nope", *SMALL])
    assert missing.exit_code == 1 and "moebench pull nope" in missing.output
    down = runner.invoke(app, ["speed", "--backend", "ollama", "--host", "http://127.0.0.1:9"])
    assert down.exit_code == 1 and "not reachable" in down.output
