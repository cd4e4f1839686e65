"""OLMoE (`model_type: olmoe`): q/k RMSNorm over the whole projections, optional qkv clipping.

Router: fp32 softmax → top-k without renormalisation (`norm_topk_prob: false`). Every layer is
MoE (experts of width `intermediate_size`), no shared expert. Attention normalises the flat
q projection (`q_norm [H·D]`) and k projection (`k_norm [G·D]`) before the head split, then
clamps q, k and v to ±`clip_qkv` when set, then applies RoPE (θ 10000).

Checkpoint names: `model.layers.N.self_attn.{q,k,v,o}_proj.weight`, `self_attn.{q,k}_norm.weight`,
`mlp.gate.weight [E, H]`, `mlp.experts.E.{gate,up,down}_proj.weight`.
"""

from __future__ import annotations

from typing import Any

from moebench.engine.config import ModelArgs, MoEArgs, read_rope
from moebench.engine.families import common, register
from moebench.engine.families.qwen2_moe import load_weights, n_experts, router_kind


def read_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from an OLMoE config.json."""
    dim, layers, heads, vocab, ffn = common.hub_sizes(cfg, "intermediate_size")
    bias = bool(cfg.get("attention_bias", False))
    moe = MoEArgs(n_experts=n_experts(cfg, 64), top_k=cfg.get("num_experts_per_tok", 8),
                  ffn_dim=ffn, router=router_kind(cfg), activation=cfg.get("hidden_act", "silu"))
    return ModelArgs(
        family="olmoe", vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
        n_kv_heads=cfg.get("num_key_value_heads") or heads, head_dim=dim // heads, moe=moe,
        rope=read_rope(cfg, default_theta=10000.0), norm_eps=cfg.get("rms_norm_eps", 1e-5),
        qkv_bias=bias, out_bias=bias, qk_norm="full", clip_qkv=cfg.get("clip_qkv"),
        **common.hub_args(cfg, max_seq_len=4096),
    )


register("olmoe", read_config, load_weights)
