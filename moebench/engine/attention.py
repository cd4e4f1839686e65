"""Grouped-query attention with RoPE and a static KV cache (Mixtral, DBRX, and most families).

Legend: B batch, T new tokens, S cached positions, H query heads, G key/value heads, D head dim.
`KVCache` is preallocated once per generation length and written in place; attention reads
the first `start + T` positions through views (no per-step allocation of the cache).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moebench.engine.config import ModelArgs
from moebench.engine.rope import apply_rope


class KVCache:
    """Keys `[B, G, S, Dk]` and values `[B, G, S, Dv]` for one layer, written at `start`."""

    def __init__(self, heads: int, length: int, key_dim: int, value_dim: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        self.k = torch.zeros(1, heads, length, key_dim, dtype=dtype, device=device)
        self.v = torch.zeros(1, heads, length, value_dim, dtype=dtype, device=device)

    @property
    def length(self) -> int:
        """Positions the cache can hold."""
        return self.k.shape[2]

    def keep(self, old: KVCache | None) -> KVCache:
        """Copy what `old` (a shorter cache of the same layer) holds into this one."""
        if old is not None:
            n = min(old.length, self.length)
            self.k[:, :, :n] = old.k[:, :, :n]
            self.v[:, :, :n] = old.v[:, :, :n]
        return self

    def update(self, start: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store `k, v [B, G, T, D]` at positions [start, start+T); return all keys/values so far."""
        end = start + k.shape[2]
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]


def attend(q: Tensor, k: Tensor, v: Tensor, start: int, scale: float,
           window: int | None = None) -> Tensor:
    """Causal attention of `q [B, H, T, D]` over `k, v [B, G, S, D]` (S = start + T) → `[B, H, T, Dv]`.

    `window`: each query sees at most the last `window` keys including itself (sliding window).
    """
    t, s = q.shape[2], k.shape[2]
    gqa = q.shape[1] != k.shape[1]
    if t == 1:  # decode: every cached key is visible (bar the sliding window)
        if window is not None and s > window:
            k, v = k[:, :, s - window:], v[:, :, s - window:]
        return F.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=gqa)
    if start == 0 and (window is None or window >= s):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, enable_gqa=gqa)
    query = torch.arange(start, start + t, device=q.device)[:, None]  # [T, 1]
    key = torch.arange(s, device=q.device)[None, :]  # [1, S]
    mask = key <= query
    if window is not None:
        mask &= key > query - window
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=gqa)


class Attention(nn.Module):
    """GQA with a fused qkv projection, optional qkv clipping (DBRX) and sliding window."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = args.n_heads, args.n_kv_heads, args.head_dim
        self.wqkv = nn.Linear(args.dim, (self.n_heads + 2 * self.n_kv) * self.head_dim,
                              bias=args.qkv_bias)
        self.wo = nn.Linear(self.n_heads * self.head_dim, args.dim, bias=args.out_bias)
        self.clip, self.window = args.clip_qkv, args.sliding_window
        self.interleaved = args.rope.interleaved
        self.scale = self.head_dim ** -0.5
        self.cache: KVCache | None = None

    def make_cache(self, length: int, dtype: torch.dtype, device: torch.device) -> None:
        """(Re)allocate this layer's KV cache for `length` positions, keeping its contents."""
        new = KVCache(self.n_kv, length, self.head_dim, self.head_dim, dtype, device)
        self.cache = new.keep(self.cache)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], start: int) -> Tensor:
        b, t, _ = x.shape  # [B, T, H·D]
        qkv = self.wqkv(x)
        if self.clip is not None:
            qkv = qkv.clamp(-self.clip, self.clip)
        kv_size = self.n_kv * self.head_dim
        q, k, v = qkv.split([self.n_heads * self.head_dim, kv_size, kv_size], dim=-1)
        q = q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # [B, H, T, D]
        k = k.view(b, t, self.n_kv, self.head_dim).transpose(1, 2)  # [B, G, T, D]
        v = v.view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, *rope, self.interleaved), apply_rope(k, *rope, self.interleaved)
        assert self.cache is not None, "call Transformer.setup_cache() first"
        k, v = self.cache.update(start, k, v)
        y = attend(q, k, v, start, self.scale, self.window)  # [B, H, T, D]
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))
