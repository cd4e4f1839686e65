"""DeepSeek-V2 / V2-Lite (`model_type: deepseek_v2`): MLA attention, shared + routed experts.

The first `first_k_dense_replace` layers use a dense MLP. The router is an fp32 softmax, top-k
(optionally group-limited: keep the `topk_group` groups with the highest max score), weights
× `routed_scaling_factor` without renormalisation; the `n_shared_experts` shared experts are
one ungated MLP of width `moe_intermediate_size × n_shared_experts`. RoPE uses interleaved
pairs on the decoupled `qk_rope_head_dim` part only (YaRN on the Hub configs).
"""

from __future__ import annotations

from typing import Any

from moebench.engine.config import MLAArgs, ModelArgs, MoEArgs, read_rope
from moebench.engine.families import common, register
from moebench.engine.weights import Checkpoint
from moebench.errors import EngineError

TOPK_METHODS = ("greedy", "group_limited_greedy")


def read_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a DeepSeek-V2 config.json."""
    dim, layers, heads, vocab, moe_ffn = common.hub_sizes(cfg, "moe_intermediate_size")
    method = cfg.get("topk_method") or "greedy"
    if method not in TOPK_METHODS:
        raise EngineError(f"deepseek_v2 topk_method '{method}' is not supported — "
                          f"supported: {', '.join(TOPK_METHODS)}")
    shared = cfg.get("n_shared_experts") or 0
    mla = MLAArgs(q_lora_rank=cfg.get("q_lora_rank"), kv_lora_rank=cfg.get("kv_lora_rank", 512),
                  qk_nope_head_dim=cfg.get("qk_nope_head_dim", 128),
                  qk_rope_head_dim=cfg.get("qk_rope_head_dim", 64),
                  v_head_dim=cfg.get("v_head_dim", 128))
    moe = MoEArgs(
        n_experts=cfg.get("n_routed_experts") or 64, top_k=cfg.get("num_experts_per_tok") or 6,
        ffn_dim=moe_ffn, router="softmax_topk_scaled",
        scaling=float(cfg.get("routed_scaling_factor", 1.0)),
        n_group=cfg.get("n_group") or 1, topk_group=cfg.get("topk_group") or 1,
        group_limited=method == "group_limited_greedy", n_shared=shared,
        shared_ffn_dim=moe_ffn * shared, first_dense=cfg.get("first_k_dense_replace", 0),
        activation=cfg.get("hidden_act", "silu"))
    return ModelArgs(
        family="deepseek_v2", vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
        n_kv_heads=heads, head_dim=mla.qk_nope_head_dim + mla.qk_rope_head_dim, moe=moe, mla=mla,
        dense_ffn_dim=cfg.get("intermediate_size", 0),
        rope=read_rope(cfg, default_theta=10000.0, interleaved=True),
        norm_eps=cfg.get("rms_norm_eps", 1e-6), out_bias=bool(cfg.get("attention_bias", False)),
        **common.hub_args(cfg, max_seq_len=2048),
    )


def load_weights(args: ModelArgs, ckpt: Checkpoint) -> common.StateDict:
    """Engine state dict from DeepSeek-V2 checkpoint names."""
    sd = common.embeddings(ckpt, args)
    for i in range(args.n_layers):
        src, dst = f"model.layers.{i}.", f"layers.{i}."
        sd |= _mla(ckpt, src + "self_attn.", dst + "attention.", args)
        sd |= common.norms(ckpt, src, dst)
        if not args.is_moe_layer(i):
            sd |= common.dense_mlp(ckpt, src + "mlp.", dst + "ffn.")
            continue
        sd[dst + "ffn.router.weight"] = ckpt.get(src + "mlp.gate.weight")
        sd |= common.experts(ckpt, src + "mlp.experts.", dst + "ffn.experts.", args.moe.n_experts)
        if args.moe.n_shared:
            sd |= common.dense_mlp(ckpt, src + "mlp.shared_experts.", dst + "ffn.shared.")
    return sd


def _mla(ckpt: Checkpoint, src: str, dst: str, args: ModelArgs) -> common.StateDict:
    """MLA projections: q (full or low-rank), compressed kv, output; biases when configured."""
    names = {"kv_a_proj_with_mqa": "wkv_a", "kv_a_layernorm": "kv_norm", "kv_b_proj": "wkv_b",
             "o_proj": "wo"}
    assert args.mla is not None
    if args.mla.q_lora_rank is None:
        names["q_proj"] = "wq"
    else:
        names |= {"q_a_proj": "wq_a", "q_a_layernorm": "q_norm", "q_b_proj": "wq_b"}
    sd = {f"{dst}{ours}.weight": ckpt.get(f"{src}{theirs}.weight") for theirs, ours in names.items()}
    if args.out_bias:
        biased = ["kv_a_proj_with_mqa", "o_proj"] + (["q_a_proj"] if args.mla.q_lora_rank else [])
        sd |= {f"{dst}{names[n]}.bias": ckpt.get(f"{src}{n}.bias") for n in biased}
    return sd


register("deepseek_v2", read_config, load_weights)
