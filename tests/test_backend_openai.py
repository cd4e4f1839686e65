"""The OpenAI-compatible backend, driven through the real `openai` client against the stand-in.

The stand-in's `/v1/chat/completions` speaks Ollama's SSE shapes; per-instance route variants
add what Ollama never does (a required API key, a 429 with Retry-After).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _backend_support import backend_at, chat_request
from typer.testing import CliRunner

from moebench.backends import BackendConfig
from moebench.backends.openai import OpenAIBackend, base_url, request_params
from moebench.cli import app
from moebench.errors import AuthError, BackendUnavailable, ModelNotFound, RequestFailed
from moebench.testing import OllamaStandin
from moebench.testing.openai_routes import RateLimited, chat_completions, models_route

MODEL = "mixtral:8x7b"
KEY = "sk-test-0123456789abcdef"
SUITE = """\
suite: tiny
tasks:
  - name: add
    scorer: number
    prompt: "What is {a} + {b}?"
    cases:
      - {id: one, a: 1, b: 2, expected: 3}
"""


@pytest.fixture()
def server() -> Iterator[OllamaStandin]:
    with OllamaStandin(token_delay=0.002) as s:
        yield s


def _backend(server: OllamaStandin, **config: object) -> OpenAIBackend:
    return backend_at(server, "openai", OpenAIBackend, **config)


def _require_key(server: OllamaStandin) -> None:
    server.add_route("POST", "/v1/chat/completions", chat_completions(api_key=KEY))
    server.add_route("GET", "/v1/models", models_route(api_key=KEY))


@pytest.mark.parametrize("usage", [True, False])
def test_standin_speaks_ollamas_sse_shape(server: OllamaStandin, usage: bool) -> None:
    body = {"model": MODEL, "stream": True, "max_tokens": 3,
            "messages": [{"role": "user", "content": "hi"}]}
    if usage:
        body["stream_options"] = {"include_usage": True}
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body)
    assert reply.headers["content-type"] == "text/event-stream"
    events = [line.removeprefix("data: ") for line in reply.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finish = chunks[3 if usage else -1]["choices"][0]
    assert (finish["delta"], finish["finish_reason"]) == ({}, "length")
    assert ("usage" in chunks[-1]) is usage
    if usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    whole = httpx.post(f"{server.url}/v1/chat/completions", json={**body, "stream": False})
    assert whole.json()["choices"][0]["message"]["role"] == "assistant"
    assert whole.json()["usage"]["completion_tokens"] == 3
    missing = httpx.post(f"{server.url}/v1/chat/completions", json={**body, "model": "x"})
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "not_found_error")


@pytest.mark.parametrize(("host", "url"), [
    ("http://127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
    ("127.0.0.1:8000/", "http://127.0.0.1:8000/v1"),
    ("https://api.example.com/v1", "https://api.example.com/v1"),
    ("http://box:8080/openai/v1/", "http://box:8080/openai/v1"),
])
def test_base_url_adds_v1_only_without_a_path(host: str, url: str) -> None:
    assert base_url(host) == url


@pytest.mark.parametrize(("options", "params"), [
    ({"temperature": 0, "max_tokens": 5, "stop": ["\n"]},
     {"temperature": 0, "max_tokens": 5, "stop": ["\n"]}),
    ({"seed": 3, "top_k": 20, "num_ctx": 4096, "top_p": None},
     {"seed": 3, "extra_body": {"top_k": 20, "num_ctx": 4096}}),
])
def test_options_map_to_chat_completion_fields(options: dict, params: dict) -> None:
    assert request_params(options) == params


def test_streams_text_usage_and_client_timings(server: OllamaStandin) -> None:
    backend = _backend(server)
    done = backend.generate(MODEL, chat_request(max_tokens=64, top_k=5))
    assert done.text.startswith("Let me think step by step. The answer is")
    assert (done.model, done.done_reason, done.attempts) == (MODEL, "stop", 1)
    assert done.output_tokens == 10 and done.prompt_tokens and done.prompt_tokens > 10
    assert done.ttft_s is not None and 0 < done.ttft_s <= done.latency_s
    assert done.timing_source == "client" and done.decode_s and done.decode_s > 0
    assert done.tokens_per_s and done.tokens_per_s > 0
    assert done.load_s is None and done.server_total_s is None
    method, path, body = server.stats.log[-1]
    assert (method, path) == ("POST", "/v1/chat/completions")
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["top_k"]) == (64, 0, 5)
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "What is 2 + 2?"}]
    backend.close()


def test_streams_reuse_one_connection(server: OllamaStandin) -> None:
    ports: list[int] = []
    inner = chat_completions()

    def spy(standin: OllamaStandin, req: Any) -> None:
        ports.append(req.client_address[1])
        inner(standin, req)

    server.add_route("POST", "/v1/chat/completions", spy)
    backend = _backend(server)
    for _ in range(3):
        backend.generate(MODEL, chat_request())
    assert len(ports) == 3 and len(set(ports)) == 1  # no new TCP handshake inside a TTFT


def test_server_timings_are_used_when_the_server_sends_them(server: OllamaStandin) -> None:
    def llama_cpp(standin: OllamaStandin, req: object) -> None:  # llama.cpp server's shape
        req.start_chunked("text/event-stream")  # type: ignore[attr-defined]
        for data in ({"choices": [{"index": 0, "delta": {"content": "4"}}]},
                     {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                      "timings": {"prompt_n": 12, "prompt_ms": 30.0, "predicted_n": 8,
                                  "predicted_ms": 200.0}}):
            body = {"id": "x", "object": "chat.completion.chunk", "created": 1,
                    "model": MODEL, **data}
            req.write_chunk(f"data: {json.dumps(body)}\n\n".encode())  # type: ignore[attr-defined]
        req.write_chunk(b"data: [DONE]\n\n")  # type: ignore[attr-defined]
        req.end_chunked()  # type: ignore[attr-defined]

    server.add_route("POST", "/v1/chat/completions", llama_cpp)
    done = _backend(server).generate(MODEL, chat_request())
    assert (done.text, done.timing_source, done.decode_s) == ("4", "server", 0.2)
    assert (done.output_tokens, done.prompt_tokens, done.prompt_eval_s) == (8, 12, 0.03)
    assert done.tokens_per_s == pytest.approx(40.0)


def test_reasoning_is_kept_as_a_think_trace() -> None:
    def thinker(model: str, messages: object, options: object) -> str:
        return "<think>2 and 2 make 4</think>Final answer: 4"

    with OllamaStandin(models=["qwen3:30b-a3b"], responder=thinker) as server:
        done = _backend(server).generate("qwen3:30b-a3b", chat_request())
    assert done.text == "<think>2 and 2 make 4</think>Final answer: 4"


def test_prepare_lists_models_resolves_latest_and_warms_up() -> None:
    with OllamaStandin(models=["dbrx:latest", MODEL], load_delay=0.05) as server:
        backend = _backend(server)
        info = backend.prepare("dbrx")
        assert (info.name, info.backend) == ("dbrx:latest", "openai")
        assert info.load_s is not None and info.load_s >= 0.05
        assert info.experts is None and info.size_bytes is None  # unknown through this API
        assert server.stats.by_path["/v1/models"] == 1
        assert server.stats.log[-1][2]["max_tokens"] == 1  # the warm-up is one short request
        assert backend.generate("dbrx", chat_request()).model == "dbrx:latest"
        assert backend.unload("dbrx") is None


def test_missing_model_names_it_and_what_the_server_has(server: OllamaStandin) -> None:
    with pytest.raises(ModelNotFound) as error:
        _backend(server).prepare("nope")
    assert str(error.value) == (f"model 'nope' not found at {server.url}/v1 — it has: "
                                "mixtral:8x7b, deepseek-v2:16b, granite3-moe:1b")


def test_invalid_key_is_one_auth_line_naming_the_option(
        server: OllamaStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_key(server)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    with pytest.raises(AuthError) as error:
        _backend(server).prepare(MODEL)
    message = str(error.value)
    assert "(401)" in message and "$OPENAI_API_KEY was refused" in message
    assert "--api-key-env" in message and "sk-wrong-key" not in message
    with pytest.raises(AuthError):  # generate too: a refused key ends the run, no retries
        _backend(server).generate(MODEL, chat_request())
    assert server.stats.by_path["/v1/chat/completions"] == 1


def test_key_is_read_from_the_named_variable(
        server: OllamaStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_key(server)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(AuthError, match=r"\$MY_KEY is not set"):
        _backend(server, api_key_env="MY_KEY").prepare(MODEL)
    monkeypatch.setenv("MY_KEY", KEY)
    backend = _backend(server, api_key_env="MY_KEY")
    assert backend.prepare(MODEL).name == MODEL
    assert KEY not in repr(backend.prepare(MODEL))


def test_rate_limit_waits_for_retry_after_then_retries(server: OllamaStandin) -> None:
    limiter = RateLimited(times=1, retry_after=0.3)
    server.add_route("POST", "/v1/chat/completions", limiter)
    done = _backend(server, backoff_s=0.01).generate(MODEL, chat_request())
    assert done.attempts == 2 and done.text
    assert len(limiter.arrivals) == 2
    assert limiter.arrivals[1] - limiter.arrivals[0] >= 0.3  # not the 0.01 s backoff


def test_client_retries_are_off_so_our_policy_counts(server: OllamaStandin) -> None:
    limiter = RateLimited(times=5, retry_after=0.01)
    server.add_route("POST", "/v1/chat/completions", limiter)
    with pytest.raises(RequestFailed, match=r"failed after 1 attempt: server error \(429\)"):
        _backend(server, retries=0).generate(MODEL, chat_request())
    assert len(limiter.arrivals) == 1


@pytest.mark.parametrize("clean", [False, True])
def test_stream_that_stops_midway_is_retried(server: OllamaStandin, clean: bool) -> None:
    server.faults.drop_next(1, after_chunks=2, clean=clean)
    done = _backend(server).generate(MODEL, chat_request())
    assert done.attempts == 2
    assert done.text == _backend(server).generate(MODEL, chat_request()).text


def test_server_errors_are_retried_client_errors_are_not(server: OllamaStandin) -> None:
    server.faults.fail_next(2, status=500)
    assert _backend(server).generate(MODEL, chat_request()).attempts == 3
    server.faults.fail_next(1, status=400, message="bad request")
    with pytest.raises(RequestFailed, match=r"refused the request \(400\): bad request"):
        _backend(server).generate(MODEL, chat_request())


def test_timeout_is_not_retried(server: OllamaStandin) -> None:
    server.faults.delay_next(1, seconds=1.0)
    start = time.perf_counter()
    with pytest.raises(RequestFailed, match="timed out after 0.3s — raise --timeout"):
        _backend(server, timeout=0.3).generate(MODEL, chat_request())
    assert time.perf_counter() - start < 0.9
    assert server.stats.by_path["/v1/chat/completions"] == 1


def test_server_down_is_one_line() -> None:
    backend = _backend_at("http://127.0.0.1:9")
    with pytest.raises(BackendUnavailable) as error:
        backend.prepare(MODEL)
    assert str(error.value) == ("no OpenAI-compatible server answers at http://127.0.0.1:9/v1 "
                                "— start it or pass --host URL")
    with pytest.raises(RequestFailed, match="connection to http://127.0.0.1:9/v1 failed"):
        backend.generate(MODEL, chat_request())


def _backend_at(host: str) -> OpenAIBackend:
    return OpenAIBackend(BackendConfig(host=host, retries=1, backoff_s=0.01, timeout=2.0))


def _run(server: OllamaStandin, *extra: str) -> tuple[int, str]:
    Path("tiny.yaml").write_text(SUITE)
    result = CliRunner().invoke(app, ["run", "-b", "openai", "--host", server.url, "-m", MODEL,
                                      "-s", "tiny.yaml", "--samples-csv", "samples.csv",
                                      *extra])
    return result.exit_code, result.output


def test_cli_run_dropped_streams_become_an_error_row(server: OllamaStandin) -> None:
    server.faults.drop_next(3, after_chunks=1)  # the warm-up (not streamed) uses up one
    code, output = _run(server, "--retries", "1")
    assert code == 0, output
    row = Path("samples.csv").read_text().splitlines()[1]
    assert ",openai," in row and "failed after 2 attempts" in row
    assert "the stream ended before its finish chunk" in row or "failed:" in row


def test_cli_run_bad_key_exits_1_and_the_key_is_stored_nowhere(
        server: OllamaStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_key(server)
    monkeypatch.setenv("BENCH_KEY", "sk-bad-key-xyz")
    code, output = _run(server, "--api-key-env", "BENCH_KEY")
    assert code == 1 and "--api-key-env" in output and "sk-bad-key-xyz" not in output
    monkeypatch.setenv("BENCH_KEY", KEY)
    code, output = _run(server, "--api-key-env", "BENCH_KEY", "--csv", "summary.csv",
                        "--html", "report.html")
    assert code == 0, output
    written = [p for p in Path(".").rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in written)
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path


def test_cli_run_server_down_is_one_line() -> None:
    Path("tiny.yaml").write_text(SUITE)
    result = CliRunner().invoke(app, ["run", "-b", "openai", "--host", "http://127.0.0.1:9",
                                      "-m", MODEL, "-s", "tiny.yaml"])
    assert result.exit_code == 1
    assert "no OpenAI-compatible server answers at http://127.0.0.1:9/v1" in result.output
    assert "Traceback" not in result.output
