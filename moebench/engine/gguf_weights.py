"""GGUF tensors presented under Hugging Face names, so the family weight maps read GGUF unchanged.

`GGUFCheckpoint` is a `weights.Checkpoint` whose tensors are *virtual*: each HF name
(`model.layers.3.mlp.experts.5.gate_proj.weight`) points at the GGUF tensor(s) it comes from
(`blk.3.ffn_gate_exps.weight`, expert 5) and how to turn them back into the HF layout:

* stacked experts `[E, rows, cols]` are read one expert at a time (dequantised per expert, so
  the scratch is one expert, never the whole stack); old and Ollama files with split experts
  (`blk.N.ffn_gate.E.weight`) are read as they are;
* llama-arch q/k rows are un-permuted: llama.cpp's converter reorders each head's rows from
  rotate-half pairs (i, i + d/2) to adjacent pairs (2i, 2i + 1) for its RoPE kernel;
* DeepSeek-V2's `attn_kv_b` is rebuilt from `attn_k_b` (stored transposed) and `attn_v_b`
  when a current llama.cpp converter split it for MLA weight absorption;
* DBRX experts go back to the `[E·I, H]` matrices of the HF checkpoint.

Names are those of gguf-py's `constants.py` / `tensor_mapping.py` (what convert_hf_to_gguf.py
and Ollama's `convert/` write).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from moebench.engine.gguf_file import GGUFFile
from moebench.engine.weights import Checkpoint
from moebench.errors import EngineError


@dataclass(frozen=True)
class Virtual:
    """One HF-named tensor: its shape, the GGUF tensors it reads, and how to read it (float32)."""

    shape: tuple[int, ...]
    sources: tuple[str, ...]
    read: Callable[[], np.ndarray]


# HF name under `model.layers.{i}.` → GGUF name under `blk.{i}.` (".weight" / ".bias" added)
ATTENTION = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "input_layernorm": "attn_norm",
             "post_attention_layernorm": "ffn_norm"}
MLA = {"self_attn.q_proj": "attn_q", "self_attn.q_a_proj": "attn_q_a",
       "self_attn.q_a_layernorm": "attn_q_a_norm", "self_attn.q_b_proj": "attn_q_b",
       "self_attn.kv_a_proj_with_mqa": "attn_kv_a_mqa", "self_attn.kv_a_layernorm": "attn_kv_a_norm",
       "self_attn.kv_b_proj": "attn_kv_b", "self_attn.o_proj": "attn_output",
       "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
DENSE = {"mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
QWEN_SHARED = {"mlp.shared_expert.gate_proj": "ffn_gate_shexp", "mlp.shared_expert.up_proj": "ffn_up_shexp",
               "mlp.shared_expert.down_proj": "ffn_down_shexp"}
DEEPSEEK_SHARED = {"mlp.shared_experts.gate_proj": "ffn_gate_shexp",
                   "mlp.shared_experts.up_proj": "ffn_up_shexp",
                   "mlp.shared_experts.down_proj": "ffn_down_shexp"}
#: per family: (layer table, router HF name, expert prefix, {HF expert matrix: GGUF stem})
LAYOUT: dict[str, tuple[dict[str, str], str, str, dict[str, str]]] = {
    "mixtral": (ATTENTION, "block_sparse_moe.gate", "block_sparse_moe.experts.",
                {"w1": "gate", "w3": "up", "w2": "down"}),
    "qwen2_moe": (ATTENTION | DENSE | QWEN_SHARED, "mlp.gate", "mlp.experts.",
                  {"gate_proj": "gate", "up_proj": "up", "down_proj": "down"}),
    "qwen3_moe": (ATTENTION | DENSE, "mlp.gate", "mlp.experts.",
                  {"gate_proj": "gate", "up_proj": "up", "down_proj": "down"}),
    "olmoe": (ATTENTION, "mlp.gate", "mlp.experts.",
              {"gate_proj": "gate", "up_proj": "up", "down_proj": "down"}),
    "deepseek_v2": (MLA | DENSE | DEEPSEEK_SHARED, "mlp.gate", "mlp.experts.",
                    {"gate_proj": "gate", "up_proj": "up", "down_proj": "down"}),
}
GLOBAL = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


class GGUFCheckpoint(Checkpoint):
    """A `Checkpoint` over a GGUF file: HF names, dequantised with gguf.quants, cast once."""

    def __init__(self, gguf: GGUFFile, virtuals: Mapping[str, Virtual], dtype: torch.dtype,
                 device: torch.device | str) -> None:  # no super().__init__: no safetensors
        self.folder: Path = gguf.path
        self.dtype, self.device = dtype, torch.device(device)
        self.gguf, self.virtuals = gguf, dict(virtuals)
        self.files = [gguf.path]
        self.used: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.virtuals

    def names(self) -> list[str]:
        """Every HF tensor name the file provides."""
        return list(self.virtuals)

    def shape(self, name: str) -> list[int]:
        """A tensor's shape in the HF layout, from the GGUF header only."""
        return list(self._virtual(name).shape)

    def stored_bytes(self) -> int:
        """Bytes of all tensors as stored (quantised) in the file."""
        return self.gguf.stored_bytes()

    def numel(self) -> int:
        """Number of weights in the file (what the engine holds once dequantised)."""
        return self.gguf.numel()

    def get(self, name: str) -> Tensor:
        """Tensor `name` dequantised to the engine's dtype and device, always copied into
        torch-allocated memory (never a view of a numpy buffer), as the safetensors path does."""
        out = torch.empty(self.shape(name), dtype=self.dtype, device=self.device)
        self.copy_into(out, name)
        return out

    def raw(self, name: str) -> Tensor:
        """Tensor `name` as float32 (GGUF has no packed form the engine reads directly)."""
        return self._tensor(name)

    def copy_into(self, out: Tensor, name: str, transform: Any = None) -> None:
        """Dequantise `name` (optionally reshaped by `transform`) into the preallocated `out`."""
        tensor = self._tensor(name)
        if transform is not None:
            tensor = transform(tensor)
        if tuple(tensor.shape) != tuple(out.shape):
            raise EngineError(f"{self.folder.name}: tensor {name} has shape {list(tensor.shape)} but "
                              f"the GGUF metadata implies {list(out.shape)} — the file's metadata "
                              "does not match its weights")
        out.copy_(tensor)

    def unused(self) -> list[str]:
        """GGUF tensors no weight map has read."""
        return sorted(set(self.gguf.tensors) - self.used - IGNORED)

    def _tensor(self, name: str) -> Tensor:
        virtual = self._virtual(name)
        self.used.update(virtual.sources)
        with warnings.catch_warnings():  # memory-mapped F32 arrays are read-only; we only read
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(np.ascontiguousarray(virtual.read()))

    def _virtual(self, name: str) -> Virtual:
        virtual = self.virtuals.get(name)
        if virtual is None:
            raise EngineError(f"GGUF file {self.folder.name} lacks the tensor the engine reads as "
                              f"'{name}' — is it a complete {self.gguf.arch} model file?")
        return virtual


#: tensors llama.cpp writes that the engine does not need (precomputed RoPE tables)
IGNORED = {"rope_freqs.weight"}


def virtual_tensors(gguf: GGUFFile, family: str, cfg: Mapping[str, Any]) -> dict[str, Virtual]:
    """HF name → Virtual for every tensor of `gguf`, for engine family `family`."""
    if family == "dbrx":
        return _dbrx(gguf, cfg)
    if family == "gpt_oss":
        return _gpt_oss(gguf, cfg)
    if family in ("granitemoe", "granitemoeshared"):
        out = _granite(gguf, cfg)
        _unpermute(out, int(cfg["num_attention_heads"]), int(cfg["num_key_value_heads"]))
        return out
    table, router, experts, matrices = LAYOUT[family]
    out = _direct(gguf, GLOBAL)
    for i in range(int(cfg["num_hidden_layers"])):
        src, blk = f"model.layers.{i}.", f"blk.{i}."
        out |= _direct(gguf, {src + k: blk + v for k, v in table.items()})
        out |= _direct(gguf, {src + router: blk + "ffn_gate_inp"})
        out |= _experts(gguf, src + experts, blk, matrices)
        if family == "qwen2_moe":
            out |= _shared_gate(gguf, src, blk)
        if family == "deepseek_v2" and src + "self_attn.kv_b_proj.weight" not in out:
            out |= _kv_b(gguf, src, blk)
    if family == "mixtral":
        _unpermute(out, int(cfg["num_attention_heads"]), int(cfg["num_key_value_heads"]))
    return out


def _direct(gguf: GGUFFile, names: Mapping[str, str]) -> dict[str, Virtual]:
    """HF `name.weight|bias` ← GGUF `stem.weight|bias`, for those the file has."""
    out = {}
    for hf, stem in names.items():
        for suffix in (".weight", ".bias"):
            if stem + suffix in gguf.tensors:
                out[hf + suffix] = _whole(gguf, stem + suffix)
    return out


def _whole(gguf: GGUFFile, name: str) -> Virtual:
    return Virtual(gguf.shape(name), (name,), lambda: gguf.array(name))


def _experts(gguf: GGUFFile, src: str, blk: str, matrices: Mapping[str, str]) -> dict[str, Virtual]:
    """Per-expert HF matrices from stacked `ffn_{gate,up,down}_exps` or split `ffn_gate.E`."""
    stems = {part: f"{blk}ffn_{part}_exps.weight" for part in ("gate", "up", "down")}
    if all(stem in gguf.tensors for stem in stems.values()):
        stems = _fix_swapped_up_down(gguf, stems)
        out = {}
        for hf, part in matrices.items():
            name = stems[part]
            shape = gguf.shape(name)
            for e in range(shape[0]):
                out[f"{src}{e}.{hf}.weight"] = Virtual(
                    shape[1:], (name,), lambda name=name, e=e: gguf.array(name, e))
        return out
    split: dict[str, str] = {}  # llama.cpp before stacking (old Mixtral pulls): blk.N.ffn_gate.E
    for hf, part in matrices.items():
        e = 0
        while f"{blk}ffn_{part}.{e}.weight" in gguf.tensors:
            split[f"{src}{e}.{hf}"] = f"{blk}ffn_{part}.{e}"
            e += 1
    return _direct(gguf, split)


def _fix_swapped_up_down(gguf: GGUFFile, stems: dict[str, str]) -> dict[str, str]:
    """Some Ollama-converted Mixtral files store `w2` (down) as `ffn_up_exps` and `w3` (up) as
    `ffn_down_exps`; gate/up are `[E, I, H]` and down `[E, H, I]`, so the shapes tell."""
    gate, up, down = (gguf.shape(stems[p]) for p in ("gate", "up", "down"))
    if up != gate and down == gate:
        return {"gate": stems["gate"], "up": stems["down"], "down": stems["up"]}
    return stems


def _shared_gate(gguf: GGUFFile, src: str, blk: str) -> dict[str, Virtual]:
    """Qwen2-MoE's shared-expert gate `[1, H]` (llama.cpp reads it as a vector `[H]`)."""
    name = blk + "ffn_gate_inp_shexp.weight"
    if name not in gguf.tensors:
        return {}
    dim = math.prod(gguf.shape(name))
    return {src + "mlp.shared_expert_gate.weight": Virtual(
        (1, dim), (name,), lambda: gguf.array(name).reshape(1, dim))}


def _kv_b(gguf: GGUFFile, src: str, blk: str) -> dict[str, Virtual]:
    """`kv_b_proj [H·(nope + v), r]` from `attn_k_b [H, r, nope]` and `attn_v_b [H, v, r]`."""
    k_name, v_name = blk + "attn_k_b.weight", blk + "attn_v_b.weight"
    if k_name not in gguf.tensors or v_name not in gguf.tensors:
        return {}
    heads, rank, nope = gguf.shape(k_name)
    v_dim = gguf.shape(v_name)[1]

    def read() -> np.ndarray:
        k_b = gguf.array(k_name).transpose(0, 2, 1)  # [H, nope, r]
        return np.concatenate([k_b, gguf.array(v_name)], axis=1).reshape(-1, rank)

    return {src + "self_attn.kv_b_proj.weight": Virtual((heads * (nope + v_dim), rank),
                                                        (k_name, v_name), read)}


def _unpermute(out: dict[str, Virtual], n_heads: int, n_kv_heads: int) -> None:
    """Undo convert_hf_to_gguf's `LlamaModel.permute` on every q and k projection (and bias)."""
    for name, virtual in list(out.items()):
        heads = n_heads if ".q_proj." in name else n_kv_heads if ".k_proj." in name else 0
        if heads:
            out[name] = Virtual(virtual.shape, virtual.sources,
                                lambda v=virtual, h=heads: unpermute(v.read(), h))


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Inverse of llama.cpp's `permute`: rows per head `(half, 2)` back to `(2, half)`."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _dbrx(gguf: GGUFFile, cfg: Mapping[str, Any]) -> dict[str, Virtual]:
    """DBRX: fused Wqkv, LayerNorms, experts back to `[E·I, H]` (w2 from `[E, H, I]`)."""
    out = _direct(gguf, {"transformer.wte": "token_embd", "transformer.norm_f": "output_norm",
                         "lm_head": "output"})
    for i in range(int(cfg["n_layers"])):
        src, blk = f"transformer.blocks.{i}.", f"blk.{i}."
        block = src + "norm_attn_norm."
        out |= _direct(gguf, {block + "attn.Wqkv": blk + "attn_qkv",
                              block + "attn.out_proj": blk + "attn_output",
                              block + "norm_1": blk + "attn_norm",
                              block + "norm_2": blk + "attn_output_norm",
                              src + "ffn.router.layer": blk + "ffn_gate_inp"})
        for hf, part, down in (("w1", "gate", False), ("v1", "up", False), ("w2", "down", True)):
            name = f"{blk}ffn_{part}_exps.weight"
            if name in gguf.tensors:
                out[src + "ffn.experts.mlp." + hf] = _dbrx_experts(gguf, name, down)
    return out


def _dbrx_experts(gguf: GGUFFile, name: str, down: bool) -> Virtual:
    e, rows, cols = gguf.shape(name)
    inner = rows if not down else cols  # I

    def read() -> np.ndarray:
        values = gguf.array(name)
        return (values.transpose(0, 2, 1) if down else values).reshape(e * inner, -1)

    return Virtual((e * inner, cols if not down else rows), (name,), read)


GPT_OSS = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "input_layernorm": "attn_norm",
           "post_attention_layernorm": "post_attention_norm", "mlp.router": "ffn_gate_inp"}


def _gpt_oss(gguf: GGUFFile, cfg: Mapping[str, Any]) -> dict[str, Virtual]:
    """GPT-OSS: llama.cpp splits HF's interleaved `gate_up_proj [E, H, 2I]` into
    `ffn_gate_exps` / `ffn_up_exps [E, I, H]` (MXFP4) and transposes `down_proj` to `[E, H, I]`;
    the sinks are `attn_sinks.weight`. Re-interleave and transpose back."""
    out = _direct(gguf, GLOBAL)
    for i in range(int(cfg["num_hidden_layers"])):
        src, blk = f"model.layers.{i}.", f"blk.{i}."
        out |= _direct(gguf, {src + k: blk + v for k, v in GPT_OSS.items()})
        sinks = blk + "attn_sinks.weight"
        if sinks in gguf.tensors:
            out[src + "self_attn.sinks"] = _whole(gguf, sinks)
        out |= _gpt_oss_experts(gguf, src + "mlp.experts.", blk)
    return out


def _gpt_oss_experts(gguf: GGUFFile, src: str, blk: str) -> dict[str, Virtual]:
    gate, up, down = (f"{blk}ffn_{p}_exps" for p in ("gate", "up", "down"))
    if not all(n + ".weight" in gguf.tensors for n in (gate, up, down)):
        return {}
    e, inner, hidden = gguf.shape(gate + ".weight")

    def interleave(suffix: str) -> np.ndarray:  # [E, I, …] twice → [E, 2I, …] rows g0 u0 g1 u1
        both = np.stack([gguf.array(gate + suffix), gguf.array(up + suffix)], axis=2)
        return both.reshape(e, 2 * inner, *both.shape[3:])

    out = {src + "gate_up_proj": Virtual((e, hidden, 2 * inner), (gate + ".weight", up + ".weight"),
                                         lambda: interleave(".weight").transpose(0, 2, 1)),
           src + "down_proj": Virtual((e, inner, hidden), (down + ".weight",),
                                      lambda: gguf.array(down + ".weight").transpose(0, 2, 1))}
    if gate + ".bias" in gguf.tensors:
        out[src + "gate_up_proj_bias"] = Virtual((e, 2 * inner), (gate + ".bias", up + ".bias"),
                                                 lambda: interleave(".bias"))
        out[src + "down_proj_bias"] = _whole(gguf, down + ".bias")
    return out


def _granite(gguf: GGUFFile, cfg: Mapping[str, Any]) -> dict[str, Virtual]:
    """Granite MoE: llama.cpp splits `input_linear [E, 2I, H]` into `ffn_gate_exps` and
    `ffn_up_exps` (and the shared expert's into `ffn_{gate,up}_shexp`); join them back."""
    out = _direct(gguf, GLOBAL)
    for i in range(int(cfg["num_hidden_layers"])):
        src, blk = f"model.layers.{i}.", f"blk.{i}."
        out |= _direct(gguf, {src + k: blk + v for k, v in ATTENTION.items()})
        moe = src + "block_sparse_moe."
        out |= _direct(gguf, {moe + "router.layer": blk + "ffn_gate_inp",
                              moe + "output_linear": blk + "ffn_down_exps",
                              src + "shared_mlp.output_linear": blk + "ffn_down_shexp"})
        for hf, kind in ((moe + "input_linear.weight", "exps"),
                         (src + "shared_mlp.input_linear.weight", "shexp")):
            gate, up = f"{blk}ffn_gate_{kind}.weight", f"{blk}ffn_up_{kind}.weight"
            if gate in gguf.tensors and up in gguf.tensors:
                out[hf] = _joined(gguf, gate, up)
    return out


def _joined(gguf: GGUFFile, first: str, second: str) -> Virtual:
    """`first` rows then `second` rows (along the second-to-last axis)."""
    a, b = gguf.shape(first), gguf.shape(second)
    shape = (*a[:-2], a[-2] + b[-2], a[-1])
    return Virtual(shape, (first, second),
                   lambda: np.concatenate([gguf.array(first), gguf.array(second)], axis=-2))
