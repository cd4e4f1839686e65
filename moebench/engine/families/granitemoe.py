"""IBM Granite MoE (`model_type: granitemoe`, `granitemoeshared`): Mixtral-like with four scales.

Attention is Llama GQA with rotate-half RoPE; the router takes the top-k *logits* and softmaxes
over those k (`topk_softmax`); experts are `input_linear [E, 2I, H]` (gate rows, then up rows
— already the engine's `w13`) and `output_linear [E, H, I]`. Granite adds four scalars:
`embedding_multiplier` (× the embeddings), `attention_multiplier` (the softmax scale instead of
1/√d), `residual_multiplier` (× each attention and MoE output before the residual add) and
`logits_scaling` (÷ the logits). All four are linear, so they are folded into the weights at
load — embeddings, wq, wo, the experts' w2 (and the shared expert's), the lm head — and the
engine runs the plain Mixtral graph, compiled decode included.

Checkpoint names: `model.layers.N.self_attn.{q,k,v,o}_proj.weight`,
`block_sparse_moe.input_linear.weight`, `block_sparse_moe.output_linear.weight`,
`block_sparse_moe.router.layer.weight [E, H]` (transformers 5 in memory: `experts.gate_up_proj`,
`experts.down_proj`, `router.weight`, also accepted); GraniteMoeShared adds
`shared_mlp.input_linear.weight [2S, H]`, `shared_mlp.output_linear.weight [H, S]`.
"""

from __future__ import annotations

import math
from typing import Any

from moebench.engine.config import ModelArgs, MoEArgs, read_rope
from moebench.engine.families import common, register
from moebench.engine.weights import Checkpoint


def read_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a GraniteMoe(Shared) config.json."""
    dim, layers, heads, vocab, ffn = common.hub_sizes(cfg, "intermediate_size")
    shared = int(cfg.get("shared_intermediate_size") or 0)
    moe = MoEArgs(n_experts=int(cfg.get("num_local_experts") or 8),
                  top_k=int(cfg.get("num_experts_per_tok", 2)), ffn_dim=ffn, router="topk_softmax",
                  n_shared=1 if shared else 0, shared_ffn_dim=shared,
                  activation=cfg.get("hidden_act", "silu"))
    return ModelArgs(
        family="granitemoe", vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
        n_kv_heads=cfg.get("num_key_value_heads") or heads, head_dim=dim // heads, moe=moe,
        rope=read_rope(cfg, default_theta=10000.0), norm_eps=cfg.get("rms_norm_eps", 1e-6),
        granite_scales=scales(cfg, dim // heads), **common.hub_args(cfg, max_seq_len=4096))


def scales(cfg: dict[str, Any], head_dim: int) -> tuple[float, float, float, float]:
    """(embedding, attention, residual multipliers, logits scaling); absent: what the plain
    graph does (1, 1/√d, 1, 1)."""
    attention = cfg.get("attention_multiplier") or 1 / math.sqrt(head_dim)
    return (float(cfg.get("embedding_multiplier") or 1.0), float(attention),
            float(cfg.get("residual_multiplier") or 1.0), float(cfg.get("logits_scaling") or 1.0))


def load_weights(args: ModelArgs, ckpt: Checkpoint) -> common.StateDict:
    """Engine state dict from Granite MoE names, with the four scales folded in."""
    embed, attention, residual, logits = args.granite_scales
    sd = common.embeddings(ckpt, args)
    head = sd["output.weight"]
    sd["tok_embeddings.weight"] = sd["tok_embeddings.weight"] * embed  # a new tensor: untied
    sd["output.weight"] = head / logits
    q_scale = attention * math.sqrt(args.head_dim)  # the engine divides by √d; Granite multiplies
    for i in range(args.n_layers):
        src, dst = f"model.layers.{i}.", f"layers.{i}."
        attn = common.gqa_attention(ckpt, src + "self_attn.", dst + "attention.")
        attn[dst + "attention.wqkv.weight"][: args.n_heads * args.head_dim] *= q_scale
        attn[dst + "attention.wo.weight"] *= residual
        sd |= attn | common.norms(ckpt, src, dst)
        sd |= _moe(ckpt, src + "block_sparse_moe.", dst + "ffn.", residual)
        if args.moe.n_shared:
            sd[dst + "ffn.shared.w13.weight"] = ckpt.get(src + "shared_mlp.input_linear.weight")
            sd[dst + "ffn.shared.w2.weight"] = ckpt.get(src + "shared_mlp.output_linear.weight") * residual
    return sd


def _moe(ckpt: Checkpoint, src: str, dst: str, residual: float) -> common.StateDict:
    """Router and experts under the Hub names or transformers 5's in-memory ones."""
    hub = src + "input_linear.weight" in ckpt
    router = src + ("router.layer.weight" if src + "router.layer.weight" in ckpt else "router.weight")
    w13 = src + ("input_linear.weight" if hub else "experts.gate_up_proj")
    w2 = src + ("output_linear.weight" if hub else "experts.down_proj")
    return {dst + "router.weight": ckpt.get(router), dst + "experts.w13": ckpt.get(w13),
            dst + "experts.w2": ckpt.get(w2) * residual}


register("granitemoe", read_config, load_weights)
register("granitemoeshared", read_config, load_weights)
