"""Qwen1.5-MoE / Qwen2-MoE (`model_type: qwen2_moe`): q/k/v biases, a gated shared expert.

Router: fp32 softmax → top-k, renormalised only when `norm_topk_prob` (false on the Hub).
Every MoE layer adds one shared expert of width `shared_expert_intermediate_size`, scaled per
token by `sigmoid(shared_expert_gate(x))`. Layers listed in `mlp_only_layers`, or off the
`decoder_sparse_step` stride, use a dense MLP of `intermediate_size` instead. A sliding window
applies only with `use_sliding_window`, on the layers `layer_types` marks.

Checkpoint names: `model.layers.N.self_attn.{q,k,v}_proj.{weight,bias}`, `o_proj.weight`;
`mlp.gate.weight [E, H]`, `mlp.experts.E.{gate,up,down}_proj.weight`,
`mlp.shared_expert.{gate,up,down}_proj.weight`, `mlp.shared_expert_gate.weight [1, H]`;
dense layers `mlp.{gate,up,down}_proj.weight`. Qwen3-MoE and OLMoE share these names (plus
q/k norms) and reuse `load_weights`, `n_experts`, `router_kind` and `dense_layers` from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moebench.engine.config import ModelArgs, MoEArgs, read_rope
from moebench.engine.families import common, register
from moebench.engine.weights import Checkpoint


def n_experts(cfg: Mapping[str, Any], default: int) -> int:
    """Routed experts (`num_experts`; transformers 5 may save `num_local_experts`)."""
    return int(cfg.get("num_experts") or cfg.get("num_local_experts") or default)


def router_kind(cfg: Mapping[str, Any]) -> str:
    """Softmax → top-k, renormalised iff `norm_topk_prob` (transformers' default: false)."""
    return "softmax_topk_renorm" if cfg.get("norm_topk_prob") else "softmax_topk"


def dense_layers(cfg: Mapping[str, Any], layers: int) -> tuple[int, ...]:
    """Layers with a dense MLP: in `mlp_only_layers`, or where (i + 1) % decoder_sparse_step ≠ 0."""
    only = set(cfg.get("mlp_only_layers") or [])
    step = int(cfg.get("decoder_sparse_step") or 1)
    return tuple(i for i in range(layers) if i in only or (i + 1) % step != 0)


def _sliding(cfg: Mapping[str, Any], layers: int) -> tuple[int | None, tuple[str, ...]]:
    """(window, layer_types): transformers 5 marks even layers below `max_window_layers`."""
    if not cfg.get("use_sliding_window") or not cfg.get("sliding_window"):
        return None, ()
    limit = cfg.get("max_window_layers", 28)
    types = cfg.get("layer_types") or [
        "sliding_attention" if (i + 1) % 2 and i < limit else "full_attention"
        for i in range(layers)]
    return int(cfg["sliding_window"]), tuple(types)


def read_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a Qwen2-MoE config.json."""
    dim, layers, heads, vocab, moe_ffn = common.hub_sizes(cfg, "moe_intermediate_size")
    shared_ffn = int(cfg.get("shared_expert_intermediate_size") or 0)
    window, types = _sliding(cfg, layers)
    moe = MoEArgs(
        n_experts=n_experts(cfg, 60), top_k=cfg.get("num_experts_per_tok", 4), ffn_dim=moe_ffn,
        router=router_kind(cfg), n_shared=1 if shared_ffn else 0, shared_ffn_dim=shared_ffn,
        shared_gate=True, dense_layers=dense_layers(cfg, layers),
        activation=cfg.get("hidden_act", "silu"))
    return ModelArgs(
        family="qwen2_moe", vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
        n_kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or dim // heads, moe=moe,
        dense_ffn_dim=cfg.get("intermediate_size", 0), rope=read_rope(cfg, default_theta=10000.0),
        norm_eps=cfg.get("rms_norm_eps", 1e-6), qkv_bias=bool(cfg.get("qkv_bias", True)),
        sliding_window=window, layer_types=types,
        **common.hub_args(cfg, max_seq_len=32768),
    )


def _mlp_weights(ckpt: Checkpoint, args: ModelArgs, layer: int, src: str,
                 dst: str) -> common.StateDict:
    """Dense MLP, or router + experts (+ gated shared expert) under Qwen-style `mlp.` names."""
    if not args.is_moe_layer(layer):
        return common.dense_mlp(ckpt, src, dst)
    sd = {dst + "router.weight": ckpt.get(src + "gate.weight")}
    sd |= common.experts(ckpt, src + "experts.", dst + "experts.", args.moe.n_experts)
    if args.moe.n_shared:
        sd |= common.dense_mlp(ckpt, src + "shared_expert.", dst + "shared.")
        sd[dst + "shared_gate.weight"] = ckpt.get(src + "shared_expert_gate.weight")
    return sd


def load_weights(args: ModelArgs, ckpt: Checkpoint) -> common.StateDict:
    """Engine state dict from Qwen-style names (also Qwen3-MoE's and OLMoE's, with q/k norms)."""
    sd = common.embeddings(ckpt, args)
    for i in range(args.n_layers):
        src, dst = f"model.layers.{i}.", f"layers.{i}."
        attn = src + "self_attn."
        sd |= common.gqa_attention(ckpt, attn, dst + "attention.", bias=args.qkv_bias,
                                   out_bias=args.out_bias)
        if args.qk_norm:
            sd[dst + "attention.q_norm.weight"] = ckpt.get(attn + "q_norm.weight")
            sd[dst + "attention.k_norm.weight"] = ckpt.get(attn + "k_norm.weight")
        sd |= common.norms(ckpt, src, dst)
        sd |= _mlp_weights(ckpt, args, i, src + "mlp.", dst + "ffn.")
    return sd


register("qwen2_moe", read_config, load_weights)
