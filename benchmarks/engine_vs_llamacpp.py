"""The engine vs llama.cpp on the same GGUF files (a benchmark, not a test).

Weights: the Mixtral-like model of `engine_vs_transformers.py` (hidden 512, 8 experts top-2,
ffn 1408, 8 layers, 32k vocab) converted by the tests' GGUF converter to F32, F16 and Q8_0.
Batch 1, an 8-token prompt, 64 greedy new tokens, decode tok/s (median of `--repeats`), at each
of `--threads` (default 1 and 2), all in this one process, back to back, so the ratios are
measured under the same load. Engine rows, each labelled with the precision its matmuls run
at: F32 file in fp32; F16 file in fp32 and in fp16 (fp16 weights and activations: llama.cpp's
f16 path also rounds activations to f16); Q8_0 dequantised to fp32 and to fp16; Q8_0 as
`quant="int8"` (per-channel int8 weights, bf16 activations, `_weight_int8pack_mm`), as
`quant="w8a8"` (per-channel int8 weights and per-token int8 activations, fbgemm: the design of
llama.cpp's q8_0 × q8_0 dot) and as `quant="q8_0"` (Q8_0 blocks, fp32), eager and, with
`--compile` and a C compiler, `compile_decode(256)` (compile time reported apart; w8a8 has no
compiled step); with a C compiler also `native_decode()`, the C decode step, for the F32, F16
(fp16) and Q8_0 (`q8_0`: Q8_0 weights everywhere, Q8_0 activations, as llama.cpp) rows. llama.cpp rows only when `llama_cpp` (llama-cpp-python) is importable:
it is an optional extra, never a requirement; without it the engine's figures alone are printed.

    python benchmarks/engine_vs_llamacpp.py [--threads 1,2] [--repeats 3] [--compile]
        [--llama-path VENV/lib/python3.11/site-packages]

`--llama-path` appends a site-packages folder that holds llama_cpp (a venv of its own, so the
project's never depends on it) to `sys.path`, after this environment's own packages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests" / "engine")]

from engine_vs_transformers import NEW_TOKENS, PROMPT_LEN, build_checkpoint  # noqa: E402
from gguf_convert import convert  # noqa: E402

from moebench.engine import load_model  # noqa: E402

#: (label naming the precision, GGUF type, engine dtype, engine quant mode, llama.cpp row)
ENGINE_ROWS = [
    ("F32 fp32", "F32", "float32", None, "F32"),
    ("F16 as fp32", "F16", "float32", None, "F16"),
    ("F16 as fp16", "F16", "float16", None, "F16"),
    ("Q8_0 → fp32", "Q8_0", "float32", None, "Q8_0"),
    ("Q8_0 → fp16", "Q8_0", "float16", None, "Q8_0"),
    ("Q8_0 int8 (bf16 act)", "Q8_0", "float32", "int8", "Q8_0"),
    ("Q8_0 w8a8 (int8 act)", "Q8_0", "float32", "w8a8", "Q8_0"),
    ("Q8_0 q8_0 blocks", "Q8_0", "float32", "q8_0", "Q8_0"),
]
COMPILED = ("F32 fp32", "Q8_0 int8 (bf16 act)", "Q8_0 q8_0 blocks")
#: rows also timed with the C decode step (`Engine.native_decode`, moebench/engine/native/)
NATIVE = ("F32 fp32", "F16 as fp16", "Q8_0 q8_0 blocks")


def engine_rate(path: Path, dtype: str, quant: str | None, threads: int, repeats: int,
                mode: str) -> tuple[float, float | None, list[int]]:
    """(median decode tok/s, compile/build seconds or None, the greedy tokens); `mode`:
    eager, compiled (`compile_decode(256)`) or native (`native_decode()`)."""
    torch.set_num_threads(threads)
    engine = load_model(path, dtype, threads=threads, quant=quant)
    compile_s = (engine.compile_decode(256) if mode == "compiled"
                 else engine.native_decode() if mode == "native" else None)
    ids = list(range(3, 3 + PROMPT_LEN))
    rates, tokens = [], []
    for _ in range(repeats):
        tokens = engine.generate(ids, max_new_tokens=NEW_TOKENS, ignore_eos=True)
        rates.append(engine.last_stats.decode_tokens_per_s)
    return statistics.median(rates), compile_s, tokens


def llama_rate(path: Path, threads: int, repeats: int) -> tuple[float | None, str]:
    """llama.cpp's decode tok/s on `path` (None and the reason when it cannot run), measured in
    a child process: llama.cpp's repacked-weight kernels (AMX on some Xeon VMs) can crash the
    process, and then the file is measured again without them (`use_extra_bufts=False`)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return None, "llama_cpp not importable"
    notes = []
    for extra in (True, False):
        done = subprocess.run([sys.executable, __file__, "--llama-worker", str(path),
                               str(threads), str(repeats), str(int(extra)), *sys.path],
                              capture_output=True, text=True)
        if done.returncode == 0:
            return float(done.stdout.split()[-1]), "; ".join(notes)
        last = (done.stderr.strip().splitlines() or ["no message"])[-1][:80]
        last = f"exit {done.returncode}: {last}"  # -11: killed by SIGSEGV
        notes.append(f"{path.name}: llama.cpp with its repacked weights failed ({last}); "
                     "measured without extra buffer types")
    return None, f"llama.cpp could not run {path.name}: {last[:120]}"


def llama_worker(path: str, threads: int, repeats: int, extra_bufts: bool) -> float:
    """The child of `llama_rate`: median decode tok/s of `path`."""
    import llama_cpp.llama
    from llama_cpp import Llama

    low_level = llama_cpp.llama.llama_cpp  # the ctypes module Llama() takes its defaults from
    defaults = low_level.llama_model_default_params

    def params() -> Any:
        p = defaults()
        p.use_extra_bufts = extra_bufts
        return p

    low_level.llama_model_default_params = params
    llm = Llama(model_path=path, n_threads=threads, n_ctx=256, verbose=False)
    ids, rates = list(range(3, 3 + PROMPT_LEN)), []
    for _ in range(repeats):
        llm.reset()
        first = 0.0
        for n, _token in enumerate(llm.generate(ids, temp=0.0, top_k=1), 1):
            if n == 1:
                first = time.perf_counter()
            if n == NEW_TOKENS:
                break
        rates.append((NEW_TOKENS - 1) / (time.perf_counter() - first))
    return statistics.median(rates)


def run(folder: Path, tmp: Path, options: argparse.Namespace) -> list[dict[str, Any]]:
    """Every row at every thread count, back to back."""
    files = {q: convert(folder, tmp / f"m-{q}.gguf", q) or tmp / f"m-{q}.gguf"
             for q in ("F32", "F16", "Q8_0")}
    has_cc = bool(shutil.which("cc") or shutil.which("gcc"))
    can_compile = options.compile and has_cc
    rows = []
    for threads in options.threads:
        llama = {q: llama_rate(p, threads, options.repeats) for q, p in files.items()}
        reference = None
        for label, qtype, dtype, quant, against in ENGINE_ROWS:
            modes = (["eager"] + (["compiled"] if can_compile and label in COMPILED else [])
                     + (["native"] if has_cc and label in NATIVE else []))
            for mode in modes:
                rate, compile_s, tokens = engine_rate(files[qtype], dtype, quant, threads,
                                                      options.repeats, mode)
                reference = reference or tokens  # the F32 eager tokens
                same = sum(a == b for a, b in zip(tokens, reference))
                rows.append({"threads": threads, "engine": f"{label} {mode}", "tok_s": rate,
                             "compile_s": compile_s, "same_tokens": same,
                             "llama": llama[against][0], "llama_row": against,
                             "why": llama[against][1]})
                print_row(rows[-1])  # as it comes: a long run shows progress
    return rows


HEADER = (f"{'thr':>3} {'engine':30} {'tok/s':>7} {'compile s':>9} {'=F32 tok':>8} "
          f"{'llama.cpp':>14} {'ratio':>6} {'vs F32 eager':>12}")


def print_row(r: dict[str, Any]) -> None:
    llama = (f"{r['llama_row']} {r['llama']:.1f}" if r["llama"] is not None else "—")
    ratio = f"{r['tok_s'] / r['llama']:.2f}×" if r["llama"] else "—"
    compile_s = f"{r['compile_s']:.1f}" if r["compile_s"] is not None else ""
    print(f"{r['threads']:>3} {r['engine']:30} {r['tok_s']:7.1f} {compile_s:>9} "
          f"{r['same_tokens']:>5}/{NEW_TOKENS} {llama:>14} {ratio:>6} "
          f"{r.get('vs_f32', 1.0):11.2f}×", flush=True)


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The table again at the end, with each row's ratio to F32 eager at its thread count."""
    print("\n" + HEADER)
    for r in rows:
        base = next(b for b in rows if b["threads"] == r["threads"])
        print_row({**r, "vs_f32": r["tok_s"] / base["tok_s"]})
    reasons = {r["why"] for r in rows if r["why"]}
    for why in sorted(reasons):
        print(f"llama.cpp: {why}")


def pad_vocab(folder: Path, size: int = 32000) -> None:
    """Give the checkpoint's 3-token tokenizer one token per embedding row: llama.cpp refuses a
    file whose token list is shorter than `token_embd` (prompts are token ids here anyway)."""
    path = folder / "tokenizer.json"
    data = json.loads(path.read_text())
    vocab = data["model"]["vocab"]
    vocab.update({"a": len(vocab), "b": len(vocab) + 1, "ab": len(vocab) + 2})
    vocab.update({f"<t{i}>": i for i in range(len(vocab), size)})
    data["model"]["merges"] = ["a b"]  # llama.cpp's gpt2 vocabulary needs merges
    path.write_text(json.dumps(data))


def main() -> None:
    if sys.argv[1:2] == ["--llama-worker"]:
        path, threads, repeats, extra, *paths = sys.argv[2:]
        sys.path[:] = paths
        print(llama_worker(path, int(threads), int(repeats), extra == "1"))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true",
                        help="also time compile_decode(256) for F32 and the int8 modes")
    parser.add_argument("--llama-path", type=Path, default=None,
                        help="a site-packages folder holding llama_cpp, appended to sys.path")
    options = parser.parse_args()
    if options.llama_path is not None:
        sys.path.append(str(options.llama_path))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "hf"
        build_checkpoint(folder)
        pad_vocab(folder)
        print(f"load average before: {_load()}\n{HEADER}")
        rows = run(folder, Path(tmp), options)
        print_rows(rows)
        print(f"load average after: {_load()}")


def _load() -> str:
    """The 1/5/15-minute load averages: the machine is shared, so every table carries them."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
