"""The C decode step (`Engine.native_decode`): same tokens and router counts as the eager engine
in fp32, close logits in fp16 and Q8_0 (teacher-forced), odd sizes through the kernels'
scalar tails, a growing KV cache, and a clear refusal (engine unchanged) for what it does
not cover. The figures are printed with `-s`. Skips without a C compiler."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from tiny_models import COMMON, PROMPT, REFERENCE_KW, Case, save_tokenizer

from moebench.engine import load_model
from moebench.errors import EngineError

pytestmark = pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")),
                                reason="the native decode step needs a C compiler")


def _teacher_forced(engine: Any, ids: list[int], prompt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits `[N, V]` of `ids[prompt:]`, one token at a time after a `prompt`-token prefill:
    the eager model's, then the native step's over the same cache positions."""
    model = engine.model
    rows: dict[str, list[torch.Tensor]] = {"eager": [], "native": []}
    with torch.inference_mode():
        for kind in rows:
            model.setup_cache(len(ids) + 1)
            model(torch.tensor([ids[:prompt]]), 0)
            for pos in range(prompt, len(ids)):
                token = torch.tensor([[ids[pos]]])
                step = engine.native.step if kind == "native" else model
                rows[kind].append(step(token, pos)[0, -1].float().clone())
    return torch.stack(rows["eager"]), torch.stack(rows["native"])


@pytest.mark.parametrize("name", ["mixtral", "dbrx"])
def test_fp32_tokens_and_router_counts_equal_the_eager_engine(
        checkpoints: dict[str, Case], name: str) -> None:
    engine = load_model(checkpoints[name].folder)
    ids = engine.tokenizer.encode(PROMPT)
    engine.reset_router_stats()
    eager = engine.generate(ids, 64, ignore_eos=True)
    counts = engine.router_stats()
    assert engine.native_decode() >= 0 and engine.native is not None
    engine.reset_router_stats()
    assert engine.generate(ids, 64, ignore_eos=True) == eager
    assert engine.router_stats() == counts  # prefill counted by PyTorch, decode by the C step


def _logit_figures(engine: Any, label: str) -> tuple[float, float]:
    ids = engine.tokenizer.encode(PROMPT)
    ids += engine.generate(ids, 48, ignore_eos=True)
    engine.native_decode()
    eager, native = _teacher_forced(engine, ids, len(ids) - 48)
    diff = (native - eager).abs().max().item()
    agree = (native.argmax(-1) == eager.argmax(-1)).float().mean().item()
    print(f"\nnative {label}: max |Δlogit| {diff:.2e} (logits within ±{eager.abs().max():.1f}), "
          f"top-1 agreement {agree:.1%} over {len(eager)} decode steps")
    return diff, agree


def test_fp16_logits_track_the_eager_fp16_engine(checkpoints: dict[str, Case]) -> None:
    # eager fp16 rounds activations to fp16 at every op, the C step keeps them fp32
    diff, agree = _logit_figures(load_model(checkpoints["mixtral"].folder, "float16"), "fp16")
    assert diff < 0.05 and agree >= 0.95


def test_q8_0_logits_track_the_dequantised_q8_0_engine(q8_file: Path) -> None:
    # Q8_0 weights everywhere and Q8_0-rounded activations, as llama.cpp's q8_0 path
    diff, agree = _logit_figures(load_model(q8_file, quant="q8_0"), "Q8_0")
    assert diff < 0.2 and agree >= 0.95


def _odd_mixtral(root: Path) -> Path:
    """Sizes that reach every scalar tail: 40-wide rows (not a multiple of 16), 3 experts
    (fewer rows than a group of four), head dim 10."""
    import transformers

    torch.manual_seed(3)
    config = transformers.MixtralConfig(
        hidden_size=40, intermediate_size=36, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=3, num_experts_per_tok=2,
        max_position_embeddings=256, rope_parameters={"rope_type": "default", "rope_theta": 1e4},
        **COMMON, **REFERENCE_KW)
    model = transformers.MixtralForCausalLM(config).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    model.save_pretrained(root / "odd")
    save_tokenizer(root / "odd")
    return root / "odd"


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_odd_sizes_and_a_growing_cache(tmp_path: Path, dtype: str) -> None:
    engine = load_model(_odd_mixtral(tmp_path), dtype)
    ids = engine.tokenizer.encode(PROMPT)
    short, long = engine.generate(ids, 4, ignore_eos=True), engine.generate(ids, 150, ignore_eos=True)
    engine.native_decode()
    assert engine.generate(ids, 4, ignore_eos=True) == short  # a cache just long enough
    grown = engine.generate(ids, 150, ignore_eos=True)  # the cache grows: the step re-binds it
    same = sum(a == b for a, b in zip(grown, long))
    assert same >= (150 if dtype == "float32" else 100), same


@pytest.mark.parametrize("name", ["deepseek_v2", "mixtral_window"])  # MLA, sliding window
def test_models_it_does_not_cover_are_refused_and_left_eager(
        checkpoints: dict[str, Case], name: str) -> None:
    engine = load_model(checkpoints[name].folder)
    column_major = engine.model.column_major_weights()
    with pytest.raises(EngineError, match="native decode step"):
        engine.native_decode()
    assert engine.native is None and engine.model.column_major_weights() == column_major
    assert engine.generate(engine.tokenizer.encode(PROMPT), 4, ignore_eos=True)


def test_the_build_is_cached_per_source_and_cpu(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from moebench.engine.native_decode import _build

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = _build()
    stamp = first.stat().st_mtime_ns
    assert first.parent == tmp_path / "moebench" / "native"
    assert _build() == first and first.stat().st_mtime_ns == stamp  # not compiled again
