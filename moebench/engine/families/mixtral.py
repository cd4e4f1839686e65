"""Mixtral (`model_type: mixtral`): GQA + RoPE (θ 1e6), every layer 8 experts top-2, softmax renorm.

Checkpoint names (what `save_pretrained` writes): `model.layers.N.self_attn.{q,k,v,o}_proj`,
`model.layers.N.block_sparse_moe.gate` `[E, H]`, `...block_sparse_moe.experts.E.w1` (gate),
`w3` (up), `w2` (down); `model.embed_tokens`, `model.norm`, `lm_head`.
"""

from __future__ import annotations

from typing import Any

from moebench.engine.config import ModelArgs, MoEArgs, read_rope
from moebench.engine.families import common, register
from moebench.engine.weights import Checkpoint


def read_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a Mixtral config.json."""
    dim, layers, heads, vocab, ffn = common.hub_sizes(cfg, "intermediate_size")
    experts = cfg.get("num_local_experts") or cfg.get("num_experts") or 8
    return ModelArgs(
        family="mixtral", vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
        n_kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or dim // heads,
        moe=MoEArgs(n_experts=experts, top_k=cfg.get("num_experts_per_tok", 2), ffn_dim=ffn,
                    router="softmax_topk_renorm", activation=cfg.get("hidden_act", "silu")),
        rope=read_rope(cfg, default_theta=1e6), norm_eps=cfg.get("rms_norm_eps", 1e-5),
        sliding_window=cfg.get("sliding_window"),
        **common.hub_args(cfg, max_seq_len=32768),
    )


def load_weights(args: ModelArgs, ckpt: Checkpoint) -> common.StateDict:
    """Engine state dict from Mixtral checkpoint names."""
    sd = common.embeddings(ckpt, args)
    for i in range(args.n_layers):
        src, dst = f"model.layers.{i}.", f"layers.{i}."
        sd |= common.gqa_attention(ckpt, src + "self_attn.", dst + "attention.")
        sd |= common.norms(ckpt, src, dst)
        moe = src + ("block_sparse_moe." if src + "block_sparse_moe.gate.weight" in ckpt else "mlp.")
        sd[dst + "ffn.router.weight"] = ckpt.get(moe + "gate.weight")
        sd |= common.experts(ckpt, moe + "experts.", dst + "ffn.experts.", args.moe.n_experts,
                             ("w1", "w3", "w2"))
    return sd


register("mixtral", read_config, load_weights)
