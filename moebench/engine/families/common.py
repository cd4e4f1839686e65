"""Helpers shared by families with Llama-style config keys and checkpoint names.

`hub_sizes` / `hub_args` read the config.json keys most families spell alike. Each weight-map
helper reads checkpoint tensors under a source prefix (`model.layers.3.self_attn.`) and
returns engine tensors under a destination prefix (`layers.3.attention.`), fusing where the
engine runs one matmul instead of several (q|k|v, gate|up, stacked experts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from moebench.engine.config import ModelArgs, eos_ids, require
from moebench.engine.weights import Checkpoint

StateDict = dict[str, Tensor]


def hub_sizes(cfg: Mapping[str, Any], ffn_key: str) -> list[Any]:
    """hidden_size, num_hidden_layers, num_attention_heads, vocab_size, `ffn_key` (all required)."""
    return require(cfg, "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                   ffn_key)


def hub_args(cfg: Mapping[str, Any], max_seq_len: int) -> dict[str, Any]:
    """ModelArgs fields every Llama-style config.json spells alike (tying, context, eos/bos).

    `max_seq_len` is the family's default when `max_position_embeddings` is absent.
    """
    return {"tie_embeddings": bool(cfg.get("tie_word_embeddings", False)),
            "max_seq_len": cfg.get("max_position_embeddings", max_seq_len),
            "eos_ids": eos_ids(cfg), "bos_id": cfg.get("bos_token_id")}


def embeddings(ckpt: Checkpoint, args: ModelArgs, embed: str = "model.embed_tokens.weight",
               norm: str = "model.norm.weight", head: str = "lm_head.weight") -> StateDict:
    """Token embedding, final norm and lm head (tied to the embedding when the config says so)."""
    sd = {"tok_embeddings.weight": ckpt.get(embed), "norm.weight": ckpt.get(norm)}
    tied = args.tie_embeddings or head not in ckpt
    sd["output.weight"] = sd["tok_embeddings.weight"] if tied else ckpt.get(head)
    return sd


def gqa_attention(ckpt: Checkpoint, src: str, dst: str, bias: bool = False,
                  names: tuple[str, str, str, str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
                  out_bias: bool = False) -> StateDict:
    """Separate q/k/v/o projections → fused `wqkv` + `wo` (+ q/k/v and o biases when present)."""
    q, k, v, o = names
    sd = {dst + "wqkv.weight": ckpt.fuse([f"{src}{n}.weight" for n in (q, k, v)]),
          dst + "wo.weight": ckpt.get(f"{src}{o}.weight")}
    if bias:
        sd[dst + "wqkv.bias"] = ckpt.fuse([f"{src}{n}.bias" for n in (q, k, v)])
    if out_bias:
        sd[dst + "wo.bias"] = ckpt.get(f"{src}{o}.bias")
    return sd


def norms(ckpt: Checkpoint, src: str, dst: str,
          names: tuple[str, str] = ("input_layernorm", "post_attention_layernorm")) -> StateDict:
    """The two pre-norm weights of a block (attention norm, then FFN norm, under `src`)."""
    attention_norm, ffn_norm = names
    return {dst + "attention_norm.weight": ckpt.get(f"{src}{attention_norm}.weight"),
            dst + "ffn_norm.weight": ckpt.get(f"{src}{ffn_norm}.weight")}


def dense_mlp(ckpt: Checkpoint, src: str, dst: str,
              names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> StateDict:
    """gate/up/down projections of a dense SwiGLU MLP → fused `w13` + `w2`."""
    gate, up, down = names
    return {dst + "w13.weight": ckpt.fuse([f"{src}{gate}.weight", f"{src}{up}.weight"]),
            dst + "w2.weight": ckpt.get(f"{src}{down}.weight")}


def experts(ckpt: Checkpoint, src: str, dst: str, n_experts: int,
            names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> StateDict:
    """Per-expert gate/up/down under `src{e}.` → stacked `w13 [E, 2I, H]`, `w2 [E, H, I]`.

    Also accepts transformers' fused in-memory layout (`gate_up_proj`, `down_proj` as 3-D
    tensors) should a checkpoint have been written that way.
    """
    if src + "gate_up_proj" in ckpt:
        return {dst + "w13": ckpt.get(src + "gate_up_proj"), dst + "w2": ckpt.get(src + "down_proj")}
    gate, up, down = (src + "{e}." + n + ".weight" for n in names)
    return {dst + "w13": ckpt.stack_experts([gate, up], n_experts),
            dst + "w2": ckpt.stack_experts([down], n_experts)}
