"""DeepSeek-V2 multi-head latent attention (MLA), following transformers' DeepseekV2Attention.

Legend: B batch, T new tokens, S cached positions, H heads, R kv_lora_rank,
Dn qk_nope_head_dim, Dr qk_rope_head_dim (RoPE part, one key head shared by all), Dv v_head_dim.

Queries come from `wq` (or the low-rank `wq_a → q_norm → wq_b`); keys and values from a
compressed latent `wkv_a → kv_norm → wkv_b`. The cache keeps the *expanded* per-head keys and
values: more memory than caching the latent, but each decode step then costs one small
projection instead of re-expanding every cached position.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from moebench.engine.attention import KVCache, attend
from moebench.engine.config import ModelArgs
from moebench.engine.norm import Norm
from moebench.engine.rope import apply_rope, yarn_mscale

#: q_a_layernorm / kv_a_layernorm use DeepseekV2RMSNorm's default eps, not rms_norm_eps
LATENT_NORM_EPS = 1e-6


class MLAttention(nn.Module):
    """Multi-head latent attention with decoupled RoPE keys."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        assert args.mla is not None
        a, h = args.mla, args.n_heads
        self.n_heads, self.dn, self.dr, self.dv, self.r = (
            h, a.qk_nope_head_dim, a.qk_rope_head_dim, a.v_head_dim, a.kv_lora_rank)
        qk = self.dn + self.dr
        if a.q_lora_rank is None:
            self.wq = nn.Linear(args.dim, h * qk, bias=False)
        else:
            self.wq_a = nn.Linear(args.dim, a.q_lora_rank, bias=args.out_bias)
            self.q_norm = Norm(a.q_lora_rank, LATENT_NORM_EPS)
            self.wq_b = nn.Linear(a.q_lora_rank, h * qk, bias=False)
        self.wkv_a = nn.Linear(args.dim, self.r + self.dr, bias=args.out_bias)
        self.kv_norm = Norm(self.r, LATENT_NORM_EPS)
        self.wkv_b = nn.Linear(self.r, h * (self.dn + self.dv), bias=False)
        self.wo = nn.Linear(h * self.dv, args.dim, bias=args.out_bias)
        self.scale = qk ** -0.5
        if args.rope.kind != "default" and args.rope.mscale_all_dim:
            self.scale *= yarn_mscale(args.rope.factor, args.rope.mscale_all_dim) ** 2
        self.low_rank_q = a.q_lora_rank is not None
        self.cache: KVCache | None = None

    def make_cache(self, length: int, dtype: torch.dtype, device: torch.device) -> None:
        """(Re)allocate this layer's (expanded) KV cache for `length` positions, keeping its contents."""
        new = KVCache(self.n_heads, length, self.dn + self.dr, self.dv, dtype, device)
        self.cache = new.keep(self.cache)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], start: int) -> Tensor:
        b, t, _ = x.shape
        q = self.wq_b(self.q_norm(self.wq_a(x))) if self.low_rank_q else self.wq(x)
        q = q.view(b, t, self.n_heads, -1).transpose(1, 2)  # [B, H, T, Dn+Dr]
        q_nope, q_pe = q.split([self.dn, self.dr], dim=-1)
        latent, k_pe = self.wkv_a(x).split([self.r, self.dr], dim=-1)  # [B, T, R], [B, T, Dr]
        kv = self.wkv_b(self.kv_norm(latent)).view(b, t, self.n_heads, -1).transpose(1, 2)
        k_nope, v = kv.split([self.dn, self.dv], dim=-1)  # [B, H, T, Dn], [B, H, T, Dv]
        q_pe = apply_rope(q_pe, *rope, interleaved=True)
        k_pe = apply_rope(k_pe[:, None], *rope, interleaved=True)  # [B, 1, T, Dr]
        q = torch.cat((q_nope, q_pe), dim=-1)
        k = torch.cat((k_nope, k_pe.expand(-1, self.n_heads, -1, -1)), dim=-1)  # [B, H, T, Dn+Dr]
        assert self.cache is not None, "call Transformer.setup_cache() first"
        k, v = self.cache.update(start, k, v)
        y = attend(q, k, v, start, self.scale)  # [B, H, T, Dv]
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))
