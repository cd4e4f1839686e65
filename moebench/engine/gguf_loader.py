"""`load_gguf`: a GGUF file (llama.cpp- or Ollama-converted, any quantisation) → an Engine.

Steps: open the file memory-mapped (`gguf_file`), rebuild the family's config.json from the
`<arch>.*` keys (`gguf_config`) and read it with the family's own `read_config`, present the
tensors under HF names (`gguf_weights`), check memory for the *dequantised* size before any
tensor is dequantised, then let the family's weight map read them (each expert dequantised
on its own, straight into its slot of the stacked expert tensor) and build the tokenizer
from the metadata (`gguf_tokenizer`). Router telemetry is the engine's, as for safetensors.
"""

from __future__ import annotations

import time
from pathlib import Path

from moebench.engine.families import get_family
from moebench.engine.gguf_config import hf_config
from moebench.engine.gguf_file import GGUFFile
from moebench.engine.gguf_tokenizer import from_gguf
from moebench.engine.gguf_weights import GGUFCheckpoint, virtual_tensors
from moebench.engine.runtime import (MEMORY_MARGIN, Engine, _device, _dtype, build_engine,
                                     check_memory)
from moebench.errors import EngineError


def load_gguf(path: Path, dtype: str = "float32", device: str = "cpu", *,
              available_bytes: int | None = None, threads: int | None = None,
              name: str | None = None) -> Engine:
    """Load the MoE in GGUF file `path`, dequantised to `dtype` on `device`.

    `name` labels errors (e.g. the Ollama model name of a blob). Raises EngineError (not a GGUF
    file, unsupported architecture or quantisation, missing keys or tensors), OutOfMemoryRisk.
    """
    start = time.perf_counter()
    if not path.is_file():
        raise EngineError(f"GGUF file {path} does not exist — give a .gguf file or ollama:NAME")
    torch_dtype, torch_device = _dtype(dtype), _device(device)
    gguf = GGUFFile(path)
    family_name, cfg = hf_config(gguf)
    family = get_family(family_name)
    args = family.read_config(cfg)
    ckpt = GGUFCheckpoint(gguf, virtual_tensors(gguf, family_name, cfg), torch_dtype, torch_device)
    needed = int(ckpt.numel() * torch_dtype.itemsize * MEMORY_MARGIN)
    check_memory(needed, torch_device, available_bytes, name or path.name, dtype)
    tokenizer = from_gguf(gguf.meta)
    eos = tuple(dict.fromkeys([*args.eos_ids, *tokenizer.eos_ids()]))
    return build_engine(args, family.load_weights, ckpt, tokenizer, path, eos, dtype, threads,
                        start, weights_format="gguf", file_type=gguf.file_type(),
                        bits_per_weight=round(gguf.bits_per_weight(), 2),
                        type_mix=describe_mix(gguf.type_mix()))


def describe_mix(mix: dict[str, float]) -> str:
    """`Q4_K 71%, Q6_K 25%, F32 4%` (types under 0.5% left out)."""
    return ", ".join(f"{name} {share:.0%}" for name, share in mix.items() if share >= 0.005)
