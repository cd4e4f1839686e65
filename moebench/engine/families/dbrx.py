"""DBRX (`model_type: dbrx`): fused Wqkv with clipping, bias-free LayerNorm, 16 experts top-4.

Config is nested: `attn_config {clip_qkv, kv_n_heads, rope_theta}` and `ffn_config
{ffn_hidden_size, moe_num_experts, moe_top_k, moe_normalize_expert_weights, ffn_act_fn}`.
RoPE θ comes from `attn_config.rope_theta` (500000 on the Hub), as DBRX was trained and as
vLLM/TGI read it; transformers 5.x instead reads a top-level θ (default 10000) — see
shared/notes/moe-architectures.md §1.2. Experts are three 2-D tensors `[E·I, H]` (`w1` gate,
`v1` up, `w2` down, the latter *not* transposed).
"""

from __future__ import annotations

from typing import Any

import torch

from moebench.engine.config import ModelArgs, MoEArgs, eos_ids, read_rope, require
from moebench.engine.families import common, register
from moebench.engine.weights import Checkpoint


def read_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a DBRX config.json."""
    dim, heads, layers, vocab = require(cfg, "d_model", "n_heads", "n_layers", "vocab_size")
    attn, ffn = cfg.get("attn_config") or {}, cfg.get("ffn_config") or {}
    act = (ffn.get("ffn_act_fn") or {}).get("name", "silu")
    return ModelArgs(
        family="dbrx", vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
        n_kv_heads=attn.get("kv_n_heads", 1), head_dim=dim // heads,
        moe=MoEArgs(n_experts=ffn.get("moe_num_experts", 4), top_k=ffn.get("moe_top_k", 1),
                    ffn_dim=ffn.get("ffn_hidden_size", 3584), router="softmax_topk_pnorm",
                    norm_p=ffn.get("moe_normalize_expert_weights", 1.0), activation=act),
        rope=read_rope(cfg, default_theta=10000.0, theta=attn.get("rope_theta")),
        norm="layer", norm_eps=1e-5, clip_qkv=attn.get("clip_qkv"),
        max_seq_len=cfg.get("max_seq_len", 2048), eos_ids=eos_ids(cfg),
        bos_id=cfg.get("bos_token_id"),
    )


def load_weights(args: ModelArgs, ckpt: Checkpoint) -> common.StateDict:
    """Engine state dict from DBRX checkpoint names."""
    sd = common.embeddings(ckpt, args, "transformer.wte.weight", "transformer.norm_f.weight",
                           "lm_head.weight")
    for i in range(args.n_layers):
        src, dst = f"transformer.blocks.{i}.", f"layers.{i}."
        block = src + "norm_attn_norm."
        sd[dst + "attention.wqkv.weight"] = ckpt.get(block + "attn.Wqkv.weight")
        sd[dst + "attention.wo.weight"] = ckpt.get(block + "attn.out_proj.weight")
        sd |= common.norms(ckpt, block, dst, ("norm_1", "norm_2"))
        sd[dst + "ffn.router.weight"] = ckpt.get(src + "ffn.router.layer.weight")
        sd |= _experts(ckpt, src + "ffn.experts.mlp.", dst + "ffn.experts.", args)
    return sd


def _experts(ckpt: Checkpoint, src: str, dst: str, args: ModelArgs) -> common.StateDict:
    """`w1, v1, w2 [E·I, H]` → `w13 [E, 2I, H]` (gate rows, then up rows), `w2 [E, H, I]`."""
    e, i, h = args.moe.n_experts, args.moe.ffn_dim, args.dim
    w13 = torch.empty(e, 2 * i, h, dtype=ckpt.dtype, device=ckpt.device)
    ckpt.copy_into(w13[:, :i], src + "w1", lambda t: t.view(e, i, h))
    ckpt.copy_into(w13[:, i:], src + "v1", lambda t: t.view(e, i, h))
    w2 = torch.empty(e, h, i, dtype=ckpt.dtype, device=ckpt.device)
    ckpt.copy_into(w2, src + "w2", lambda t: t.view(e, i, h).transpose(1, 2))
    return {dst + "w13": w13, dst + "w2": w2}


register("dbrx", read_config, load_weights)
