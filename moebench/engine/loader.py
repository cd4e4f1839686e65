"""`load_model`: one entry point for every weight format the engine reads.

An HF checkpoint folder goes to `runtime.load_checkpoint`, a GGUF file (`*.gguf`, or an Ollama
blob, which has no suffix) to `gguf_loader.load_gguf`; both build the same `Engine`. This
module sits above both, so neither imports the other's caller (no import circle).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from moebench.engine import hugepages
from moebench.engine.quantize import QUANT_MODES, quantize_model
from moebench.engine.runtime import Engine, is_gguf_file, load_checkpoint


def load_model(path: str | Path, dtype: str = "float32", device: str = "cpu", *,
               available_bytes: int | None = None, threads: int | None = None,
               quant: str | None = None) -> Engine:
    """Load an HF-format MoE checkpoint folder (config.json + *.safetensors + tokenizer.json),
    or a GGUF file (`*.gguf`, or an Ollama blob: see `gguf_loader.load_gguf`).

    `available_bytes` overrides the free-memory reading (psutil / CUDA) for the OOM check.
    `threads`: torch threads during `generate` (0: leave torch's setting; None: 1 for models
    reading under SMALL_MODEL_BYTES per token on CPU, else 0).
    `quant`: keep the weights as int8 (`quantize.py`: "int8" per-channel everywhere, "q8_0" the
    experts in Q8_0 blocks, "w8a8" per-channel for fbgemm with int8 activations, CPU only);
    `dtype="int8"` / `"q8_0"` / `"w8a8"` (the CLI's `--dtype`) means the same with float32
    activations around the int8 matmuls.
    Raises EngineError (unknown family, missing files), OutOfMemoryRisk (too big).
    """
    if dtype in QUANT_MODES:
        quant, dtype = dtype, "float32"
    if str(path).endswith(".gguf") or is_gguf_file(Path(path).expanduser()):
        from moebench.engine.gguf_loader import load_gguf

        engine = load_gguf(Path(path).expanduser(), dtype, device,
                           available_bytes=available_bytes, threads=threads)
    else:
        engine = load_checkpoint(path, dtype, device, available_bytes=available_bytes,
                                 threads=threads)
    if quant:
        quantize_model(engine.model, quant)
        engine.info = dataclasses.replace(engine.info, quant=quant,
                                          weight_bytes=engine.model.weight_bytes())
    hugepages.adopt(engine.model)  # after any requantisation: the final weights only
    return engine
