"""A small HF → GGUF converter for tests: tiny checkpoints written as llama.cpp writes them.

Names come from gguf-py's own `TensorNameMap` (the table convert_hf_to_gguf.py uses), experts
are stacked `[E, rows, cols]` (or left split, as old Mixtral pulls are), llama-arch q/k rows
are permuted with convert_hf_to_gguf's `LlamaModel.permute`, DeepSeek-V2's kv_b is split into
`attn_k_b` (transposed) / `attn_v_b` with the MQA-style key lengths of current llama.cpp (or
kept whole with the older, Ollama-style keys), and metadata keys are those the converters
write. Tensors are quantised with `gguf.quants` where the row length allows (1-D tensors and
routers stay F32, as llama-quantize keeps them). Also an Ollama store layout around a blob.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from safetensors.numpy import load_file

from gguf_kquants import quantize_q4_k, quantize_q6_k

ARCH = {"mixtral": gguf.MODEL_ARCH.LLAMA, "qwen2_moe": gguf.MODEL_ARCH.QWEN2MOE,
        "qwen3_moe": gguf.MODEL_ARCH.QWEN3MOE, "olmoe": gguf.MODEL_ARCH.OLMOE,
        "deepseek_v2": gguf.MODEL_ARCH.DEEPSEEK2, "dbrx": gguf.MODEL_ARCH.DBRX,
        "gpt_oss": gguf.MODEL_ARCH.GPT_OSS, "granitemoe": gguf.MODEL_ARCH.GRANITE_MOE,
        "granitemoeshared": gguf.MODEL_ARCH.GRANITE_MOE}
FILE_TYPE = {"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
             "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
             "Q5_0": gguf.LlamaFileType.MOSTLY_Q5_0, "MXFP4": gguf.LlamaFileType.MOSTLY_MXFP4_MOE,
             "Q4_K_M": gguf.LlamaFileType.MOSTLY_Q4_K_M}
EXPERT_PARTS = {"mixtral": {"w1": "gate", "w3": "up", "w2": "down"}}
#: Ollama's convert_mixtral.go merges w1 → ffn_gate_exps, w2 → ffn_up_exps, w3 → ffn_down_exps
OLLAMA_MIXTRAL = {"w1": "gate", "w2": "up", "w3": "down"}


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf.py's `LlamaModel.permute` (rotate-half rows → adjacent pairs)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def convert(folder: Path, out: Path, qtype: str = "F32", *, legacy_kv_b: bool = False,
            split_experts: bool = False, ollama_swap: bool = False) -> Path:
    """Write `folder` (a tiny `save_pretrained` checkpoint) as GGUF file `out`."""
    cfg = json.loads((folder / "config.json").read_text())
    family = cfg["model_type"]
    arch = ARCH[family]
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[arch])
    _hparams(writer, family, cfg, legacy_kv_b)
    writer.add_file_type(FILE_TYPE[qtype])
    _vocab(writer, folder)
    tensors = {k: v.astype(np.float32) for k, v in load_file(str(folder / "model.safetensors")).items()}
    parts = OLLAMA_MIXTRAL if ollama_swap else None
    for name, data in _gguf_tensors(family, cfg, tensors, arch, legacy_kv_b, split_experts, parts):
        _add(writer, name, data, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _hparams(w: gguf.GGUFWriter, family: str, cfg: dict[str, Any], legacy: bool) -> None:
    if family == "dbrx":
        attn, ffn = cfg["attn_config"], cfg["ffn_config"]
        w.add_block_count(cfg["n_layers"]); w.add_context_length(cfg["max_seq_len"])
        w.add_embedding_length(cfg["d_model"]); w.add_feed_forward_length(ffn["ffn_hidden_size"])
        w.add_head_count(cfg["n_heads"]); w.add_head_count_kv(attn["kv_n_heads"])
        w.add_rope_freq_base(attn["rope_theta"]); w.add_clamp_kqv(attn["clip_qkv"])
        w.add_expert_count(ffn["moe_num_experts"]); w.add_expert_used_count(ffn["moe_top_k"])
        w.add_layer_norm_eps(1e-5)
        return
    rope = cfg.get("rope_parameters") or {}
    heads = cfg["num_attention_heads"]
    w.add_block_count(cfg["num_hidden_layers"]); w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"]); w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads); w.add_head_count_kv(cfg.get("num_key_value_heads") or heads)
    w.add_rope_freq_base(rope.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_expert_count(cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts"))
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    w.add_vocab_size(cfg["vocab_size"])
    if family in ("qwen2_moe", "qwen3_moe"):
        w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    if family == "qwen2_moe":
        w.add_expert_shared_feed_forward_length(cfg["shared_expert_intermediate_size"])
    if family == "qwen3_moe":
        w.add_key_length(cfg["head_dim"]); w.add_value_length(cfg["head_dim"])
    if family == "olmoe" and cfg.get("clip_qkv"):
        w.add_clamp_kqv(cfg["clip_qkv"])
    if family in ("mixtral", "granitemoe", "granitemoeshared"):
        w.add_rope_dimension_count(cfg["hidden_size"] // heads)
    if family.startswith("granitemoe"):  # GraniteModel / GraniteMoeModel.set_gguf_parameters
        w.add_attention_scale(cfg["attention_multiplier"])
        w.add_embedding_scale(cfg["embedding_multiplier"])
        w.add_residual_scale(cfg["residual_multiplier"]); w.add_logit_scale(cfg["logits_scaling"])
        if cfg.get("shared_intermediate_size"):
            w.add_expert_shared_feed_forward_length(cfg["shared_intermediate_size"])
    if family == "deepseek_v2":
        _deepseek_hparams(w, cfg, rope, legacy)
    if family == "gpt_oss":  # GptOssModel.set_gguf_parameters
        w.add_sliding_window(cfg["sliding_window"])
        w.add_expert_feed_forward_length(cfg["intermediate_size"])
        w.add_key_length(cfg["head_dim"]); w.add_value_length(cfg["head_dim"])
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(rope["factor"])
        w.add_rope_scaling_orig_ctx_len(rope.get("original_max_position_embeddings", 4096))
        w.add_swiglu_clamp_exp([cfg["swiglu_limit"]] * cfg["num_hidden_layers"])


def _deepseek_hparams(w: gguf.GGUFWriter, cfg: dict[str, Any], rope: dict[str, Any],
                      legacy: bool) -> None:
    """As DeepseekV2Model.set_gguf_parameters (current) or Ollama's convert_deepseek2.go (legacy)."""
    rank, rope_dim = cfg["kv_lora_rank"], cfg["qk_rope_head_dim"]
    w.add_leading_dense_block_count(cfg["first_k_dense_replace"])
    if cfg.get("q_lora_rank") is not None or legacy:
        w.add_q_lora_rank(cfg.get("q_lora_rank") or 0)  # Ollama writes 0 for "none"
    w.add_kv_lora_rank(rank)
    if legacy:
        w.add_key_length(cfg["qk_nope_head_dim"] + rope_dim); w.add_value_length(cfg["v_head_dim"])
    else:
        w.add_key_length(rank + rope_dim); w.add_value_length(rank)
        w.add_key_length_mla(cfg["qk_nope_head_dim"] + rope_dim)
        w.add_value_length_mla(cfg["v_head_dim"])
    w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    w.add_expert_shared_count(cfg["n_shared_experts"])
    w.add_expert_weights_scale(cfg["routed_scaling_factor"])
    w.add_rope_dimension_count(rope_dim)
    if cfg.get("topk_method") == "group_limited_greedy":
        w.add_expert_group_count(cfg["n_group"]); w.add_expert_group_used_count(cfg["topk_group"])
    if rope.get("rope_type") == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(rope["factor"])
        w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        w.add_rope_scaling_yarn_log_mul(0.1 * rope["mscale_all_dim"])


def _vocab(w: gguf.GGUFWriter, folder: Path) -> None:
    """A byte-level BPE tokenizer.json as `_set_vocab_gpt2` writes it."""
    data = json.loads((folder / "tokenizer.json").read_text())
    tok_cfg = json.loads((folder / "tokenizer_config.json").read_text())
    vocab = dict(data["model"]["vocab"])
    special = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t.get("special")}
    vocab |= special
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"].get("merges", [])]
    w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL
                       for t in tokens])
    w.add_token_merges(merges)
    for key, add in (("bos_token", w.add_bos_token_id), ("eos_token", w.add_eos_token_id),
                     ("unk_token", w.add_unk_token_id)):
        if tok_cfg.get(key) in vocab:
            add(vocab[tok_cfg[key]])
    w.add_add_bos_token("bos_token" in tok_cfg)
    if tok_cfg.get("chat_template"):
        w.add_chat_template(tok_cfg["chat_template"])


def _gguf_tensors(family: str, cfg: dict[str, Any], tensors: dict[str, np.ndarray],
                  arch: gguf.MODEL_ARCH, legacy: bool, split: bool,
                  parts: dict[str, str] | None = None):
    layers = cfg.get("num_hidden_layers") or cfg["n_layers"]
    names = gguf.get_tensor_name_map(arch, layers)
    experts: dict[tuple[int, str], dict[int, np.ndarray]] = {}
    for hf, data in tensors.items():
        bits = hf.split(".")
        if ".experts." in hf and family != "dbrx" and bits[-3].isdigit():
            experts.setdefault((int(bits[2]), bits[-2]), {})[int(bits[-3])] = data
            continue
        if family.startswith("granitemoe") and hf.endswith("input_linear.weight"):
            kind = "exps" if "block_sparse_moe" in hf else "shexp"  # GraniteMoeModel.modify_tensors
            gate, up = np.split(data, 2, axis=-2)
            yield f"blk.{bits[2]}.ffn_gate_{kind}.weight", np.ascontiguousarray(gate)
            yield f"blk.{bits[2]}.ffn_up_{kind}.weight", np.ascontiguousarray(up)
            continue
        if (family == "mixtral" or family.startswith("granitemoe")) and hf.endswith(
                ("q_proj.weight", "k_proj.weight")):
            kv = cfg["num_key_value_heads"] if "k_proj" in hf else None
            data = permute(data, cfg["num_attention_heads"], kv)
        if family == "deepseek_v2" and hf.endswith("kv_b_proj.weight") and not legacy:
            yield from _split_kv_b(names, hf, data, cfg)
            continue
        if family == "gpt_oss" and (".experts." in hf or hf.endswith("sinks")):
            yield from _gpt_oss(names, hf, data)
            continue
        if family == "dbrx" and ".experts.mlp." in hf:
            yield _dbrx_expert(names, hf, data, cfg)
            continue
        # a dense layer inside qwen2moe (mlp_only_layers) has no qwen2moe name: llama's
        name = (names.get_name(hf, try_suffixes=(".weight", ".bias"))
                or gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers).get_name(
                    hf, try_suffixes=(".weight", ".bias")))
        assert name is not None, hf
        yield name, data
    part_of = parts or EXPERT_PARTS.get(family, {"gate_proj": "gate", "up_proj": "up",
                                                 "down_proj": "down"})
    for (layer, matrix), per_expert in sorted(experts.items()):
        part = part_of[matrix]
        stack = np.stack([per_expert[e] for e in sorted(per_expert)])
        if split:  # llama.cpp before #6387: one tensor per expert
            for e, one in enumerate(stack):
                yield f"blk.{layer}.ffn_{part}.{e}.weight", one
        else:
            yield f"blk.{layer}.ffn_{part}_exps.weight", stack


def _split_kv_b(names: gguf.TensorNameMap, hf: str, data: np.ndarray, cfg: dict[str, Any]):
    heads, nope, v = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["v_head_dim"]
    kv_b = data.reshape(heads, nope + v, data.shape[-1])
    k_b, v_b = kv_b[:, :nope], kv_b[:, nope:]
    yield names.get_name(hf.replace("kv_b_proj", "k_b_proj"), try_suffixes=(".weight",)), np.ascontiguousarray(k_b.transpose(0, 2, 1))
    yield names.get_name(hf.replace("kv_b_proj", "v_b_proj"), try_suffixes=(".weight",)), np.ascontiguousarray(v_b)


def _gpt_oss(names: gguf.TensorNameMap, hf: str, data: np.ndarray):
    """GptOssModel.modify_tensors for unquantised experts: split the interleaved gate/up,
    transpose to `[E, out, in]`; `sinks` gets a `.weight` suffix."""
    def name(new: str) -> str:
        found = names.get_name(new, try_suffixes=(".weight", ".bias"))
        assert found is not None, new
        return found

    if hf.endswith("sinks"):
        yield name(hf + ".weight"), data
    elif hf.endswith("gate_up_proj_bias"):
        yield name(hf.replace("gate_up_proj_bias", "gate_proj.bias")), data[..., ::2].copy()
        yield name(hf.replace("gate_up_proj_bias", "up_proj.bias")), data[..., 1::2].copy()
    elif hf.endswith("gate_up_proj"):
        rows = data.transpose(0, 2, 1)  # [E, 2I, H]
        yield name(hf.replace("gate_up_proj", "gate_proj.weight")), rows[:, ::2].copy()
        yield name(hf.replace("gate_up_proj", "up_proj.weight")), rows[:, 1::2].copy()
    elif hf.endswith("down_proj_bias"):
        yield name(hf.replace("down_proj_bias", "down_proj.bias")), data
    else:
        yield name(hf.replace("down_proj", "down_proj.weight")), data.transpose(0, 2, 1).copy()


def _dbrx_expert(names: gguf.TensorNameMap, hf: str, data: np.ndarray, cfg: dict[str, Any]):
    ffn = cfg["ffn_config"]
    data = data.reshape(ffn["moe_num_experts"], ffn["ffn_hidden_size"], cfg["d_model"])
    if hf.endswith("w2"):
        data = data.transpose(0, 2, 1)
    return names.get_name(hf + ".weight", try_suffixes=(".weight",)), np.ascontiguousarray(data)


def _add(w: gguf.GGUFWriter, name: str, data: np.ndarray, qtype: str) -> None:
    keep = data.ndim < 2 or name.endswith(("ffn_gate_inp.weight", "_norm.weight"))
    keep = keep or (qtype == "MXFP4" and not name.endswith("_exps.weight"))  # MXFP4_MOE
    if qtype == "Q4_K_M":
        qtype = _q4_k_m_type(name)
    kind = gguf.GGMLQuantizationType[qtype]
    block = gguf.GGML_QUANT_SIZES[kind][0]
    if qtype == "F32" or keep or data.shape[-1] % block:
        w.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    elif qtype == "F16":
        w.add_tensor(name, data.astype(np.float16))
    elif qtype in ("Q4_K", "Q6_K"):  # gguf-py cannot quantise K-quants: our own writer
        quantize = quantize_q4_k if qtype == "Q4_K" else quantize_q6_k
        w.add_tensor(name, quantize(data), raw_dtype=kind)
    else:
        w.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)


def _q4_k_m_type(name: str) -> str:
    """llama.cpp's Q4_K_M mix, simplified: Q6_K for the LM head, attn_v and the first
    layer's ffn_down (llama.cpp: half of the ffn_down / attn_v layers), Q4_K elsewhere."""
    q6 = name == "output.weight" or ".attn_v." in name or name.startswith("blk.0.ffn_down")
    return "Q6_K" if q6 else "Q4_K"


def ollama_store(root: Path, blob_source: Path, name: str = "library/tiny", tag: str = "latest",
                 registry: str = "registry.ollama.ai") -> Path:
    """Lay out `root` as Ollama does: the GGUF as `blobs/sha256-<hex>`, a manifest naming it.

    Returns the manifest path (its sha256 is the digest Ollama's /api/tags reports).
    """
    data = blob_source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(blob_source, root / "blobs" / f"sha256-{digest}")
    template = b"{{ .Prompt }}"
    template_digest = hashlib.sha256(template).hexdigest()
    (root / "blobs" / f"sha256-{template_digest}").write_bytes(template)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": f"sha256:{template_digest}", "size": len(template)},
                "layers": [{"mediaType": "application/vnd.ollama.image.model",
                            "digest": f"sha256:{digest}", "size": len(data)},
                           {"mediaType": "application/vnd.ollama.image.template",
                            "digest": f"sha256:{template_digest}", "size": len(template)}]}
    path = root / "manifests" / registry / name / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path
