"""Load failures and deadlines on the OpenAI-compatible, LangChain and torch backends (issue 17).

Real stand-in servers on 127.0.0.1 with the real `openai` / `langchain-ollama` clients; the
torch tests load the bundled demo checkpoint (one with a huge sparse extra weight file, which
the engine's memory check refuses before reading it).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from _run_support import MODELS, RecordingEvents, responder, write_suite

from moebench.backends import BackendConfig
from moebench.backends._load import is_memory_error
from moebench.backends.torch import TorchBackend
from moebench.errors import ModelLoadFailed, RequestFailed
from moebench.paths import DEMO_MODELS_DIR
from moebench.runner import RunOptions, run
from moebench.store import Store
from moebench.testing.ollama_standin import OllamaStandin
from moebench.testing.openai_routes import chat_completions
from moebench.types import Request, ScorerSpec

RUNNER_DIED = "llama runner process has terminated: exit status 2"


def _samples(run_id: str):
    store = Store.open("out")
    try:
        return store.samples_frame([run_id]), store.models_frame([run_id])
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["openai", "langchain"])
def test_5xx_at_the_first_request_is_a_failed_model_and_the_run_goes_on(
        tmp_path: Path, backend: str) -> None:
    with OllamaStandin(models=list(MODELS), responder=responder) as server:
        server.faults.fail_loads(MODELS[0], RUNNER_DIED)
        events = RecordingEvents()
        result = run(RunOptions(backend=backend, models=list(MODELS), host=server.url,
                                suites=[write_suite(tmp_path)], out=Path("out"), retries=1),
                     events)
    assert result.status == "completed"
    samples, models = _samples(result.run_id)
    broken = samples[samples["model"] == MODELS[0]]
    assert len(broken) == 5 and broken["error"].str.contains(RUNNER_DIED).all()
    assert samples[samples["model"] == MODELS[1]]["error"].isna().all()
    extra = models.set_index("model").loc[MODELS[0], "extra"]
    assert extra["status"] == "failed" and "(after 2 attempts)" in extra["load_error"]


def test_streams_without_usage_count_chunks_and_say_so_once(tmp_path: Path) -> None:
    with OllamaStandin(models=list(MODELS), responder=responder) as server:
        server.add_route("POST", "/v1/chat/completions", chat_completions(usage=False))
        events = RecordingEvents()
        result = run(RunOptions(backend="openai", models=[MODELS[0]], host=server.url,
                                suites=[write_suite(tmp_path)], out=Path("out")), events)
    samples, _ = _samples(result.run_id)
    assert (samples["timing_source"] == "client-chunks").all()
    assert samples["output_tokens"].notna().all() and (samples["output_tokens"] > 0).all()
    # "The answer is 4." streams as 4 word pieces (the think trace goes to `reasoning`)
    assert samples.set_index("case_id").loc["a2", "output_tokens"] == 4 + 3
    notes = [n for n in events.notes if "no token usage" in n]
    assert len(notes) == 1 and "client-chunks" in notes[0]


def _too_big_demo(tmp_path: Path) -> Path:
    """The demo checkpoint plus a sparse 40 GB weight file: refused by the memory check."""
    folder = tmp_path / "demo-huge"
    shutil.copytree(DEMO_MODELS_DIR / "demo-mixtral", folder)
    size = 100_000 * 100_000 * 4
    header = json.dumps({"huge.weight": {"dtype": "F32", "shape": [100_000, 100_000],
                                         "data_offsets": [0, size]}}).encode()
    with open(folder / "model-huge.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + size)  # a hole: nothing is written to disk
    return folder


def test_torch_memory_refusal_is_a_failed_model(tmp_path: Path) -> None:
    folder = _too_big_demo(tmp_path)
    backend = TorchBackend(BackendConfig())
    with pytest.raises(ModelLoadFailed) as caught:
        backend.prepare(str(folder))
    # the engine's own refusal (`needs ~37 GiB ...`), or the OS refusing the mmap first
    assert is_memory_error(caught.value.reason) and "--dtype bfloat16" in caught.value.hint
    assert caught.value.info is not None and caught.value.info.digest


def test_torch_enforces_the_timeout_inside_generation() -> None:
    backend = TorchBackend(BackendConfig(timeout=0.005))
    try:
        backend.prepare("demo-mixtral")
        # the demo models stop early on prompts unlike their training; a long word list takes
        # ~35 tokens (~50 ms here), ten times the deadline
        request = Request("s", "t", "c", "List 8 words with 10 letters.", ScorerSpec("contains"),
                          options={"max_tokens": 200, "temperature": 1.0, "seed": 1})
        with pytest.raises(RequestFailed, match="took longer than 0.005s"):
            backend.generate("demo-mixtral", request)
    finally:
        backend.close()


def _openai(server: OllamaStandin, **config: object):
    from moebench.backends.openai import OpenAIBackend

    return OpenAIBackend(BackendConfig(host=server.url, backoff_s=0.01, **config))


@pytest.mark.parametrize("name", ["openai", "langchain"])
def test_deadline_cuts_a_trickling_stream(name: str) -> None:
    import time

    from moebench.backends import create_backend

    with OllamaStandin(models=list(MODELS), responder=responder) as server:
        backend = create_backend(name, BackendConfig(host=server.url, timeout=1.0, retries=0))
        try:
            backend.prepare(MODELS[0])  # LangChain streams its warm-up too: arm after it
            server.faults.trickle_next(1, byte_delay=0.02)  # ~150-byte lines: 3 s each
            start = time.perf_counter()
            with pytest.raises(RequestFailed, match="timed out after 1s"):
                backend.generate(MODELS[0], Request("s", "t", "c", "Q: 1+1",
                                                    ScorerSpec("number")))
            assert time.perf_counter() - start < 4.0
        finally:
            backend.close()


def test_openai_invalid_sse_data_is_retried() -> None:
    with OllamaStandin(models=list(MODELS), responder=responder) as server:
        backend = _openai(server, retries=1)
        try:
            server.faults.bad_line_next(1, line=b"data: {not json\n\n")
            done = backend.generate(MODELS[0], Request("s", "t", "c", "Q: 1+1",
                                                       ScorerSpec("number")))
            assert done.attempts == 2 and "The answer is 2" in done.text
        finally:
            backend.close()


def test_openai_server_dying_mid_run_stops_it_as_interrupted(tmp_path: Path) -> None:
    server = OllamaStandin(models=list(MODELS), responder=responder).start()
    try:
        server.faults.die_after(3)  # warm-up, one sample, then the server dies
        result = run(RunOptions(backend="openai", models=list(MODELS), host=server.url,
                                suites=[write_suite(tmp_path)], out=Path("out"), retries=0))
    finally:
        server.close()
    assert result.status == "interrupted" and "stopped answering" in (result.stopped or "")
    samples, _ = _samples(result.run_id)
    assert set(samples["model"]) == {MODELS[0]} and samples["error"].notna().sum() >= 1
