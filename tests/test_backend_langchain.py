"""The LangChain backend: a real `ChatPromptTemplate | ChatOllama` chain against the stand-in's
`/api/chat`, with the Ollama backend's warm-up, retry and timing rules."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _backend_support import backend_at, chat_request
from langchain_core.messages import AIMessageChunk
from typer.testing import CliRunner

from moebench.backends import BackendConfig, create_backend
from moebench.backends.langchain import LangChainBackend, chat_response
from moebench.cli import app
from moebench.errors import BackendUnavailable, ModelNotFound
from moebench.testing import OllamaStandin

MODEL = "mixtral:8x7b"


@pytest.fixture()
def server() -> Iterator[OllamaStandin]:
    with OllamaStandin(token_delay=0.005, load_delay=0.1, parallel=2) as s:
        yield s


def _backend(server: OllamaStandin, **config: object) -> LangChainBackend:
    return backend_at(server, "langchain", LangChainBackend, **config)


def test_chain_streams_with_ttft_and_server_timings_from_metadata(
        server: OllamaStandin) -> None:
    backend = _backend(server)
    info = backend.prepare(MODEL)
    done = backend.generate(MODEL, chat_request(max_tokens=64, seed=3))
    assert done.text.startswith("Let me think step by step. The answer is")
    assert (done.model, done.done_reason, done.timing_source) == (MODEL, "stop", "server")
    assert done.output_tokens == 10 and done.prompt_tokens and done.prompt_tokens > 10
    assert done.decode_s is not None and done.decode_s >= 10 * 0.005  # eval_duration, ns → s
    assert done.prompt_eval_s is not None and done.server_total_s is not None
    assert done.ttft_s is not None and 0 < done.ttft_s < done.latency_s
    method, path, body = server.stats.log[-1]
    assert (method, path) == ("POST", "/api/chat") and body["stream"] is True
    assert body["options"] == {"temperature": 0, "seed": 3, "num_predict": 64}
    assert body["keep_alive"] == "30m"
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "What is 2 + 2?"}]
    assert info.name == MODEL
    backend.close()


def test_prepare_warms_up_through_the_chain_and_reads_moe_facts(
        server: OllamaStandin) -> None:
    backend = _backend(server)
    info = backend.prepare("mixtral:8x7b")
    assert (info.backend, info.experts, info.top_k) == ("langchain", 8, 2)
    assert info.load_s is not None and info.load_s >= 0.1 and info.loads == 1
    assert info.size_bytes and info.vram_bytes
    warm_up = [b for m, p, b in server.stats.log if p == "/api/chat"]
    assert len(warm_up) == 1 and warm_up[0]["stream"] is True  # LangChain always streams
    assert warm_up[0]["options"]["num_predict"] == 1
    done = backend.generate(MODEL, chat_request())
    assert done.load_s is not None and done.load_s < 0.1  # the load stayed in the warm-up
    unloaded = backend.unload(MODEL)
    assert unloaded is not None and unloaded.backend == "langchain"
    assert server.state.resident() == []


def test_thinking_comes_through_when_the_request_asks_for_it() -> None:
    def thinker(model: str, messages: object, options: object) -> str:
        return "<think>2 and 2 make 4</think>Final answer: 4"

    with OllamaStandin(models=["qwen3:30b-a3b"], responder=thinker) as server:
        done = _backend(server).generate("qwen3:30b-a3b", chat_request(think=True))
    assert done.text == "<think>2 and 2 make 4</think>Final answer: 4"


def test_missing_model_is_one_line_naming_the_fix(server: OllamaStandin) -> None:
    with pytest.raises(ModelNotFound) as error:
        _backend(server).prepare("nope")
    assert str(error.value) == "model 'nope' not found — run: moebench pull nope"
    with pytest.raises(ModelNotFound, match="moebench pull"):  # the chain's own 404
        _backend(server).generate("nope", chat_request())


def test_server_down_is_one_line() -> None:
    with pytest.raises(BackendUnavailable) as error:
        create_backend("langchain", BackendConfig(host="http://127.0.0.1:9"))
    assert str(error.value) == ("Ollama is not reachable at http://127.0.0.1:9 — start it "
                                "with: ollama serve")


@pytest.mark.parametrize("clean", [False, True])
def test_stream_that_stops_midway_is_retried(server: OllamaStandin, clean: bool) -> None:
    server.faults.drop_next(1, after_chunks=0 if clean else 3, clean=clean)
    done = _backend(server).generate(MODEL, chat_request())
    assert done.attempts == 2 and done.text.endswith(".")


def test_concurrent_requests_share_the_chain(server: OllamaStandin) -> None:
    backend = _backend(server, concurrency=2)
    backend.prepare(MODEL)
    texts: list[str] = []
    threads = [threading.Thread(target=lambda p=p: texts.append(
        backend.generate(MODEL, chat_request(p)).text)) for p in ("a", "b", "c", "d")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(texts) == 4 and server.stats.max_in_flight == 2


def test_decode_time_falls_back_to_the_client_clock(server: OllamaStandin) -> None:
    def no_durations(standin: OllamaStandin, req: Any) -> None:  # durations omitted
        head = {"model": MODEL, "created_at": "2025-01-01T00:00:00Z"}
        req.start_chunked()
        for piece in ("Final", " answer:", " 4"):
            req.write_line({**head, "message": {"role": "assistant", "content": piece},
                            "done": False})
            time.sleep(0.05)  # long enough that the pieces reach the client in separate reads
        req.write_line({**head, "message": {"role": "assistant", "content": ""}, "done": True,
                        "done_reason": "stop", "eval_count": 3, "prompt_eval_count": 9})
        req.end_chunked()

    server.add_route("POST", "/api/chat", no_durations)
    start = time.perf_counter()
    done = _backend(server).generate(MODEL, chat_request())
    wall = time.perf_counter() - start
    assert (done.text, done.output_tokens, done.timing_source) == ("Final answer: 4", 3, "client")
    # a client clock: positive and of the order of the call's wall time (scaled by n / (n − 1)
    # for the first token; no fixed floor: on a loaded machine the gaps between reads shrink)
    assert done.decode_s is not None and 0 < done.decode_s <= 1.5 * wall


def test_chat_response_rebuilds_ollamas_final_chunk() -> None:
    meta = {"model": MODEL, "done": True, "done_reason": "stop", "eval_count": 7,
            "eval_duration": 2_000_000, "load_duration": 5, "model_provider": "ollama"}
    final = chat_response(AIMessageChunk(content="", response_metadata=meta,
                                         usage_metadata={"input_tokens": 4, "output_tokens": 7,
                                                         "total_tokens": 11}))
    assert (final.done, final.eval_count, final.prompt_eval_count) == (True, 7, 4)
    assert final.eval_duration == 2_000_000 and final.message.content == ""
    piece = chat_response(AIMessageChunk(content="Hi"))
    assert (piece.done, piece.message.content) == (False, "Hi")


def test_cli_run_and_backends_listing(server: OllamaStandin) -> None:
    Path("tiny.yaml").write_text(
        "suite: tiny\ntasks:\n  - name: add\n    scorer: number\n    prompt: '{q}'\n"
        "    cases:\n      - {id: one, q: 'What is 1 + 2?', expected: 3}\n")
    runner = CliRunner()
    result = runner.invoke(app, ["run", "-b", "langchain", "--host", server.url, "-m", MODEL,
                                 "-s", "tiny.yaml", "--samples-csv", "s.csv"])
    assert result.exit_code == 0, result.output
    assert ",langchain,tiny,add,one,1," in Path("s.csv").read_text()
    missing = runner.invoke(app, ["run", "-b", "langchain", "--host", server.url, "-m", "nope",
                                  "-s", "tiny.yaml"])
    assert missing.exit_code == 1
    assert "model 'nope' not found — run: moebench pull nope" in missing.output
    down = runner.invoke(app, ["run", "-b", "langchain", "-m", MODEL, "-s", "tiny.yaml"])
    assert down.exit_code == 1 and "Ollama is not reachable at http://127.0.0.1:9" in down.output
    listing = runner.invoke(app, ["backends"])
    assert listing.exit_code == 0
    for name in ("ollama", "torch", "langchain", "openai", "tokens/s from", "MoE facts"):
        assert name in listing.output
    assert "client clock" in listing.output
