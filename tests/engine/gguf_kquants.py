"""Q4_K and Q6_K *quantisers* for test fixtures (gguf-py 0.19 can only dequantise them).

Plain round-to-nearest (no llama.cpp search for the best scales), bytes laid out exactly as
`gguf.quants.Q4_K` / `Q6_K.dequantize_blocks` read them, so a Q4_K_M-style file (Q4_K with
some Q6_K tensors) can be written from a tiny checkpoint. Rows must be multiples of 256.
"""

from __future__ import annotations

import numpy as np

QK_K = 256


def _blocks(data: np.ndarray) -> np.ndarray:
    if data.shape[-1] % QK_K:
        raise ValueError(f"K-quants need rows of a multiple of {QK_K} values")
    return np.ascontiguousarray(data, dtype=np.float32).reshape(-1, QK_K)


def _safe(x: np.ndarray) -> np.ndarray:
    return np.where(x == 0, 1.0, x)


def quantize_q4_k(data: np.ndarray) -> np.ndarray:
    """`data [..., K]` → Q4_K bytes `[..., K / 256 * 144]`: d, dmin (f16), 12 packed 6-bit
    scale/min bytes, 128 bytes of 4-bit values; value = d·sc·q − dmin·m per 32."""
    x = _blocks(data).reshape(-1, 8, 32)  # [n, sub-block, 32]
    off = np.maximum(-x.min(-1), 0)  # [n, 8]
    step = (x.max(-1) + off) / 15
    d = (step.max(-1) / 63).astype(np.float16)  # [n]
    dmin = (off.max(-1) / 63).astype(np.float16)
    sc = np.clip(np.round(step / _safe(d.astype(np.float32))[:, None]), 0, 63).astype(np.uint8)
    mn = np.clip(np.round(off / _safe(dmin.astype(np.float32))[:, None]), 0, 63).astype(np.uint8)
    scale = (d.astype(np.float32)[:, None] * sc)[..., None]
    shift = (dmin.astype(np.float32)[:, None] * mn)[..., None]
    q = np.clip(np.round((x + shift) / _safe(scale)), 0, 15).astype(np.uint8)  # [n, 8, 32]
    packed = np.empty((len(x), 12), np.uint8)
    packed[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    packed[:, 4:8] = mn[:, :4] | ((mn[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    qs = (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(len(x), 128)  # low nibble: even sub-block
    out = np.concatenate([d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2),
                          packed, qs], axis=1)
    return out.reshape(*data.shape[:-1], -1)


def quantize_q6_k(data: np.ndarray) -> np.ndarray:
    """`data [..., K]` → Q6_K bytes `[..., K / 256 * 210]`: 128 bytes of low nibbles, 64 of
    high 2-bit pairs, 16 int8 scales (one per 16 values), d (f16); value = d·sc·(u − 32)."""
    x = _blocks(data).reshape(-1, 16, 16)
    step = np.abs(x).max(-1) / 31  # [n, 16]
    d = (np.abs(step).max(-1) / 127).astype(np.float16)
    sc = np.clip(np.round(step / _safe(d.astype(np.float32))[:, None]), -128, 127).astype(np.int8)
    scale = (d.astype(np.float32)[:, None] * sc)[..., None]
    u = (np.clip(np.round(x / _safe(scale)), -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 128)
    lo, hi = u & 0x0F, u >> 4  # [n, half, 128]
    ql = (lo[..., :64] | (lo[..., 64:] << 4)).reshape(len(u), 128)
    parts = hi.reshape(len(u), 2, 4, 32)
    qh = (parts[:, :, 0] | (parts[:, :, 1] << 2) | (parts[:, :, 2] << 4)
          | (parts[:, :, 3] << 6)).reshape(len(u), 64)
    out = np.concatenate([ql, qh, sc.view(np.uint8), d.view(np.uint8).reshape(-1, 2)], axis=1)
    return out.reshape(*data.shape[:-1], -1)
