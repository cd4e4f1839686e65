"""The MoE roofline: an upper bound on generation tok/s from memory bandwidth.

Decoding one token reads every *active* weight once: all attention, norm, router and shared
expert weights, only top-k of the E routed experts, one row of the embedding, and the output
head. So `tok/s ≤ bandwidth / bytes_per_token` (notes: performance-anchors §1). KV-cache reads
and compute are left out, so the real ceiling is lower still: this is a bound, not a forecast.

Bytes per token come from, best first:
* the engine's own count (`active_bytes_per_token`, torch backend);
* the GGUF tensor list of `/api/show` (each tensor at its own quantisation; `*_exps` expert
  tensors scaled by top-k / E);
* the architecture numbers in `/api/show` `model_info` (block count, widths, expert counts)
  at the bits per weight of the model's quantisation level.
Bandwidth is a short copy benchmark (bytes read + written per second): host memory with numpy
on CPU threads, `Tensor.copy_` on a CUDA device. A model split between GPU and CPU memory
takes `bytes × share / B_gpu + bytes × (1 − share) / B_cpu` seconds per token.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: host copy benchmark buffer (well past any L3 cache) and tries (the best one counts)
_COPY_BYTES = 128 * 2**20
_TRIES = 5


@functools.cache
def _quant_sizes() -> dict[str, tuple[int, int]]:
    """GGML type name → (weights per block, bytes per block), from gguf-py."""
    from gguf.constants import GGML_QUANT_SIZES

    return {t.name: sizes for t, sizes in GGML_QUANT_SIZES.items()}


def bits_per_weight(kind: str | None) -> float | None:
    """Bits per weight of a GGML type or Ollama quantisation level (`Q4_K_M` → Q4_K's 4.5)."""
    if not kind:
        return None
    name = str(kind).upper().replace("-", "_")
    sizes = _quant_sizes()
    for candidate in (name, name.rsplit("_", 1)[0]):
        if candidate in sizes:
            per_block, block_bytes = sizes[candidate]
            return 8.0 * block_bytes / per_block
    return None


def bytes_from_tensors(tensors: Sequence[Mapping[str, Any]], experts: int | None,
                       top_k: int | None) -> int | None:
    """Active bytes per token from a GGUF tensor list (`name`, `type`, `shape`)."""
    if not any(str(t.get("name", "")).startswith("blk.") for t in tensors):
        return None  # no per-layer tensors listed: nothing to count
    share = (top_k / experts) if experts and top_k else 1.0
    has_output = any(t.get("name") == "output.weight" for t in tensors)
    total = 0.0
    for tensor in tensors:
        name, shape = str(tensor.get("name", "")), list(tensor.get("shape") or [])
        bits = bits_per_weight(str(tensor.get("type", "")))
        if bits is None or not shape:
            return None
        n = 1
        for d in shape:
            n *= int(d)
        if name == "token_embd.weight" and has_output:
            n = int(shape[0])  # one row is looked up; the head is its own tensor
        elif "_exps" in name:
            n = int(n * share)
        total += n * bits / 8
    return int(total)


def bytes_from_model_info(info: Mapping[str, Any], quantization: str | None) -> int | None:
    """Active bytes per token from `/api/show` architecture keys (None when some are missing)."""
    arch = str(info.get("general.architecture") or "")
    total = info.get("general.parameter_count")
    bits = bits_per_weight(quantization)
    if not arch or not total or bits is None:
        return None
    experts = int(info.get(f"{arch}.expert_count") or 0)
    if not experts:
        return int(float(total) * bits / 8)  # dense: every weight is read
    top_k = int(info.get(f"{arch}.expert_used_count") or 0)
    layers = int(info.get(f"{arch}.block_count") or 0)
    dense = int(info.get(f"{arch}.leading_dense_block_count") or 0)
    hidden = int(info.get(f"{arch}.embedding_length") or 0)
    ffn = int(info.get(f"{arch}.expert_feed_forward_length") or 0)
    if not (top_k and layers and hidden and ffn):
        return None
    routed = (layers - dense) * experts * 3 * hidden * ffn  # SwiGLU: gate, up, down
    active = float(total) - routed * (1 - top_k / experts)
    return int(active * bits / 8)


def copy_bandwidth_cpu() -> float:
    """Host memory bandwidth in bytes/s: the best of a few threaded numpy copies."""
    return _cpu_bandwidth()


@functools.cache
def _cpu_bandwidth() -> float:
    import numpy as np

    src = np.ones(_COPY_BYTES // 8, dtype=np.float64)
    dst = np.zeros_like(src)
    parts = max(1, min(os.cpu_count() or 1, 8))
    pairs = list(zip(np.array_split(dst, parts), np.array_split(src, parts)))
    best = float("inf")
    with ThreadPoolExecutor(parts) as pool:
        for _ in range(_TRIES):
            start = time.perf_counter()
            list(pool.map(lambda p: np.copyto(p[0], p[1]), pairs))  # numpy drops the GIL
            best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


@functools.cache
def copy_bandwidth_cuda(device: str = "cuda") -> float | None:
    """Device memory bandwidth in bytes/s from `Tensor.copy_`, or None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    src = torch.ones(_COPY_BYTES * 4, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize(device)
    best = float("inf")
    for _ in range(_TRIES):
        start = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() / best


def bound_tok_s(bytes_per_token: int | None, gpu_share: float | None, cpu_bw: float | None,
                gpu_bw: float | None) -> float | None:
    """Roofline tok/s for a model `gpu_share` of which sits in GPU memory."""
    if not bytes_per_token or bytes_per_token <= 0:
        return None
    share = gpu_share or 0.0
    seconds = 0.0
    for part, bandwidth in ((share, gpu_bw), (1.0 - share, cpu_bw)):
        if part > 0:
            if not bandwidth:
                return None
            seconds += bytes_per_token * part / bandwidth
    return 1.0 / seconds if seconds > 0 else None
