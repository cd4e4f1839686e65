"""Weight-map helpers shared by families with Llama-style checkpoint names.

Each helper reads checkpoint tensors under a source prefix (`model.layers.3.self_attn.`) and
returns engine tensors under a destination prefix (`layers.3.attention.`), fusing where the
engine runs one matmul instead of several (q|k|v, gate|up, stacked experts).
"""

from __future__ import annotations

from torch import Tensor

from moebench.engine.config import ModelArgs
from moebench.engine.weights import Checkpoint

StateDict = dict[str, Tensor]


def embeddings(ckpt: Checkpoint, args: ModelArgs, embed: str, norm: str, head: str) -> StateDict:
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


def norms(ckpt: Checkpoint, attention_norm: str, ffn_norm: str, dst: str) -> StateDict:
    """The two pre-norm weights of a block."""
    return {dst + "attention_norm.weight": ckpt.get(attention_norm),
            dst + "ffn_norm.weight": ckpt.get(ffn_norm)}


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
