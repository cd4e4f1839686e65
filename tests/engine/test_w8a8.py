"""`quant="w8a8"` (int8 weights and activations, fbgemm) on a Q8_0 GGUF: logits against the
dequantised engine as `test_int8.py` measures them, per-token activation scales in a prefill,
fbgemm's saturation probe (`reduce_range`), prefill/decode/telemetry paths and the compiled
decode refusal. The figures are printed with `-s`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("gguf")
if "fbgemm" not in torch.backends.quantized.supported_engines:
    pytest.skip("w8a8 needs torch's fbgemm kernels (x86)", allow_module_level=True)

from tiny_models import PROMPT, logits

from moebench.engine import load_model, w8a8
from moebench.errors import EngineError


def test_w8a8_tracks_the_dequantised_q8_0_model(q8_file: Path) -> None:
    ref_engine = load_model(q8_file)
    ids = ref_engine.tokenizer.encode(PROMPT)
    ids += ref_engine.generate(ids, max_new_tokens=64, ignore_eos=True)
    ref = logits(ref_engine, ids)
    engine = load_model(q8_file, dtype="w8a8")  # the CLI's spelling
    ours = logits(engine, ids)
    per_position = (ours - ref).abs().amax(-1)  # [T]
    diff, span = per_position.max().item(), ref.abs().max().item()
    agree = (ours.argmax(-1) == ref.argmax(-1)).float().mean().item()
    print(f"\nQ8_0 as w8a8 (reduce_range={w8a8.needs_reduce_range()}): max |Δlogit| {diff:.2e}, "
          f"median per position {per_position.median():.2e} (logits within ±{span:.1f}), "
          f"top-1 agreement {agree:.1%} over {len(ids)} positions, weights "
          f"{engine.info.weight_bytes / ref_engine.info.weight_bytes:.0%} of fp32")
    assert agree >= 0.95  # measured 97.9% (one token at a time: 98.9%)
    assert diff < 0.1 * span  # measured 0.075 of ±2.8: no position far off
    assert per_position.median().item() < 0.025 * span  # measured 0.041 of ±2.8
    assert engine.info.quant == "w8a8" and engine.info.dtype == "float32"
    assert engine.info.weight_bytes < 0.4 * ref_engine.info.weight_bytes  # int8 + scales


def test_w8a8_generates_and_counts_routes(q8_file: Path) -> None:
    engine = load_model(q8_file, quant="w8a8")
    ids = engine.tokenizer.encode(PROMPT)  # a many-token prefill: the grouped expert path
    engine.reset_router_stats()
    new = engine.generate(ids, max_new_tokens=6, ignore_eos=True)
    stats = engine.router_stats()
    layers = len(stats.decode)
    assert len(new) == 6
    assert sum(map(sum, stats.prefill)) == len(ids) * 2 * layers  # top-2 per token and layer
    assert sum(map(sum, stats.decode)) == 5 * 2 * layers
    assert engine.model.active_bytes_per_token() < engine.info.weight_bytes


def test_prefill_rows_get_their_own_activation_scale() -> None:
    """A row 1000× smaller than its neighbour keeps its precision (per-row scaling)."""
    weight = torch.randn(64, 96)
    packed, nbytes = w8a8.pack(weight)
    assert nbytes == 64 * 96 + 64 * 4
    x = torch.randn(2, 96) * torch.tensor([[1.0], [1e-3]])  # [2, K]
    exact = x @ weight.T
    out = w8a8.matmul(x, packed)  # [2, N]
    for row in range(2):
        err = (out[row] - exact[row]).abs().max() / exact[row].abs().max()
        assert err < 0.03, f"row {row}: relative error {err:.3f}"
    alone = w8a8.matmul(x[1:], packed)[0]  # decode's path: the row's own asymmetric range
    assert (alone - out[1]).abs().max() < 0.03 * exact[1].abs().max()


_PROBE = ("import torch; from moebench.engine import w8a8; rr = w8a8.needs_reduce_range(); "
          "p, _ = w8a8.pack(torch.ones(8, 256)); y = w8a8.matmul(torch.ones(1, 256), p); "
          "print(rr, round(y[0, 0].item()))")


@pytest.mark.parametrize("isa", ["", "AVX2"])
def test_reduce_range_is_chosen_so_fbgemm_never_saturates(isa: str) -> None:
    """fbgemm without VNNI (forced here with FBGEMM_ENABLE_INSTRUCTIONS=AVX2) saturates
    full-range u8 activations; the probe must then pick reduce_range and stay exact."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    if isa:
        env["FBGEMM_ENABLE_INSTRUCTIONS"] = isa
    run = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, timeout=120)
    reduce_range, value = run.stdout.split()
    assert value == "256", run.stdout + run.stderr  # the all-ones product, unsaturated
    if isa == "AVX2":
        assert reduce_range == "True"
    elif torch.cpu._is_vnni_supported():
        assert reduce_range == "False"  # VNNI: full 8-bit activations are safe


def test_compile_decode_refuses_w8a8(q8_file: Path) -> None:
    engine = load_model(q8_file, quant="w8a8")
    from moebench.engine.compiled import CompiledDecoder  # what compile_decode builds

    with pytest.raises(EngineError, match="quant='int8' or 'q8_0'"):
        CompiledDecoder(engine.model, 64)
    assert engine.compiled is None
    assert len(engine.generate([1, 2, 3], max_new_tokens=2, ignore_eos=True)) == 2


def test_w8a8_off_cpu_is_refused() -> None:
    with pytest.raises(EngineError, match="CPU only"):
        w8a8.check_supported(torch.device("meta"))
