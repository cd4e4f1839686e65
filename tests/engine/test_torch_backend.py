"""The torch backend end to end on a tiny checkpoint: Request → Completion with router counts."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from moebench.backends import BackendConfig, create_backend
from moebench.errors import ModelNotFound
from moebench.types import Completion, Request, ScorerSpec

from tiny_models import Case

MIXTRAL_STYLE = (  # rejects system messages, as Mixtral's own template does
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }}"
    " [/INST]{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)


def _request(system: str | None = None, **options: Any) -> Request:
    return Request(suite="s", task="t", case_id="c", prompt="Seven plus five is", system=system,
                   scorer=ScorerSpec("exact"), options={"max_tokens": 12, "temperature": 0, **options})


@pytest.fixture()
def backend() -> Any:
    backend = create_backend("torch", BackendConfig())
    yield backend
    backend.close()


def test_prepare_describes_the_model(backend: Any, checkpoints: dict[str, Case]) -> None:
    folder = checkpoints["deepseek_v2"].folder
    info = backend.prepare(str(folder))
    assert (info.name, info.backend, info.family) == ("deepseek_v2", "torch", "deepseek_v2")
    assert (info.experts, info.top_k, info.shared_experts, info.loads) == (8, 2, 2, 1)
    assert info.total_params > info.active_params > 0
    assert info.size_bytes == info.total_params * 4 and info.quantization == "F32"
    assert info.load_s is not None and info.load_s > 0 and len(info.digest or "") == 64
    assert backend.prepare(str(folder)).loads == 1  # already loaded: no second load


def test_generate_returns_completion_with_router_counts(backend: Any,
                                                        checkpoints: dict[str, Case]) -> None:
    model = str(checkpoints["deepseek_v2"].folder)
    done = backend.generate(model, _request(system="Answer briefly."))
    assert isinstance(done, Completion) and isinstance(done.text, str)
    assert done.timing_source == "engine" and done.model == "deepseek_v2"
    assert done.output_tokens == 12 and done.done_reason == "length"
    assert done.prompt_tokens and done.prompt_eval_s and done.decode_s
    assert done.ttft_s is not None and 0 < done.ttft_s <= done.latency_s
    assert done.tokens_per_s == pytest.approx(11 / (done.decode_s * 11 / 12))
    router = done.router
    assert router is not None and router["prefill"][0] == []  # layer 0 is dense
    assert sum(router["prefill"][1]) == done.prompt_tokens * 2
    assert sum(router["decode"][2]) == (done.output_tokens - 1) * 2
    again = backend.generate(model, _request(system="Answer briefly."))
    assert again.router == router and again.text == done.text  # reset per request, greedy


def test_stop_and_seed_options(backend: Any, checkpoints: dict[str, Case]) -> None:
    model = str(checkpoints["mixtral"].folder)
    full = backend.generate(model, _request(max_tokens=24)).text
    stop = full[len(full) // 2: len(full) // 2 + 2]
    cut = backend.generate(model, _request(max_tokens=24, stop=[stop]))
    assert cut.text == full[:full.find(stop)] and cut.done_reason == "stop"
    sampled = [backend.generate(model, _request(temperature=1.2, seed=3)).text for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_system_message_folded_when_template_rejects_it(backend: Any, tmp_path: Path,
                                                        checkpoints: dict[str, Case]) -> None:
    folder = tmp_path / "strict"
    shutil.copytree(checkpoints["mixtral"].folder, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    (config_path).write_text(json.dumps({**config, "chat_template": MIXTRAL_STYLE}))
    done = backend.generate(str(folder), _request(system="Be brief."))
    engine = backend._models[str(folder)].engine
    expected = engine.tokenizer.encode("<s>[INST] Be brief.\n\nSeven plus five is [/INST]",
                                       add_special_tokens=False)
    assert done.prompt_tokens == len(expected)


def test_concurrent_requests_queue(backend: Any, checkpoints: dict[str, Case]) -> None:
    model = str(checkpoints["mixtral"].folder)
    backend.prepare(model)
    results: list[Completion] = []
    start = threading.Barrier(3)  # all three ask at once, so two of them must queue

    def ask() -> None:
        start.wait()
        results.append(backend.generate(model, _request()))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and len({r.text for r in results}) == 1
    assert max(r.queue_s for r in results) > 0.5 * min(r.latency_s for r in results)


def test_unknown_models_and_unload(backend: Any, checkpoints: dict[str, Case]) -> None:
    with pytest.raises(ModelNotFound, match="model 'demo-nope' not found"):
        backend.prepare("demo-nope")
    with pytest.raises(ModelNotFound, match="checkpoint folder"):
        backend.prepare("no/such/folder")
    model = str(checkpoints["dbrx"].folder)
    backend.prepare(model)
    assert backend.unload(model).name == "dbrx"
    assert backend.unload(model) is None
    assert backend.prepare(model).loads == 2


def test_hub_cache_name(backend: Any, checkpoints: dict[str, Case], tmp_path: Path) -> None:
    repo = tmp_path / "models--acme--tiny"
    shutil.copytree(checkpoints["mixtral"].folder, repo / "snapshots" / "abc")
    assert backend.prepare(str(repo)).name == "acme/tiny"
