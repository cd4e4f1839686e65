"""Qwen3-MoE (`model_type: qwen3_moe`): per-head q/k RMSNorm, explicit head_dim, no shared expert.

Router: fp32 softmax → top-k, renormalised when `norm_topk_prob` (true on the Hub). Attention
normalises each head's q and k over `head_dim` (`q_norm [D]`, `k_norm [D]`, eps rms_norm_eps)
before RoPE. `head_dim` must come from config.json (Qwen3-30B-A3B: 128, not hidden/heads = 64).
`attention_bias` covers q, k, v and o. A sliding window, with `use_sliding_window`, holds on
every layer. Dense layers follow `mlp_only_layers` / `decoder_sparse_step` as in Qwen2-MoE.

Checkpoint names: `model.layers.N.self_attn.{q,k,v,o}_proj.weight`, `self_attn.{q,k}_norm.weight`,
`mlp.gate.weight [E, H]`, `mlp.experts.E.{gate,up,down}_proj.weight`.
"""

from __future__ import annotations

from typing import Any

from moebench.engine.config import ModelArgs, MoEArgs, read_rope
from moebench.engine.families import common, register
from moebench.engine.families.qwen2_moe import dense_layers, load_weights, n_experts, router_kind


def read_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a Qwen3-MoE config.json."""
    dim, layers, heads, vocab, moe_ffn = common.hub_sizes(cfg, "moe_intermediate_size")
    bias = bool(cfg.get("attention_bias", False))
    moe = MoEArgs(
        n_experts=n_experts(cfg, 128), top_k=cfg.get("num_experts_per_tok", 8), ffn_dim=moe_ffn,
        router=router_kind(cfg), dense_layers=dense_layers(cfg, layers),
        activation=cfg.get("hidden_act", "silu"))
    return ModelArgs(
        family="qwen3_moe", vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
        n_kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or dim // heads, moe=moe,
        dense_ffn_dim=cfg.get("intermediate_size", 0), rope=read_rope(cfg, default_theta=10000.0),
        norm_eps=cfg.get("rms_norm_eps", 1e-6), qkv_bias=bias, out_bias=bias, qk_norm="head",
        sliding_window=cfg.get("sliding_window") if cfg.get("use_sliding_window") else None,
        **common.hub_args(cfg, max_seq_len=32768),
    )


register("qwen3_moe", read_config, load_weights)
