"""Engine vs transformers `generate()` on the same tiny Mixtral-like weights (a benchmark, not a test).

Config (shared/notes/performance-anchors.md §5.3): hidden 512, 8 experts top-2, ffn 1408,
8 layers, 8 heads / 2 KV heads, 32k vocab. Batch 1, an 8-token prompt, 64 new tokens, greedy,
fp32 and bf16, both in this one process. Prints tok/s end to end (prefill + decode) for
transformers and the engine, their ratio, the engine's decode-only rate, active weight bytes per
token, and achieved GB/s as a share of the memory bandwidth measured by a 1-second copy probe.
With `--compile` (and a C compiler on PATH) it also times a `torch.compile`d decode step,
compile time reported apart.

    python benchmarks/engine_vs_transformers.py [--repeats 3] [--threads N] [--compile]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

NEW_TOKENS, PROMPT_LEN = 64, 8


def bandwidth_probe(seconds: float = 1.0, mib: int = 256) -> float:
    """GB/s of a large tensor copy (read + write bytes), best of the runs that fit in `seconds`."""
    src = torch.randn(mib * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        dst.copy_(src)
        best = max(best, 2 * src.numel() * 4 / (time.perf_counter() - start) / 1e9)
    return best


def build_checkpoint(folder: Path) -> Any:
    """Random-init tiny Mixtral saved with save_pretrained, plus a minimal tokenizer."""
    import transformers
    from tokenizers import Tokenizer, models

    torch.manual_seed(0)
    config = transformers.MixtralConfig(
        hidden_size=512, intermediate_size=1408, num_hidden_layers=8, num_attention_heads=8,
        num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2, vocab_size=32000,
        max_position_embeddings=4096, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    model = transformers.MixtralForCausalLM(config).eval()
    model.save_pretrained(folder)
    Tokenizer(models.WordLevel({"<unk>": 0, "<s>": 1, "</s>": 2}, unk_token="<unk>")).save(
        str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    return model


def time_hf(model: Any, prompt: torch.Tensor, repeats: int) -> float:
    """Median end-to-end tok/s of transformers generate (64 new tokens, greedy)."""
    kwargs = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False,
              "pad_token_id": 0}
    with torch.inference_mode():
        model.generate(prompt, **kwargs)  # warm-up
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = model.generate(prompt, **kwargs)
            rates.append((out.shape[1] - prompt.shape[1]) / (time.perf_counter() - start))
    return statistics.median(rates)


def time_engine(engine: Any, prompt: list[int], repeats: int) -> tuple[float, float]:
    """Median (end-to-end tok/s, decode-only tok/s) of the engine, 64 new tokens, greedy."""
    engine.generate(prompt, NEW_TOKENS, ignore_eos=True)  # warm-up (allocates the cache)
    e2e, decode = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = engine.generate(prompt, NEW_TOKENS, ignore_eos=True)
        e2e.append(len(out) / (time.perf_counter() - start))
        decode.append(engine.last_stats.decode_tokens_per_s)
    return statistics.median(e2e), statistics.median(decode)


def same_tokens(hf: Any, engine: Any, prompt: list[int]) -> int:
    """How many of the 64 greedy tokens agree (fp32 should be all of them)."""
    with torch.inference_mode():
        ref = hf.generate(torch.tensor([prompt]), max_new_tokens=NEW_TOKENS,
                          min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
    ours = engine.generate(prompt, NEW_TOKENS, ignore_eos=True)
    return sum(a == b for a, b in zip(ref[0, len(prompt):].tolist(), ours))


def run(dtype: str, folder: Path, hf_fp32: Any, args: argparse.Namespace, bandwidth: float) -> dict:
    from moebench.engine import load_model

    engine = load_model(folder, dtype=dtype, threads=0)  # same threads as transformers
    hf = hf_fp32 if dtype == "float32" else _cast(hf_fp32, torch.bfloat16)
    prompt = torch.randint(3, 32000, (1, PROMPT_LEN), generator=torch.Generator().manual_seed(1))
    hf_rate = time_hf(hf, prompt, args.repeats)
    e2e, decode = time_engine(engine, prompt[0].tolist(), args.repeats)
    active = engine.model.active_bytes_per_token()
    row = {"dtype": dtype, "hf_tok_s": hf_rate, "engine_tok_s": e2e, "ratio": e2e / hf_rate,
           "engine_decode_tok_s": decode, "active_MB": active / 1e6,
           "GB_s": active * decode / 1e9, "pct_bw": 100 * active * decode / 1e9 / bandwidth,
           "same_tokens": same_tokens(hf, engine, prompt[0].tolist())}
    if args.compile:
        row |= _compiled(engine, prompt[0].tolist(), args.repeats, active, bandwidth)
    return row


def _compiled(engine: Any, prompt: list[int], repeats: int, active: int, bandwidth: float) -> dict:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        return {"compiled": "skipped: no C compiler"}
    compile_s = engine.compile_decode(length=128)  # prompt 8 + 64 new fit; masks stay short
    _, decode = time_engine(engine, prompt, repeats)
    return {"compile_s": compile_s, "compiled_decode_tok_s": decode,
            "compiled_pct_bw": 100 * active * decode / 1e9 / bandwidth}


def _cast(model: Any, dtype: torch.dtype) -> Any:
    import copy

    return copy.deepcopy(model).to(dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--compile", action="store_true", help="also time a torch.compile'd decode")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bandwidth = bandwidth_probe()
    print(f"threads {args.threads}, measured copy bandwidth {bandwidth:.1f} GB/s")
    with tempfile.TemporaryDirectory() as tmp:
        hf = build_checkpoint(Path(tmp))
        rows = [run(d, Path(tmp), hf, args, bandwidth) for d in args.dtypes.split(",")]
    _print(rows)


COLUMNS = [("dtype", "dtype", "{}"), ("hf_tok_s", "HF tok/s", "{:.1f}"),
           ("engine_tok_s", "engine tok/s", "{:.1f}"), ("ratio", "ratio", "{:.2f}x"),
           ("engine_decode_tok_s", "decode tok/s", "{:.1f}"), ("active_MB", "active MB/tok", "{:.1f}"),
           ("GB_s", "GB/s", "{:.1f}"), ("pct_bw", "% bw", "{:.0f}%"),
           ("same_tokens", "same/64", "{}"), ("compile_s", "compile s", "{:.1f}"),
           ("compiled_decode_tok_s", "compiled tok/s", "{:.1f}"),
           ("compiled_pct_bw", "compiled % bw", "{:.0f}%")]


def _print(rows: list[dict]) -> None:
    """One aligned line per dtype; columns absent from every row (no --compile) are left out."""
    cols = [c for c in COLUMNS if any(c[0] in row for row in rows)]
    cells = [[title for _, title, _ in cols]]
    cells += [[fmt.format(row[key]) if key in row else "-" for key, _, fmt in cols] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    for row in rows:
        if "compiled" in row:
            print(f"{row['dtype']}: compiled decode {row['compiled']}")


if __name__ == "__main__":
    main()
