"""The Ollama stand-in speaks the real shapes: driven here by the official `ollama` client."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import ollama
import pytest

from moebench.testing import FakeModel, OllamaStandin
from moebench.testing.standin_engine import parse_keep_alive

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture()
def server() -> Iterator[OllamaStandin]:
    with OllamaStandin() as s:
        yield s


@pytest.fixture()
def client(server: OllamaStandin) -> ollama.Client:
    return ollama.Client(server.url, timeout=10)


def test_liveness_version_and_unknown_routes(server: OllamaStandin) -> None:
    assert httpx.get(server.url + "/").text == "Ollama is running"
    assert httpx.head(server.url + "/").status_code == 200
    assert httpx.get(server.url + "/api/version").json() == {"version": "0.12.6"}
    missing = httpx.get(server.url + "/api/nope")
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    wrong = httpx.post(server.url + "/api/delete", json={"model": "x"})
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")


def test_tags_and_show_carry_moe_facts(client: ollama.Client) -> None:
    names = [m.model for m in client.list().models]
    assert names == ["mixtral:8x7b", "deepseek-v2:16b", "granite3-moe:1b"]
    show = client.show("deepseek-v2:16b")
    info = show.modelinfo or {}
    assert info["general.architecture"] == "deepseek2"
    assert (info["deepseek2.expert_count"], info["deepseek2.expert_used_count"]) == (64, 6)
    assert info["deepseek2.expert_shared_count"] == 2
    assert show.details and show.details.parameter_size == "15.7B"


def test_missing_model_is_404_with_ollama_message(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as show_error:
        client.show("nope")
    assert (show_error.value.status_code, show_error.value.error) == (
        404, "model 'nope:latest' not found")
    with pytest.raises(ollama.ResponseError) as chat_error:
        list(client.chat("nope", messages=HI, stream=True))
    assert chat_error.value.error == "model 'nope' not found"


@pytest.mark.parametrize("stream", [True, False])
def test_chat_final_chunk_has_metrics_in_ns(client: ollama.Client, stream: bool) -> None:
    if stream:
        chunks = list(client.chat("mixtral:8x7b", messages=HI, stream=True))
        final, text = chunks[-1], "".join(c.message.content or "" for c in chunks)
        assert all(c.eval_count is None for c in chunks[:-1])  # omitempty, not zeros
    else:
        final = client.chat("mixtral:8x7b", messages=HI)
        text = final.message.content or ""
    assert final.done and final.done_reason == "stop"
    assert text.startswith("Let me think") and final.eval_count == len(text.split())
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(getattr(final, key), int) and getattr(final, key) > 0


def test_generate_honours_num_predict_and_stop(client: ollama.Client) -> None:
    short = client.generate("mixtral:8x7b", "q", options={"num_predict": 2})
    assert (short.response, short.done_reason, short.eval_count) == ("Let me", "length", 2)
    stopped = client.generate("mixtral:8x7b", "q", options={"stop": [" step"]})
    assert stopped.response == "Let me think" and stopped.context


def test_thinking_is_split_for_thinking_models() -> None:
    with OllamaStandin(models=["qwen3:30b-a3b"],
                       responder=lambda m, msgs, o: "<think>hmm ok</think>42") as s:
        reply = ollama.Client(s.url).chat("qwen3:30b-a3b", messages=HI)
    assert (reply.message.thinking, reply.message.content) == ("hmm ok", "42")


def test_load_keep_alive_and_ps(client: ollama.Client, server: OllamaStandin) -> None:
    assert client.ps().models == []
    loaded = client.chat("granite3-moe:1b", messages=[])
    assert loaded.done_reason == "load"
    (row,) = client.ps().models
    assert row.model == "granite3-moe:1b" and row.size_vram == 0 and (row.size or 0) > 0
    client.chat("granite3-moe:1b", messages=HI, keep_alive=-1)
    assert server.stats.loads["granite3-moe:1b"] == 1  # resident: no second load
    assert client.chat("granite3-moe:1b", messages=[], keep_alive=0).done_reason == "unload"
    assert client.ps().models == []
    client.chat("granite3-moe:1b", messages=HI, options={"num_ctx": 8192})
    client.chat("granite3-moe:1b", messages=HI, options={"num_ctx": 2048})  # runner reload
    assert server.stats.loads["granite3-moe:1b"] == 3


def test_load_delay_is_reported_as_load_duration() -> None:
    with OllamaStandin(load_delay=0.2) as s:
        c = ollama.Client(s.url)
        cold = c.chat("mixtral:8x7b", messages=HI)
        warm = c.chat("mixtral:8x7b", messages=HI)
    assert (cold.load_duration or 0) >= 0.2e9 > (warm.load_duration or 0)
    assert (cold.total_duration or 0) >= (cold.load_duration or 0)


def test_parallel_slots_queue_extra_requests() -> None:
    with OllamaStandin(parallel=2, token_delay=0.01) as s:
        c = ollama.Client(s.url)
        threads = [threading.Thread(target=c.chat, args=("mixtral:8x7b",),
                                    kwargs={"messages": HI}) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert s.stats.max_in_flight == 2 and s.stats.max_pending > 2


def test_pull_streams_layers_then_installs(client: ollama.Client) -> None:
    lines = list(client.pull("qwen3:30b-a3b", stream=True))
    assert lines[0].status == "pulling manifest" and lines[-1].status == "success"
    layer = [p for p in lines if p.digest]
    assert layer[0].status == f"pulling {layer[0].digest[7:19]}"
    assert any(p.completed == p.total for p in layer)
    assert "qwen3:30b-a3b" in [m.model for m in client.list().models]


def test_pull_unknown_model(client: ollama.Client) -> None:
    stream = client.pull("zzz", stream=True)
    assert next(stream).status == "pulling manifest"
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        next(stream)
    with pytest.raises(ollama.ResponseError) as error:
        client.pull("zzz")
    assert error.value.status_code == 500


def test_delete(client: ollama.Client) -> None:
    assert client.delete("granite3-moe:1b").status == "success"
    with pytest.raises(ollama.ResponseError):
        client.delete("granite3-moe:1b")


def test_faults_status_drop_and_delay(client: ollama.Client, server: OllamaStandin) -> None:
    server.faults.fail_next(1, status=500, message="boom")
    with pytest.raises(ollama.ResponseError) as error:
        client.chat("mixtral:8x7b", messages=HI)
    assert (error.value.status_code, error.value.error) == (500, "boom")
    server.faults.drop_next(1, after_chunks=2)
    with pytest.raises(httpx.RemoteProtocolError):
        list(client.chat("mixtral:8x7b", messages=HI, stream=True))
    server.faults.drop_next(1, after_chunks=2, clean=True)
    chunks = list(client.chat("mixtral:8x7b", messages=HI, stream=True))
    assert len(chunks) == 2 and not chunks[-1].done
    server.faults.delay_next(1, seconds=0.3)
    with pytest.raises(httpx.ReadTimeout):
        ollama.Client(server.url, timeout=0.1).chat("mixtral:8x7b", messages=HI)
    assert client.chat("mixtral:8x7b", messages=HI).done  # faults are used up


def test_extra_route_hook() -> None:
    with OllamaStandin(models=[FakeModel("tiny:1b")]) as s:
        s.add_route("POST", "/v1/chat/completions",
                    lambda standin, req: req.send_json({"object": "chat.completion"}))
        assert httpx.post(s.url + "/v1/chat/completions", json={}).json() == {
            "object": "chat.completion"}


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 300.0), (0, 0.0), ("0", 0.0), (-1, -1.0), ("5m", 300.0), ("1h30m", 5400.0),
    ("30s", 30.0), ("-1m", -60.0),
])
def test_keep_alive_parsing(value: object, seconds: float) -> None:
    assert parse_keep_alive(value, 300.0) == seconds


def test_keep_alive_invalid_is_400(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError, match="invalid duration"):
        client.chat("mixtral:8x7b", messages=HI, keep_alive="abc")


def test_runs_as_a_subprocess() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "moebench.testing.ollama_standin",
                             "--port", "0", "--model", "mixtral:8x7b"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        url = line.split()[-1]
        assert ollama.Client(url, timeout=5).chat("mixtral:8x7b", messages=HI).done
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_round_trip_overhead_is_small(client: ollama.Client) -> None:
    client.chat("mixtral:8x7b", messages=HI)
    start = time.perf_counter()
    for _ in range(20):
        client.chat("mixtral:8x7b", messages=HI)
    assert (time.perf_counter() - start) / 20 < 0.03  # no Nagle stall (~40 ms) per request
