"""qwen2_moe, qwen3_moe, olmoe and gpt_oss against transformers on tiny checkpoints (fp32).

Logits after prefill and 16 KV-cache decode steps within 1e-4, greedy tokens identical for 64
new tokens, parameter counts equal to transformers', plus what only these families have:
sinks, per-layer windows, dense layers among MoE ones, MXFP4 experts, GPT-OSS's RoPE spellings.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from moebench.engine import load_model, mxfp4, supported_families

from tiny_models import (
    PROMPT, TOL, Case, bfloat16_row_max, compiled_matches_eager, greedy_tokens, max_diff,
)
from tiny_models_more import BUILDERS_MORE, GPT_OSS_ROPE

NAMES = list(BUILDERS_MORE)


def test_families_are_registered() -> None:
    assert {"qwen2_moe", "qwen3_moe", "olmoe", "gpt_oss"} <= set(supported_families())


@pytest.mark.parametrize("name", NAMES)
def test_logits_match_after_prefill_and_16_decode_steps(checkpoints_more: dict[str, Case],
                                                        engines_more: dict[str, Any],
                                                        name: str) -> None:
    assert max_diff(engines_more[name], checkpoints_more[name].hf, steps=16) < TOL


@pytest.mark.parametrize("name", NAMES)
def test_greedy_tokens_equal_transformers_generate(checkpoints_more: dict[str, Case],
                                                   engines_more: dict[str, Any],
                                                   name: str) -> None:
    ours, theirs = greedy_tokens(engines_more[name], checkpoints_more[name], n=64)
    assert ours == theirs


@pytest.mark.parametrize(("name", "moe_layers", "shared"), [
    ("qwen2_moe", 1, 1), ("qwen2_moe_window", 2, 1), ("qwen3_moe", 1, 0), ("olmoe", 2, 0),
    ("gpt_oss", 2, 0),
])
def test_info_counts_match_transformers(checkpoints_more: dict[str, Case],
                                        engines_more: dict[str, Any],
                                        name: str, moe_layers: int, shared: int) -> None:
    info, hf = engines_more[name].info, checkpoints_more[name].hf
    assert info.family == name.removesuffix("_window")
    assert info.total_params == sum(p.numel() for p in hf.parameters())
    assert (info.moe_layers, info.shared_experts) == (moe_layers, shared)
    assert info.active_params < info.total_params


def test_dense_layers_have_no_router_counts(engines_more: dict[str, Any]) -> None:
    # decoder_sparse_step 2: layer 0 dense, layer 1 MoE (top-3 of 8)
    engine = engines_more["qwen3_moe"]
    engine.reset_router_stats()
    prompt = engine.tokenizer.encode(PROMPT)
    new = engine.generate(prompt, max_new_tokens=4, ignore_eos=True)
    stats = engine.router_stats()
    assert stats.prefill[0] == [] and stats.decode[0] == []
    assert sum(stats.prefill[1]) == 3 * len(prompt)
    assert sum(stats.decode[1]) == 3 * (len(new) - 1)


@pytest.mark.parametrize(("name", "windows"), [
    ("gpt_oss", [4, None]), ("qwen2_moe_window", [5, None]), ("qwen2_moe", [None, None]),
])
def test_sliding_window_per_layer(engines_more: dict[str, Any], name: str,
                                  windows: list[Any]) -> None:
    assert [block.attention.window for block in engines_more[name].model.layers] == windows


def test_sinks_take_part(checkpoints_more: dict[str, Case], engines_more: dict[str, Any]) -> None:
    engine = load_model(checkpoints_more["gpt_oss"].folder)
    with torch.no_grad():
        for block in engine.model.layers:
            block.attention.sinks.fill_(float("-inf"))  # a sink nobody attends to = no sink
    assert max_diff(engine, checkpoints_more["gpt_oss"].hf) > 1e-2
    assert max_diff(engines_more["gpt_oss"], checkpoints_more["gpt_oss"].hf) < TOL


@pytest.mark.parametrize("name", ["qwen2_moe", "qwen3_moe", "olmoe", "gpt_oss"])
def test_torch_backend_request_to_completion(checkpoints_more: dict[str, Case], name: str) -> None:
    from moebench.backends import BackendConfig, create_backend
    from moebench.types import Request, ScorerSpec

    backend = create_backend("torch", BackendConfig())
    try:
        model = str(checkpoints_more[name].folder)
        info = backend.prepare(model)
        assert (info.family, info.experts) == (name, 8)
        request = Request(suite="s", task="t", case_id="c", prompt="Seven plus five is",
                          system="Answer briefly.", scorer=ScorerSpec("exact"),
                          options={"max_tokens": 6, "temperature": 0, "seed": 1})
        done = backend.generate(model, request)
    finally:
        backend.close()
    assert 0 < done.output_tokens <= 6 and done.timing_source == "engine"
    assert done.router is not None
    moe_layers = [i for i, row in enumerate(done.router["prefill"]) if row]
    assert moe_layers == [i for i in range(2) if loaded_is_moe(name, i)]
    assert sum(done.router["prefill"][moe_layers[0]]) == done.prompt_tokens * info.top_k


def loaded_is_moe(name: str, layer: int) -> bool:
    """Which layers of the tiny checkpoints route through experts."""
    dense = {"qwen2_moe": {1}, "qwen3_moe": {0}}.get(name, set())
    return layer not in dense


def _rewrite_config(case: Case, folder: Path, edit: Any) -> Path:
    shutil.copytree(case.folder, folder)
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def _legacy(cfg: dict[str, Any]) -> None:
    params = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = params.pop("rope_theta")
    cfg["rope_scaling"] = params


@pytest.mark.parametrize(("label", "edit"), [
    ("legacy", _legacy),  # transformers-4 Hub spelling: rope_theta + rope_scaling
    ("absent", lambda cfg: cfg.pop("rope_parameters")),  # GptOssConfig defaults apply
])
def test_gpt_oss_rope_spellings(checkpoints_more: dict[str, Case], tmp_path: Path, label: str,
                                edit: Any) -> None:
    engine = load_model(_rewrite_config(checkpoints_more["gpt_oss"], tmp_path / label, edit))
    assert engine.args.rope.theta == GPT_OSS_ROPE["rope_theta"]
    assert engine.args.rope.kind == "yarn" and not engine.args.rope.truncate
    assert max_diff(engine, checkpoints_more["gpt_oss"].hf) < TOL


HUB_CONFIGS = {  # the published models' config.json values that set the parameter count
    "qwen2_moe": ("Qwen2MoeForCausalLM", 2.69, dict(  # Qwen1.5-MoE-A2.7B
        hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
        shared_expert_intermediate_size=5632, num_experts=60, num_experts_per_tok=4,
        num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16, vocab_size=151936)),
    "qwen3_moe": ("Qwen3MoeForCausalLM", 3.35, dict(  # Qwen3-30B-A3B
        hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768, num_experts=128,
        num_experts_per_tok=8, num_hidden_layers=48, num_attention_heads=32,
        num_key_value_heads=4, head_dim=128, vocab_size=151936, norm_topk_prob=True)),
    "olmoe": ("OlmoeForCausalLM", 1.28, dict(  # OLMoE-1B-7B-0924
        hidden_size=2048, intermediate_size=1024, num_experts=64, num_experts_per_tok=8,
        num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=16, vocab_size=50304)),
    "gpt_oss": ("GptOssForCausalLM", 4.19, dict(  # gpt-oss-20b (3.6B active without embeddings)
        hidden_size=2880, intermediate_size=2880, num_local_experts=32, num_experts_per_tok=4,
        num_hidden_layers=24, num_attention_heads=64, num_key_value_heads=8, head_dim=64,
        vocab_size=201088)),
}


@pytest.mark.parametrize("family", list(HUB_CONFIGS))
def test_hub_scale_parameter_counts(family: str) -> None:
    import transformers

    from moebench.engine.config import count_params
    from moebench.engine.families import get_family

    cls, active_b, values = HUB_CONFIGS[family]
    total, active = count_params(get_family(family).read_config({"model_type": family, **values}))
    config = getattr(transformers, cls.replace("ForCausalLM", "Config"))(**values)
    with torch.device("meta"):  # no memory: shapes only
        reference = getattr(transformers, cls)(config)
    assert total == sum(p.numel() for p in reference.parameters())
    assert round(active / 1e9, 2) == active_b  # shared/notes/moe-architectures.md §3


def test_qwen3_head_dim_comes_from_config(engines_more: dict[str, Any]) -> None:
    assert engines_more["qwen3_moe"].args.head_dim == 24  # hidden / heads would say 16


def _packed(gen: torch.Generator, rows: int, cols: int, experts: int) -> tuple[torch.Tensor, ...]:
    blocks = torch.randint(0, 256, (experts, rows, cols // 32, 16), dtype=torch.uint8,
                           generator=gen)
    scales = torch.randint(119, 123, (experts, rows, cols // 32), dtype=torch.uint8, generator=gen)
    return blocks, scales


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mxfp4_dequantize_is_bit_exact(dtype: torch.dtype) -> None:
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    blocks, scales = _packed(torch.Generator().manual_seed(0), 6, 64, 3)
    ref = convert_moe_packed_tensors(blocks, scales, dtype=dtype).transpose(1, 2)  # [E, out, in]
    assert torch.equal(mxfp4.dequantize(blocks, scales, dtype), ref)


def test_gpt_oss_mxfp4_checkpoint_matches_dequantised_reference(checkpoints_more: dict[str, Case],
                                                                tmp_path: Path) -> None:
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    case = checkpoints_more["gpt_oss"]
    folder = tmp_path / "mxfp4"
    shutil.copytree(case.folder, folder)
    tensors = load_file(folder / "model.safetensors")
    reference = copy.deepcopy(case.hf)
    gen = torch.Generator().manual_seed(1)
    for i, layer in enumerate(reference.model.layers):
        for proj in ("gate_up_proj", "down_proj"):
            name = f"model.layers.{i}.mlp.experts.{proj}"
            experts, cols, rows = tensors.pop(name).shape  # stored [E, in, out]
            blocks, scales = _packed(gen, rows, cols, experts)
            tensors[name + "_blocks"], tensors[name + "_scales"] = blocks, scales
            with torch.no_grad():
                getattr(layer.mlp.experts, proj).copy_(
                    convert_moe_packed_tensors(blocks, scales, dtype=torch.float32))
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    assert max_diff(load_model(folder), reference, steps=4) < TOL


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_logits_match_transformers_in_bfloat16(checkpoints_more: dict[str, Case],
                                                        name: str) -> None:
    # as in test_parity: bf16 rounding may flip a near-tie routing choice, so judge most positions
    _, row_max = bfloat16_row_max(checkpoints_more[name])  # [T]
    assert (row_max < 0.06).float().mean().item() >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen3_moe", "olmoe"])  # q/k norm per head, over the full row
def test_compiled_decode_covers_qk_norm_variants(checkpoints_more: dict[str, Case],
                                                 name: str) -> None:
    compiled_matches_eager(checkpoints_more[name].folder)


def test_compiled_decode_refuses_attention_sinks(checkpoints_more: dict[str, Case]) -> None:
    from moebench.errors import EngineError

    engine = load_model(checkpoints_more["gpt_oss"].folder)
    with pytest.raises(EngineError, match="does not support layer 0 of gpt_oss"):
        engine.compile_decode(length=64)
