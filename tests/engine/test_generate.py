"""Generation behaviour: stop strings, EOS, sampling determinism, streaming, timings."""

from __future__ import annotations

from typing import Any

import pytest
from tiny_models import compiled_matches_eager

PROMPT = "Seven plus five is"


@pytest.fixture()
def engine(engines: dict[str, Any]) -> Any:
    return engines["mixtral"]


def test_stop_string_ends_generation(engine: Any) -> None:
    ids = engine.tokenizer.encode(PROMPT)
    full = engine.generate(ids, max_new_tokens=32, ignore_eos=True)
    text = engine.tokenizer.decode(full)
    stop = text[len(text) // 2: len(text) // 2 + 3]
    assert stop.strip()
    cut = engine.generate(ids, max_new_tokens=32, stop=[stop], ignore_eos=True)
    assert len(cut) < len(full) and cut == full[:len(cut)]
    assert stop in engine.tokenizer.decode(cut)
    assert stop not in engine.tokenizer.decode(cut[:-1])
    assert engine.last_stats.stop_reason == "stop"


def test_eos_ends_generation_and_is_returned(engine: Any) -> None:
    ids = engine.tokenizer.encode(PROMPT)
    first = engine.generate(ids, max_new_tokens=8, ignore_eos=True)
    saved = engine.eos_ids
    try:
        engine.eos_ids = (first[2],)
        out = engine.generate(ids, max_new_tokens=8)
    finally:
        engine.eos_ids = saved
    assert out == first[:first.index(first[2]) + 1]
    assert engine.last_stats.stop_reason == "eos"


def test_sampling_is_deterministic_with_a_seed(engine: Any) -> None:
    ids = engine.tokenizer.encode(PROMPT)
    runs = [engine.generate(ids, 24, temperature=1.5, seed=seed, ignore_eos=True)
            for seed in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("options", [{"top_k": 1}, {"top_p": 1e-6}])
def test_degenerate_sampling_equals_greedy(engine: Any, options: dict[str, Any]) -> None:
    ids = engine.tokenizer.encode(PROMPT)
    greedy = engine.generate(ids, 16, ignore_eos=True)
    assert engine.generate(ids, 16, temperature=0.9, seed=1, ignore_eos=True, **options) == greedy


def test_streaming_callback_and_timings(engine: Any) -> None:
    ids = engine.tokenizer.encode(PROMPT)
    seen: list[int] = []
    out = engine.generate(ids, 12, on_token=seen.append, ignore_eos=True)
    assert seen == out and len(out) == 12
    stats = engine.last_stats
    assert (stats.prompt_tokens, stats.new_tokens, stats.stop_reason) == (len(ids), 12, "length")
    assert 0 < stats.prefill_s <= stats.ttft_s and stats.decode_s > 0
    assert stats.decode_tokens_per_s == pytest.approx(11 / stats.decode_s)


def test_zero_budget_and_empty_prompt(engine: Any) -> None:
    from moebench.errors import EngineError

    assert engine.generate(engine.tokenizer.encode(PROMPT), max_new_tokens=0) == []
    with pytest.raises(EngineError, match="empty prompt"):
        engine.generate([], 4)


def test_long_generation_grows_cache(engine: Any) -> None:
    # step past a previously allocated cache: contents must survive the reallocation
    ids = engine.tokenizer.encode(PROMPT)
    short = engine.generate(ids, 4, ignore_eos=True)
    longer = engine.generate(ids, 200, ignore_eos=True)
    assert longer[:4] == short


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mixtral_window", "dbrx", "deepseek_v2_yarn"])  # yarn: MLA, low-rank q
def test_compiled_decode_gives_same_tokens_and_counts(checkpoints: dict[str, Any],
                                                      name: str) -> None:
    engine, ids, eager = compiled_matches_eager(checkpoints[name].folder, PROMPT)
    longer = engine.generate(ids, 80, ignore_eos=True)  # past 64: eager, the cache grows
    assert longer[:24] == eager
    assert engine.generate(ids, 80, ignore_eos=True) == longer  # compiled again (new size)
