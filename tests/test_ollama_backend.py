"""The Ollama backend against the loopback stand-in, through the real `ollama` client."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from moebench.backends import BackendConfig, create_backend
from moebench.backends.ollama import OllamaBackend, create, ollama_options, ping
from moebench.backends.ollama_api import list_models, normalize_name, running_models
from moebench.errors import BackendUnavailable, ModelNotFound, RequestFailed
from moebench.testing import OllamaStandin
from moebench.types import Request, ScorerSpec

MODEL = "mixtral:8x7b"
FIVE = "one two three four five"


def req(prompt: str = "q", system: str | None = None, **options: Any) -> Request:
    return Request("suite", "task", "case", prompt, ScorerSpec("exact"), system=system,
                   options=options)


@pytest.fixture()
def server() -> Iterator[OllamaStandin]:
    with OllamaStandin() as s:
        yield s


def backend(server: OllamaStandin, **config: Any) -> OllamaBackend:
    config.setdefault("backoff_s", 0.001)
    return create(BackendConfig(host=server.url, **config))


def chat_bodies(server: OllamaStandin) -> list[dict[str, Any]]:
    return [body for method, path, body in server.stats.log if path == "/api/chat"]


def test_registry_builds_it(server: OllamaStandin) -> None:
    assert create_backend("ollama", BackendConfig(host=server.url)).name == "ollama"


def test_warm_up_load_is_recorded_apart() -> None:
    with OllamaStandin(load_delay=0.3) as s:
        b = backend(s)
        info = b.prepare(MODEL)
        done = b.generate(MODEL, req())
        final = b.unload(MODEL)
        resident_after = running_models(s.url)
        listed = list_models(s.url)
    assert info.load_s is not None and info.load_s >= 0.3 and info.loads == 1
    assert info.extra["warmup_wall_s"] >= info.load_s and info.extra["was_resident"] is False
    assert (info.experts, info.top_k, info.family, info.quantization) == (8, 2, "llama", "Q4_0")
    assert info.total_params == 46_702_792_704 and info.context_length == 32768
    assert info.size_bytes and info.vram_bytes == info.size_bytes
    assert info.digest == next(m.digest for m in listed if m.name == MODEL)
    assert done.load_s is not None and done.load_s < 0.05 and done.latency_s < 0.2
    assert final is not None and final.loads == 1 and s.stats.loads[MODEL] == 1
    assert resident_after == []
    assert chat_bodies(s)[0]["options"] == {"num_predict": 1}


def test_shared_experts_and_name_normalisation() -> None:
    with OllamaStandin(models=["deepseek-v2:16b", "dbrx"]) as s:
        b = backend(s)
        assert b.prepare("deepseek-v2:16b").shared_experts == 2
        dbrx = b.prepare("dbrx")
        assert (dbrx.name, dbrx.experts, dbrx.top_k) == ("dbrx:latest", 16, 4)
        assert dbrx.vram_bytes is not None and dbrx.size_bytes and (
            dbrx.vram_bytes < dbrx.size_bytes)
        assert b.generate("dbrx", req()).model == "dbrx:latest"


def test_missing_model_names_the_fix(server: OllamaStandin) -> None:
    with pytest.raises(ModelNotFound, match=r"model 'nope' not found — run: moebench pull nope"):
        backend(server).prepare("nope")


def test_pull_option_pulls_first(server: OllamaStandin) -> None:
    info = backend(server, pull=True).prepare("qwen3:30b-a3b")
    assert (info.experts, info.top_k) == (128, 8)
    assert server.stats.by_path["/api/pull"] == 1


def test_server_down_is_unavailable_and_ping_is_fast() -> None:
    start = time.perf_counter()
    assert ping("http://127.0.0.1:9") is None
    assert time.perf_counter() - start < 0.5
    with pytest.raises(BackendUnavailable,
                       match=r"not reachable at http://127.0.0.1:9 — start it with: ollama serve"):
        create(BackendConfig(host="http://127.0.0.1:9"))


def test_ping_reports_version(server: OllamaStandin) -> None:
    assert ping(server.url) == "0.12.6"


def test_retries_after_500s(server: OllamaStandin) -> None:
    b = backend(server)
    server.faults.fail_next(2, status=500)
    done = b.generate(MODEL, req())
    assert done.attempts == 3 and done.text.startswith("Let me think")
    server.faults.fail_next(5, status=503)
    with pytest.raises(RequestFailed, match="after 3 attempts: Ollama error \\(503\\)"):
        backend(server, retries=2).generate(MODEL, req())


@pytest.mark.parametrize("clean", [False, True])
def test_retries_dropped_streams(server: OllamaStandin, clean: bool) -> None:
    server.faults.drop_next(1, after_chunks=3, clean=clean)
    done = backend(server).generate(MODEL, req())
    assert done.attempts == 2 and done.text.endswith("The answer is 74.")
    assert done.done_reason == "stop"


def test_client_errors_are_not_retried(server: OllamaStandin) -> None:
    server.faults.fail_next(3, status=400, message="bad")
    with pytest.raises(RequestFailed, match=r"refused the request \(400\): bad"):
        backend(server).generate(MODEL, req())
    assert server.stats.by_path["/api/chat"] == 1


def test_model_deleted_mid_run_is_model_not_found(server: OllamaStandin) -> None:
    b = backend(server)
    b.prepare("granite3-moe:1b")
    server.state.installed.pop("granite3-moe:1b")
    with pytest.raises(ModelNotFound):
        b.generate("granite3-moe:1b", req())


def test_request_timeout_is_not_retried(server: OllamaStandin) -> None:
    server.faults.delay_next(1, seconds=1.0)
    start = time.perf_counter()
    with pytest.raises(RequestFailed, match="timed out after 0.2s — raise --timeout"):
        backend(server, timeout=0.2).generate(MODEL, req())
    assert time.perf_counter() - start < 0.9


def test_loads_get_the_longer_load_timeout() -> None:
    with OllamaStandin(load_delay=0.4) as s:
        b = backend(s, timeout=0.2, load_timeout=5)
        assert b.prepare(MODEL).load_s >= 0.4  # type: ignore[operator]
        b.unload(MODEL)
        with pytest.raises(RequestFailed, match="took longer than 0.1s"):
            backend(s, timeout=0.2, load_timeout=0.1).prepare(MODEL)


def test_option_mapping_and_chat_shape(server: OllamaStandin) -> None:
    b = backend(server)
    b.generate(MODEL, req("Q?", system="Be brief.", max_tokens=7, temperature=0, top_p=0.9,
                          top_k=20, seed=3, stop="###", num_ctx=8192))
    body = chat_bodies(server)[-1]
    assert body["options"] == {"num_predict": 7, "temperature": 0, "top_p": 0.9, "top_k": 20,
                               "seed": 3, "stop": ["###"], "num_ctx": 8192}
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Q?"}]
    assert body["keep_alive"] == "30m" and body["stream"] is True


@pytest.mark.parametrize(("ours", "options", "top"), [
    ({"max_tokens": 5}, {"num_predict": 5}, {}),
    ({"stop": ["a", "b"], "seed": None}, {"stop": ["a", "b"]}, {}),
    ({"min_p": 0.1, "think": False}, {"min_p": 0.1}, {"think": False}),
    ({"format": "json"}, {}, {"format": "json"}),
])
def test_ollama_options(ours: dict[str, Any], options: dict[str, Any],
                        top: dict[str, Any]) -> None:
    assert ollama_options(ours) == (options, top)


def test_runner_options_stay_constant_per_model() -> None:
    with OllamaStandin(load_delay=0.3) as s:
        b = backend(s)
        b.prepare(MODEL, options={"num_ctx": 8192})
        b.generate(MODEL, req(num_ctx=8192))
        b.generate(MODEL, req(num_ctx=2048))  # would reload: kept at 8192
        final = b.unload(MODEL)
    assert [body["options"].get("num_ctx") for body in chat_bodies(s)] == [8192] * 3
    assert s.stats.loads[MODEL] == 1 and final is not None and final.loads == 1


def test_a_reload_mid_run_is_counted_and_kept_out_of_latency() -> None:
    with OllamaStandin(load_delay=0.3) as s:
        b = backend(s)
        b.prepare(MODEL)
        s.state.loaded.clear()  # the server evicted the model
        done = b.generate(MODEL, req())
        final = b.unload(MODEL)
    assert done.load_s is not None and done.load_s >= 0.3 and done.latency_s < 0.1
    assert final is not None and final.loads == 2


def test_thinking_is_kept_as_a_think_block() -> None:
    with OllamaStandin(models=["qwen3:30b-a3b"],
                       responder=lambda m, msgs, o: "<think>2 and 2</think>4") as s:
        done = backend(s).generate("qwen3:30b-a3b", req())
    assert done.text == "<think>2 and 2</think>4" and done.output_tokens == 4


def test_timings_come_from_the_server() -> None:
    with OllamaStandin(token_delay=0.01, first_token_delay=0.03,
                       responder=lambda m, msgs, o: FIVE) as s:
        done = backend(s).generate(MODEL, req())
    assert done.output_tokens == 5 and done.decode_s and 0.045 < done.decode_s < 0.2
    assert done.tokens_per_s and 25 < done.tokens_per_s < 110
    assert done.ttft_s and 0.03 <= done.ttft_s < done.latency_s
    assert done.prompt_eval_s and done.prompt_eval_s >= 0.03 and done.timing_source == "server"


def run_threads(b: OllamaBackend, threads: int, each: int) -> list[Any]:
    results: list[Any] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(each):
            done = b.generate(MODEL, req())
            with lock:
                results.append(done)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return results


def test_server_queue_wait_is_kept_out_of_latency() -> None:
    with OllamaStandin(parallel=1, token_delay=0.01, responder=lambda m, msgs, o: FIVE) as s:
        results = run_threads(backend(s, concurrency=4), threads=4, each=2)
    assert len(results) == 8 and s.stats.max_in_flight == 1
    assert statistics.median(r.latency_s for r in results) < 0.1  # service time ≈ 50 ms
    assert sum(r.queue_s for r in results) > 0.3  # 8 requests through one slot


def test_local_slot_wait_counts_as_queue() -> None:
    with OllamaStandin(parallel=4, token_delay=0.01, responder=lambda m, msgs, o: FIVE) as s:
        results = run_threads(backend(s, concurrency=1), threads=3, each=1)
    assert s.stats.max_in_flight == 1
    assert sorted(r.queue_s for r in results)[-1] > 0.08


def test_zero_delay_round_trip_costs_a_few_ms() -> None:
    with OllamaStandin(responder=lambda m, msgs, o: "4") as s:
        b = backend(s)
        b.generate(MODEL, req())
        times = []
        for _ in range(40):
            start = time.perf_counter()
            b.generate(MODEL, req())
            times.append(time.perf_counter() - start)
    # lower quartile: robust to a busy CI box, still catches a Nagle stall (~40 ms each)
    assert statistics.quantiles(times, n=4)[0] < 0.005


@pytest.mark.parametrize(("name", "full"), [
    ("dbrx", "dbrx:latest"), ("mixtral:8x7b", "mixtral:8x7b"),
    ("hf.co/user/OLMoE-GGUF", "hf.co/user/OLMoE-GGUF:latest"),
    ("localhost:5000/m", "localhost:5000/m:latest"),
])
def test_normalize_name(name: str, full: str) -> None:
    assert normalize_name(name) == full
