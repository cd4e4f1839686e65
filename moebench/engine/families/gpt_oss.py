"""GPT-OSS (`model_type: gpt_oss`): attention sinks, alternating sliding window, biased MoE.

Attention: q/k/v/o with biases, a learned sink logit per head, a sliding window (128) on the
layers `layer_types` marks `sliding_attention` (default: even layers), YaRN RoPE (θ 150000,
factor 32, `truncate: false`) in the rotate-half layout. Norms scale by the weight in fp32.
MoE: router with a bias, top-k of the logits then softmax over the k; experts with biases and
a clamped SwiGLU (`moe_oss.py`). Every layer is MoE; no shared expert.

Checkpoint names (= what transformers saves): `model.layers.N.self_attn.{q,k,v,o}_proj.{weight,
bias}`, `self_attn.sinks [H]`, `mlp.router.{weight [E, H], bias [E]}`, `mlp.experts.gate_up_proj
[E, H, 2I]` (gate/up interleaved on the last dim), `…gate_up_proj_bias [E, 2I]`,
`…down_proj [E, I, H]`, `…down_proj_bias [E, H]`. OpenAI's own checkpoints store the two
expert matrices as MXFP4 (`…_blocks [E, out, in/32, 16]`, `…_scales [E, out, in/32]`,
`[out, in]` orientation); those are dequantised once at load (`mxfp4.py`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from moebench.engine import mxfp4
from moebench.engine.config import ModelArgs, MoEArgs, read_rope
from moebench.engine.families import common, register
from moebench.engine.weights import Checkpoint
from moebench.errors import EngineError

#: transformers' GptOssConfig default when config.json has no RoPE parameters at all
DEFAULT_ROPE = {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                "truncate": False, "original_max_position_embeddings": 4096}


def read_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a GPT-OSS config.json."""
    dim, layers, heads, vocab, ffn = common.hub_sizes(cfg, "intermediate_size")
    if not (cfg.get("rope_parameters") or cfg.get("rope_scaling")):
        cfg = {**cfg, "rope_scaling": DEFAULT_ROPE}
    types = cfg.get("layer_types") or [
        "sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(layers)]
    bias = bool(cfg.get("attention_bias", True))
    moe = MoEArgs(
        n_experts=int(cfg.get("num_local_experts") or cfg.get("num_experts") or 32),
        top_k=cfg.get("num_experts_per_tok", 4), ffn_dim=ffn, router="topk_softmax",
        experts="clamped_swiglu", swiglu_alpha=float(cfg.get("swiglu_alpha", 1.702)),
        swiglu_limit=float(cfg.get("swiglu_limit", 7.0)))
    return ModelArgs(
        family="gpt_oss", vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
        n_kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or dim // heads, moe=moe,
        rope=read_rope(cfg, default_theta=150000.0), norm="rms_fp32",
        norm_eps=cfg.get("rms_norm_eps", 1e-5), qkv_bias=bias, out_bias=bias, attn_sinks=True,
        sliding_window=cfg.get("sliding_window"), layer_types=tuple(types),
        **common.hub_args(cfg, max_seq_len=131072),
    )


def load_weights(args: ModelArgs, ckpt: Checkpoint) -> common.StateDict:
    """Engine state dict from GPT-OSS checkpoint names (bf16/fp32 or MXFP4 experts)."""
    sd = common.embeddings(ckpt, args)
    for i in range(args.n_layers):
        src, dst = f"model.layers.{i}.", f"layers.{i}."
        sd |= common.gqa_attention(ckpt, src + "self_attn.", dst + "attention.",
                                   bias=args.qkv_bias, out_bias=args.out_bias)
        sd[dst + "attention.sinks"] = ckpt.get(src + "self_attn.sinks")
        sd |= common.norms(ckpt, src, dst)
        sd[dst + "ffn.router.weight"] = ckpt.get(src + "mlp.router.weight")
        sd[dst + "ffn.router.bias"] = ckpt.get(src + "mlp.router.bias")
        sd |= _experts(ckpt, src + "mlp.experts.", dst + "ffn.experts.", args)
    return sd


def _experts(ckpt: Checkpoint, src: str, dst: str, args: ModelArgs) -> common.StateDict:
    """`w13 [E, 2I, H]` (gate rows, then up rows), `w2 [E, H, I]` and their biases."""
    e, i, h = args.moe.n_experts, args.moe.ffn_dim, args.dim
    gate_up = _unpack(ckpt, src + "gate_up_proj", (e, 2 * i, h), interleaved_rows=True)
    down = _unpack(ckpt, src + "down_proj", (e, h, i), interleaved_rows=False)
    order = deinterleave_order(2 * i, ckpt.device)
    return {dst + "w13": gate_up, dst + "w2": down,
            dst + "b13": ckpt.get(src + "gate_up_proj_bias").index_select(1, order),  # [E, 2I]
            dst + "b2": ckpt.get(src + "down_proj_bias")}  # [E, H]


def _unpack(ckpt: Checkpoint, name: str, shape: tuple[int, int, int],
            interleaved_rows: bool) -> Tensor:
    """An `[E, out, in]` expert matrix from its stored `[E, in, out]` or MXFP4 form.

    `interleaved_rows`: the out rows alternate gate/up; reorder them to all gates, then all ups.
    """
    out = torch.empty(shape, dtype=ckpt.dtype, device=ckpt.device)
    order = deinterleave_order(shape[1], ckpt.device) if interleaved_rows else None
    if name + "_blocks" in ckpt:
        blocks, scales = ckpt.raw(name + "_blocks"), ckpt.raw(name + "_scales")
        packed = (shape[0], shape[1], shape[2] // 32, 16)  # 32 values in 16 bytes per group
        if tuple(blocks.shape) != packed:
            raise EngineError(f"tensor {name}_blocks has shape {list(blocks.shape)} but config.json "
                              f"implies {list(packed)} — config.json does not match the weights")
        for e in range(shape[0]):  # one expert at a time bounds the dequantisation scratch
            rows = mxfp4.dequantize(blocks[e], scales[e], ckpt.dtype)  # [out, in]
            out[e] = rows if order is None else rows.index_select(0, order.to(rows.device))
        return out

    def transform(stored: Tensor) -> Tensor:  # [E, in, out] → [E, out, in]
        rows = stored.transpose(1, 2)
        return rows if order is None else rows.index_select(1, order.to(rows.device))

    ckpt.copy_into(out, name, transform)
    return out


def deinterleave_order(n: int, device: torch.device) -> Tensor:
    """Indices that turn `g0, u0, g1, u1, …` into `g0, g1, …, u0, u1, …` (n even)."""
    return torch.cat((torch.arange(0, n, 2), torch.arange(1, n, 2))).to(device)


register("gpt_oss", read_config, load_weights)
