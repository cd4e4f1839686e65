"""GQA attention variants: q/k norm (Qwen3-MoE, OLMoE), attention sinks (GPT-OSS), per-layer window.

Legend: B batch, T new tokens, S cached positions, H query heads, G key/value heads,
R = H / G query heads per key/value head, D head dim.

`VariantAttention` extends `attention.Attention` (same fused `wqkv`, `wo`, KV cache and RoPE)
with the pieces some families add between projection and softmax:
- q/k RMSNorm, either per head over D (Qwen3-MoE: `q_norm [D]`, `k_norm [D]`) or over the whole
  flat projection before the head split (OLMoE: `q_norm [H·D]`, `k_norm [G·D]`), always before RoPE;
  OLMoE then clamps q, k and v to ±clip_qkv;
- a sliding window chosen per layer (`ModelArgs.layer_types`: GPT-OSS alternates sliding/full);
- attention sinks: a learned logit per head appended to every softmax row, then dropped, so a
  head can attend to "nothing" (GPT-OSS; see `attend_with_sinks`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from moebench.engine.attention import Attention, attend
from moebench.engine.config import ModelArgs
from moebench.engine.norm import Norm
from moebench.engine.rope import apply_rope
from moebench.errors import EngineError

QK_NORMS = ("head", "full")


def visible(start: int, t: int, s: int, window: int | None, device: torch.device) -> Tensor:
    """Which keys each query may see, `[T, S]` bool: causal, and within `window` when given."""
    query = torch.arange(start, start + t, device=device)[:, None]  # [T, 1]
    key = torch.arange(s, device=device)[None, :]  # [1, S]
    mask = key <= query
    if window is not None:
        mask &= key > query - window
    return mask


def attend_with_sinks(q: Tensor, k: Tensor, v: Tensor, start: int, scale: float,
                      window: int | None, sinks: Tensor) -> Tensor:
    """Causal attention whose softmax rows also hold a per-head sink logit `sinks [H]`.

    `q [B, H, T, D]` over `k, v [B, G, S, D]` → `[B, H, T, Dv]`. The sink column takes part in
    the normalisation but has no value, so rows sum to less than one (as transformers'
    GPT-OSS eager attention; the sink is not scaled).
    """
    b, h, t, _ = q.shape
    g, s = k.shape[1], k.shape[2]
    q = q.unflatten(1, (g, h // g))  # [B, G, R, T, D]: query heads sharing a key head
    scores = (q @ k[:, :, None].transpose(-1, -2)) * scale  # [B, G, R, T, S]
    mask = visible(start, t, s, window, q.device)
    scores = scores.masked_fill(~mask, float("-inf"))
    sink = sinks.to(scores.dtype).view(1, g, h // g, 1, 1).expand(b, -1, -1, t, 1)  # [B,G,R,T,1]
    probs = torch.cat((scores, sink), dim=-1).softmax(dim=-1)[..., :-1]  # [B, G, R, T, S]
    return (probs @ v[:, :, None]).flatten(1, 2)  # [B, H, T, Dv]


class VariantAttention(Attention):
    """`Attention` plus optional q/k norm, attention sinks and a per-layer sliding window."""

    def __init__(self, args: ModelArgs, layer: int) -> None:
        super().__init__(args)
        self.window = args.window(layer)
        self.qk_norm = args.qk_norm
        if args.qk_norm is not None:
            if args.qk_norm not in QK_NORMS:
                raise EngineError(f"qk_norm '{args.qk_norm}' is unknown — known: "
                                  f"{', '.join(QK_NORMS)}")
            per_head = args.qk_norm == "head"
            q_dim = self.head_dim if per_head else self.n_heads * self.head_dim
            k_dim = self.head_dim if per_head else self.n_kv * self.head_dim
            self.q_norm = Norm(q_dim, args.norm_eps)
            self.k_norm = Norm(k_dim, args.norm_eps)
        self.sinks = nn.Parameter(torch.empty(self.n_heads)) if args.attn_sinks else None  # [H]

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], start: int) -> Tensor:
        b, t, _ = x.shape
        kv_size = self.n_kv * self.head_dim
        q, k, v = self.wqkv(x).split([self.n_heads * self.head_dim, kv_size, kv_size], dim=-1)
        if self.qk_norm == "full":  # OLMoE: over the flat [B, T, H·D] / [B, T, G·D]
            q, k = self.q_norm(q), self.k_norm(k)
        if self.clip is not None:
            q, k, v = (y.clamp(-self.clip, self.clip) for y in (q, k, v))
        q = q.view(b, t, self.n_heads, self.head_dim)  # [B, T, H, D]
        k = k.view(b, t, self.n_kv, self.head_dim)  # [B, T, G, D]
        if self.qk_norm == "head":  # Qwen3-MoE: over each head's D
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)  # [B, H, T, D], [B, G, T, D]
        v = v.view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, *rope, self.interleaved), apply_rope(k, *rope, self.interleaved)
        assert self.cache is not None, "call Transformer.setup_cache() first"
        k, v = self.cache.update(start, k, v)
        if self.sinks is None:
            y = attend(q, k, v, start, self.scale, self.window)  # [B, H, T, D]
        else:
            y = attend_with_sinks(q, k, v, start, self.scale, self.window, self.sinks)
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))
