"""Int8 weight-only modes on a Q8_0 GGUF (`quant="int8"` / `"q8_0"`): logits against the
dequantised engine, teacher-forced top-1 agreement, smaller weights, router counts kept.
The figures are printed with `-s`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("gguf")

from tiny_models import PROMPT, logits

from moebench.engine import load_model
from moebench.engine.int8 import per_channel, q8_0_blocks
from moebench.errors import EngineError


@pytest.mark.parametrize("quant", ["q8_0", "int8"])
def test_int8_modes_track_the_dequantised_q8_0_model(q8_file: Path, quant: str) -> None:
    ref_engine = load_model(q8_file)
    ids = ref_engine.tokenizer.encode(PROMPT)
    ids += ref_engine.generate(ids, max_new_tokens=64, ignore_eos=True)
    ref = logits(ref_engine, ids)
    engine = load_model(q8_file, quant=quant)
    ours = logits(engine, ids)
    per_position = (ours - ref).abs().amax(-1)  # [T]
    diff = per_position.max().item()
    agree = (ours.argmax(-1) == ref.argmax(-1)).float().mean().item()
    print(f"\nQ8_0 as {quant}: max |Δlogit| {diff:.2e}, median per position "
          f"{per_position.median():.2e} (logits within ±{ref.abs().max():.1f}), "
          f"top-1 agreement {agree:.1%} over {len(ids)} positions, weights "
          f"{engine.info.weight_bytes / ref_engine.info.weight_bytes:.0%} of fp32")
    assert agree >= 0.95
    if quant == "q8_0":  # Q8_0's own blocks: the dequantised model's numbers
        assert diff < 1e-4
    else:  # requantised per channel, bf16 activations: a near-tie router flip moves one
        assert per_position.median().item() < 0.05 * ref.abs().max().item()  # position a lot
    assert engine.info.quant == quant and engine.info.weight_bytes < ref_engine.info.weight_bytes
    engine.reset_router_stats()
    new = engine.generate(ids[:8], max_new_tokens=4, ignore_eos=True)
    assert len(new) == 4 and sum(map(sum, engine.router_stats().decode)) > 0


def test_q8_0_blocks_recover_a_q8_0_tensor_exactly() -> None:
    gguf = pytest.importorskip("gguf")
    w = torch.randn(6, 64)
    kind = gguf.GGMLQuantizationType.Q8_0
    deq = torch.from_numpy(gguf.quants.dequantize(gguf.quants.quantize(w.numpy(), kind), kind))
    q, d = q8_0_blocks(deq)
    assert torch.equal((q.view(6, 2, 32).float() * d[..., None]).view(6, 64), deq)
    q, s = per_channel(w)
    assert q.dtype == torch.int8 and (q.float() * s[:, None] - w).abs().max() <= s.max() / 2 + 1e-6


def test_unknown_quant_is_refused(q8_file: Path) -> None:
    with pytest.raises(EngineError, match="int8, q8_0"):
        load_model(q8_file, quant="int4")


@pytest.mark.slow
def test_compiled_decode_reads_the_int8_weights(q8_file: Path) -> None:
    import shutil

    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("torch.compile on CPU needs a C compiler")
    for quant in ("q8_0", "int8"):
        engine = load_model(q8_file, quant=quant)
        ids = engine.tokenizer.encode(PROMPT)
        eager = engine.generate(ids, 12, ignore_eos=True)
        engine.compile_decode(length=64)
        engine.reset_router_stats()
        compiled = engine.generate(ids, 12, ignore_eos=True)
        decode = engine.router_stats().decode
        assert sum(map(sum, decode)) == 11 * 2 * len(decode)  # 11 steps × top-2 × layers
        if quant == "q8_0":  # same numbers; int8's eager matmuls round activations to bf16
            assert compiled == eager
