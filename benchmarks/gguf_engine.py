"""The engine on GGUF files vs the same weights as safetensors (a benchmark, not a test).

Weights: the Mixtral-like model of `engine_vs_transformers.py` (hidden 512, 8 experts top-2,
ffn 1408, 8 layers, 32k vocab), saved with save_pretrained and converted by the tests' GGUF
converter (`tests/engine/gguf_convert.py`: llama.cpp names, q/k permutation, stacked experts)
to F32, F16, Q8_0 and Q4_0. For each file: load time (parse + dequantise to fp32 + build),
file size and bits/weight, greedy decode tok/s (8-token prompt, 64 new tokens, eager), and
agreement with the safetensors engine: max |Δlogit| and teacher-forced top-1 agreement over
the 72 positions. All in one process, back to back.

    python benchmarks/gguf_engine.py [--threads N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests" / "engine")]

from engine_vs_transformers import NEW_TOKENS, PROMPT_LEN, build_checkpoint  # noqa: E402
from gguf_convert import convert  # noqa: E402

from moebench.engine import load_model  # noqa: E402

QTYPES = ("F32", "F16", "Q8_0", "Q4_0")


def measure(path: Path, reference: torch.Tensor, ids: list[int], repeats: int) -> dict[str, float]:
    """Load time, decode tok/s and agreement with `reference` logits `[T, V]`."""
    start = time.perf_counter()
    engine = load_model(path)
    load_s = time.perf_counter() - start
    rates = []
    for _ in range(repeats):
        engine.generate(ids[:PROMPT_LEN], max_new_tokens=NEW_TOKENS, ignore_eos=True)
        rates.append(engine.last_stats.decode_tokens_per_s)
    with torch.inference_mode():
        logits = engine.model(torch.tensor([ids]), 0)[0]
    return {"load_s": load_s, "tok_s": statistics.median(rates),
            "max_diff": (logits - reference).abs().max().item(),
            "top1": (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "hf"
        build_checkpoint(folder)
        start = time.perf_counter()
        base = load_model(folder, threads=options.threads)
        base_load = time.perf_counter() - start
        ids = list(range(3, 3 + PROMPT_LEN))
        ids += base.generate(ids, max_new_tokens=NEW_TOKENS, ignore_eos=True)
        with torch.inference_mode():
            reference = base.model(torch.tensor([ids]), 0)[0]
        rates = []
        for _ in range(options.repeats):
            base.generate(ids[:PROMPT_LEN], max_new_tokens=NEW_TOKENS, ignore_eos=True)
            rates.append(base.last_stats.decode_tokens_per_s)
        print(f"threads {options.threads}; safetensors fp32: load {base_load:.2f} s, "
              f"decode {statistics.median(rates):.1f} tok/s")
        print(f"{'file':8} {'MiB':>7} {'bits/w':>7} {'load s':>7} {'tok/s':>7} {'max|Δ|':>9} {'top-1':>6}")
        for qtype in QTYPES:
            path = convert(folder, Path(tmp) / f"m-{qtype}.gguf", qtype)
            row = measure(path, reference, ids, options.repeats)
            engine_bits = 8 * path.stat().st_size / sum(p.numel() for p in base.model.parameters())
            print(f"{qtype:8} {path.stat().st_size / 2**20:7.1f} {engine_bits:7.2f} "
                  f"{row['load_s']:7.2f} {row['tok_s']:7.1f} {row['max_diff']:9.4f} "
                  f"{row['top1']:6.1%}")


if __name__ == "__main__":
    main()
