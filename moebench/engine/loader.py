"""`load_model`: one entry point for every weight format the engine reads.

An HF checkpoint folder goes to `runtime.load_checkpoint`, a GGUF file (`*.gguf`, or an Ollama
blob, which has no suffix) to `gguf_loader.load_gguf`; both build the same `Engine`. This
module sits above both, so neither imports the other's caller (no import circle).
"""

from __future__ import annotations

from pathlib import Path

from moebench.engine.runtime import Engine, is_gguf_file, load_checkpoint


def load_model(path: str | Path, dtype: str = "float32", device: str = "cpu", *,
               available_bytes: int | None = None, threads: int | None = None) -> Engine:
    """Load an HF-format MoE checkpoint folder (config.json + *.safetensors + tokenizer.json),
    or a GGUF file (`*.gguf`, or an Ollama blob: see `gguf_loader.load_gguf`).

    `available_bytes` overrides the free-memory reading (psutil / CUDA) for the OOM check.
    `threads`: torch threads during `generate` (0: leave torch's setting; None: 1 for models
    reading under SMALL_MODEL_BYTES per token on CPU, else 0).
    Raises EngineError (unknown family, missing files), OutOfMemoryRisk (too big).
    """
    if str(path).endswith(".gguf") or is_gguf_file(Path(path).expanduser()):
        from moebench.engine.gguf_loader import load_gguf

        return load_gguf(Path(path).expanduser(), dtype, device, available_bytes=available_bytes,
                         threads=threads)
    return load_checkpoint(path, dtype, device, available_bytes=available_bytes,
                           threads=threads)
