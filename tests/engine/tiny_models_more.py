"""Tiny random checkpoints of the qwen2_moe, qwen3_moe, olmoe and gpt_oss families.

Same recipe as `tiny_models.py` (whose `build_from` and `Case` are reused): a
transformers model (eager attention and experts, fp32) saved with `save_pretrained`, kept as
the reference. Each config switches on its family's peculiarities: Qwen2-MoE a dense layer
(`mlp_only_layers`) and a per-layer sliding window, Qwen3-MoE an explicit `head_dim` that is
not hidden/heads and `decoder_sparse_step=2`, OLMoE an active `clip_qkv`, GPT-OSS sinks, an
alternating window shorter than the prompt, YaRN and a SwiGLU clamp that bites.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers

from tiny_models import COMMON, REFERENCE_KW, Builders, Case, build_from

#: transformers' GptOssConfig RoPE default, θ included (what a Hub config without RoPE means)
GPT_OSS_ROPE = {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 4096}
SIZES = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2}


def _qwen2_moe(**extra: Any) -> Any:
    values: dict[str, Any] = dict(
        intermediate_size=96, moe_intermediate_size=32, shared_expert_intermediate_size=48,
        num_experts=8, num_experts_per_tok=2, mlp_only_layers=[1], max_position_embeddings=256,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    values.update(extra)
    return transformers.Qwen2MoeConfig(**SIZES, **values, **COMMON, **REFERENCE_KW)


def _qwen2_moe_window() -> Any:
    # transformers 5: sliding layers are the even ones below max_window_layers → layer 0 only
    return _qwen2_moe(mlp_only_layers=[], use_sliding_window=True, sliding_window=5,
                      max_window_layers=2)


def _qwen3_moe() -> Any:
    return transformers.Qwen3MoeConfig(
        **SIZES, head_dim=24, intermediate_size=96, moe_intermediate_size=32, num_experts=8,
        num_experts_per_tok=3, norm_topk_prob=True, decoder_sparse_step=2,
        max_position_embeddings=256, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        **COMMON, **REFERENCE_KW)


def _olmoe() -> Any:
    return transformers.OlmoeConfig(
        **SIZES, intermediate_size=32, num_experts=8, num_experts_per_tok=2, clip_qkv=0.5,
        max_position_embeddings=256, **COMMON, **REFERENCE_KW)


def _gpt_oss() -> Any:
    return transformers.GptOssConfig(
        **SIZES, head_dim=16, intermediate_size=32, num_local_experts=8, num_experts_per_tok=2,
        sliding_window=4, swiglu_limit=0.3, max_position_embeddings=131072,
        rope_parameters=dict(GPT_OSS_ROPE), **COMMON, **REFERENCE_KW)


BUILDERS_MORE: Builders = {
    "qwen2_moe": (_qwen2_moe, "Qwen2MoeForCausalLM"),
    "qwen2_moe_window": (_qwen2_moe_window, "Qwen2MoeForCausalLM"),
    "qwen3_moe": (_qwen3_moe, "Qwen3MoeForCausalLM"),
    "olmoe": (_olmoe, "OlmoeForCausalLM"),
    "gpt_oss": (_gpt_oss, "GptOssForCausalLM"),
}


def _emphasise(model: Any, seed: int) -> None:
    """Make the small-by-init extras matter: sinks ~N(0, 1), router bias ~N(0, 0.5)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("self_attn.sinks", "mlp.router.bias")):
                scale = 1.0 if name.endswith("sinks") else 0.5
                param.copy_(scale * torch.randn(param.shape, generator=gen))


def build_more(name: str, root: Path, **save_kw: Any) -> Case:
    """Build, randomize, emphasise and save the tiny model `name` under `root/name`."""
    return build_from(BUILDERS_MORE, name, root, _emphasise, **save_kw)
