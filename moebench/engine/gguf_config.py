"""GGUF hyper-parameters → the config.json an engine family reads (then `read_config` → ModelArgs).

Each GGUF architecture (`general.architecture`: `llama` with experts = Mixtral, `qwen2moe`,
`qwen3moe`, `olmoe`, `deepseek2`, `dbrx`, `gpt-oss`, `granitemoe`) maps its `<arch>.*` keys onto the Hugging Face
keys of the matching family, so one `read_config` serves both formats. What GGUF does not
store is recovered as llama.cpp does: dense layers from the tensors present (no
`ffn_gate_inp`), biases from `attn_q.bias`, the vocabulary size from the token list, tied
embeddings from a missing `output.weight`, and the router's renormalisation from the
architecture's llama.cpp default. Keys that are required and absent are all named in one error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moebench.engine.gguf_file import GGUFFile
from moebench.errors import EngineError

#: GGUF architecture → engine family (`model_type`)
FAMILIES = {"llama": "mixtral", "qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "olmoe": "olmoe",
            "deepseek2": "deepseek_v2", "dbrx": "dbrx", "gpt-oss": "gpt_oss",
            "granitemoe": "granitemoe"}
#: router renormalisation each llama.cpp graph hard-codes when the file has no expert_weights_norm
NORM_TOPK_DEFAULT = {"llama": True, "qwen2moe": False, "qwen3moe": True, "olmoe": False,
                     "deepseek2": False}


class _Keys:
    """Reads `<arch>.*` keys, remembering which required ones are missing."""

    def __init__(self, gguf: GGUFFile) -> None:
        self.gguf, self.missing = gguf, []  # type: list[str]

    def need(self, key: str) -> Any:
        value = self.gguf.arch_value(key)
        if value is None:
            self.missing.append(f"{self.gguf.arch}.{key}")
            return 0
        return value[0] if isinstance(value, list) else value  # per-layer arrays: layer 0

    def get(self, key: str, default: Any = None) -> Any:
        value = self.gguf.arch_value(key, default)
        return value[0] if isinstance(value, list) and value else value

    def check(self) -> None:
        if self.missing:
            raise EngineError(f"GGUF file {self.gguf.path.name} lacks {', '.join(self.missing)} — "
                              "it cannot be read; re-convert it with a current llama.cpp")


def hf_config(gguf: GGUFFile) -> tuple[str, dict[str, Any]]:
    """(engine family, config.json-style dict) for the file's architecture."""
    build = _BUILDERS.get(gguf.arch)
    if build is None or (gguf.arch == "llama" and not gguf.arch_value("expert_count")):
        supported = ", ".join(sorted(_BUILDERS))
        raise EngineError(f"GGUF architecture '{gguf.arch}' is not an MoE the engine reads — "
                          f"supported: {supported} (llama with experts); run it with --backend ollama")
    keys = _Keys(gguf)
    cfg = build(gguf, keys)
    keys.check()
    return FAMILIES[gguf.arch], cfg


def _common(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    """Keys every Llama-style architecture spells alike."""
    heads = keys.need("attention.head_count")
    cfg: dict[str, Any] = {
        "hidden_size": keys.need("embedding_length"), "num_hidden_layers": keys.need("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": keys.get("attention.head_count_kv") or heads,
        "vocab_size": vocab_size(gguf), "max_position_embeddings": keys.get("context_length", 4096),
        "rms_norm_eps": keys.get("attention.layer_norm_rms_epsilon", 1e-5),
        "rope_parameters": rope(gguf, keys), "tie_word_embeddings": "output.weight" not in gguf.tensors,
        "hidden_act": "silu",
    }
    if keys.get("attention.key_length"):
        cfg["head_dim"] = keys.get("attention.key_length")
    num, used = keys.need("expert_count"), keys.need("expert_used_count")
    cfg |= {"num_experts": num, "num_local_experts": num, "num_experts_per_tok": used}
    norm = keys.get("expert_weights_norm")
    cfg["norm_topk_prob"] = bool(NORM_TOPK_DEFAULT.get(gguf.arch, False) if norm is None else norm)
    cfg |= special_ids(gguf)
    return cfg


def rope(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    """`rope_parameters` from `rope.freq_base` and `rope.scaling.*` (llama.cpp's θ default 10000)."""
    params: dict[str, Any] = {"rope_type": "default",
                              "rope_theta": float(keys.get("rope.freq_base", 10000.0))}
    kind = keys.get("rope.scaling.type")
    factor = keys.get("rope.scaling.factor")
    if kind in ("linear", "yarn") and factor and float(factor) != 1.0:
        params |= {"rope_type": kind, "factor": float(factor)}
        original = keys.get("rope.scaling.original_context_length")
        if original:
            params["original_max_position_embeddings"] = int(original)
        if kind == "yarn":
            params |= {"beta_fast": float(keys.get("rope.scaling.yarn_beta_fast", 32.0)),
                       "beta_slow": float(keys.get("rope.scaling.yarn_beta_slow", 1.0))}
            log_mul = keys.get("rope.scaling.yarn_log_multiplier")
            if log_mul:  # llama.cpp stores 0.1 · mscale_all_dim (DeepSeek: mscale == mscale_all_dim)
                params |= {"mscale": float(log_mul) / 0.1, "mscale_all_dim": float(log_mul) / 0.1}
    return params


def vocab_size(gguf: GGUFFile) -> int:
    """`<arch>.vocab_size`, else the token list's length, else the embedding's rows."""
    value = gguf.arch_value("vocab_size") or len(gguf.meta.get("tokenizer.ggml.tokens") or [])
    if not value and "token_embd.weight" in gguf.tensors:
        value = gguf.shape("token_embd.weight")[0]
    return int(value)


def special_ids(gguf: GGUFFile) -> dict[str, Any]:
    """BOS/EOS ids from `tokenizer.ggml.*` (EOT and EOM join EOS)."""
    eos = [gguf.meta.get(f"tokenizer.ggml.{k}_token_id") for k in ("eos", "eot", "eom")]
    return {"bos_token_id": gguf.meta.get("tokenizer.ggml.bos_token_id"),
            "eos_token_id": [int(i) for i in dict.fromkeys(eos) if i is not None] or None}


def dense_layers(gguf: GGUFFile, layers: int) -> list[int]:
    """Layers without a router (`ffn_gate_inp`): llama.cpp files keep no list of them."""
    return [i for i in range(layers) if f"blk.{i}.ffn_gate_inp.weight" not in gguf.tensors]


def _mixtral(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    cfg = _common(gguf, keys)
    cfg["intermediate_size"] = keys.get("expert_feed_forward_length") or keys.need(
        "feed_forward_length")
    return cfg


def _qwen(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    cfg = _common(gguf, keys)
    cfg |= {"moe_intermediate_size": keys.need("expert_feed_forward_length"),
            "intermediate_size": keys.get("feed_forward_length", 0),
            "mlp_only_layers": dense_layers(gguf, cfg["num_hidden_layers"]),
            "qkv_bias": "blk.0.attn_q.bias" in gguf.tensors,
            "attention_bias": "blk.0.attn_q.bias" in gguf.tensors}
    if gguf.arch == "qwen2moe":
        cfg["shared_expert_intermediate_size"] = keys.get("expert_shared_feed_forward_length", 0)
    return cfg


def _olmoe(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    cfg = _common(gguf, keys)
    cfg |= {"intermediate_size": keys.get("expert_feed_forward_length") or keys.need(
                "feed_forward_length"),
            "clip_qkv": keys.get("attention.clamp_kqv"),
            "attention_bias": "blk.0.attn_q.bias" in gguf.tensors}
    cfg.pop("head_dim", None)
    return cfg


def _deepseek2(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    """DeepSeek-V2: MLA sizes in both spellings (llama.cpp's MQA-style `key_length_mla` and the
    older/Ollama `key_length`), `q_lora_rank` absent or 0 for V2-Lite."""
    cfg = _common(gguf, keys)
    rope_dim = keys.need("rope.dimension_count")
    key_len = keys.get("attention.key_length_mla") or keys.need("attention.key_length")
    value_len = keys.get("attention.value_length_mla") or keys.need("attention.value_length")
    groups, used = keys.get("expert_group_count", 1) or 1, keys.get("expert_group_used_count", 1)
    if keys.get("expert_gating_func") == 2 or gguf.meta.get(f"{gguf.arch}.expert_weights_norm"):
        raise EngineError(f"{gguf.path.name}: sigmoid-gated / renormalised DeepSeek routing "
                          "(V3-style) is not supported by the engine — run it with --backend ollama")
    cfg.pop("head_dim", None)
    return cfg | {
        "q_lora_rank": keys.get("attention.q_lora_rank") or None,
        "kv_lora_rank": keys.need("attention.kv_lora_rank"), "qk_rope_head_dim": rope_dim,
        "qk_nope_head_dim": key_len - rope_dim, "v_head_dim": value_len,
        "n_routed_experts": cfg["num_experts"], "n_shared_experts": keys.get("expert_shared_count", 0),
        "moe_intermediate_size": keys.need("expert_feed_forward_length"),
        "intermediate_size": keys.get("feed_forward_length", 0),
        "first_k_dense_replace": keys.get("leading_dense_block_count", 0),
        "routed_scaling_factor": float(keys.get("expert_weights_scale", 1.0) or 1.0),
        "topk_method": "group_limited_greedy" if groups > 1 else "greedy",
        "n_group": groups, "topk_group": used or 1,
        "attention_bias": "blk.0.attn_output.bias" in gguf.tensors,
        "rms_norm_eps": keys.get("attention.layer_norm_rms_epsilon", 1e-6)}


def _dbrx(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    heads = keys.need("attention.head_count")
    return {"d_model": keys.need("embedding_length"), "n_heads": heads,
            "n_layers": keys.need("block_count"), "vocab_size": vocab_size(gguf),
            "max_seq_len": keys.get("context_length", 2048),
            "attn_config": {"clip_qkv": keys.get("attention.clamp_kqv"),
                            "kv_n_heads": keys.get("attention.head_count_kv") or heads,
                            "rope_theta": float(keys.get("rope.freq_base", 10000.0))},
            "ffn_config": {"ffn_hidden_size": keys.need("feed_forward_length"),
                           "moe_num_experts": keys.need("expert_count"),
                           "moe_top_k": keys.need("expert_used_count")},
            **special_ids(gguf)}


def _gpt_oss(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    """GPT-OSS: YaRN without truncation (as transformers' default), sliding window on even
    layers (llama.cpp's swa pattern 2, transformers' default layer_types), SwiGLU clamp from
    `swiglu_clamp_exp` when the file has it (llama.cpp's graph uses 7.0)."""
    cfg = _common(gguf, keys)
    cfg["rope_parameters"] |= {"truncate": False}
    clamp = keys.get("swiglu_clamp_exp")
    return cfg | {"intermediate_size": keys.need("expert_feed_forward_length"),
                  "sliding_window": keys.get("attention.sliding_window"),
                  "swiglu_limit": float(clamp) if clamp else 7.0,
                  "attention_bias": "blk.0.attn_q.bias" in gguf.tensors}


def _granite(gguf: GGUFFile, keys: _Keys) -> dict[str, Any]:
    """Granite MoE: Mixtral keys plus the four scales (`attention.scale`, `embedding_scale`,
    `residual_scale`, `logit_scale`) and the shared expert's width."""
    cfg = _common(gguf, keys)
    cfg.pop("head_dim", None)
    return cfg | {"intermediate_size": keys.need("feed_forward_length"),
                  "shared_intermediate_size": keys.get("expert_shared_feed_forward_length", 0),
                  "attention_multiplier": keys.get("attention.scale"),
                  "embedding_multiplier": keys.get("embedding_scale"),
                  "residual_multiplier": keys.get("residual_scale"),
                  "logits_scaling": keys.get("logit_scale")}


_BUILDERS: dict[str, Callable[[GGUFFile, _Keys], dict[str, Any]]] = {
    "llama": _mixtral, "qwen2moe": _qwen, "qwen3moe": _qwen, "olmoe": _olmoe,
    "deepseek2": _deepseek2, "dbrx": _dbrx, "gpt-oss": _gpt_oss, "granitemoe": _granite}
