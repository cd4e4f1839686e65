"""Routers and MoE/attention building blocks of qwen2_moe, qwen3_moe, olmoe and gpt_oss.

Each router formula against the family's transformers router module and by hand; the gated
shared expert, GPT-OSS's clamped SwiGLU experts and attention sinks against transformers.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import transformers
from transformers.models.gpt_oss import modeling_gpt_oss
from transformers.models.olmoe import modeling_olmoe
from transformers.models.qwen2_moe import modeling_qwen2_moe
from transformers.models.qwen3_moe import modeling_qwen3_moe

from moebench.engine.attention_variants import attend_with_sinks
from moebench.engine.config import ModelArgs, MoEArgs
from moebench.engine.moe import (MoEFeedForward, route_softmax_topk, route_softmax_topk_renorm,
                                 route_topk_softmax, topk_softmax)
from moebench.engine.moe_oss import BiasedMoEFeedForward

H, E, T = 16, 8, 32


def _sorted(weights: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order each token's (expert, weight) pairs by expert id so set-equal choices compare equal."""
    ids, order = ids.sort(dim=-1)
    return weights.gather(-1, order), ids


def _inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(T, H, generator=gen), torch.randn(E, H, generator=gen)


def _moe(router: str, k: int = 3) -> MoEArgs:
    return MoEArgs(E, k, 4, router)


def _hf_config(cls: type, norm: bool) -> object:
    return cls(hidden_size=H, num_attention_heads=4, num_experts=E, num_experts_per_tok=3,
               norm_topk_prob=norm)


@pytest.mark.parametrize(("router_cls", "config_cls", "norm", "ours"), [
    (modeling_qwen2_moe.Qwen2MoeTopKRouter, transformers.Qwen2MoeConfig, False, route_softmax_topk),
    (modeling_qwen2_moe.Qwen2MoeTopKRouter, transformers.Qwen2MoeConfig, True,
     route_softmax_topk_renorm),
    (modeling_qwen3_moe.Qwen3MoeTopKRouter, transformers.Qwen3MoeConfig, True,
     route_softmax_topk_renorm),
    (modeling_olmoe.OlmoeTopKRouter, transformers.OlmoeConfig, False, route_softmax_topk),
])
def test_softmax_routers_match_transformers(router_cls: type, config_cls: type, norm: bool,
                                            ours: object) -> None:
    x, w = _inputs(3)
    router = router_cls(_hf_config(config_cls, norm))
    router.weight.data.copy_(w)
    _, ref_w, ref_ids = router(x)
    moe = _moe("softmax_topk_renorm" if norm else "softmax_topk")
    ours_w, ours_ids = ours(x, w, moe)  # type: ignore[operator]
    torch.testing.assert_close(_sorted(ours_w, ours_ids), _sorted(ref_w, ref_ids))
    sums = ours_w.sum(-1)
    assert torch.allclose(sums, torch.ones(T)) if norm else bool((sums < 1).all())


def test_gpt_oss_router_matches_transformers() -> None:
    x, w = _inputs(4)
    bias = torch.randn(E, generator=torch.Generator().manual_seed(5))
    config = transformers.GptOssConfig(hidden_size=H, num_attention_heads=4, num_local_experts=E,
                                       num_experts_per_tok=3)
    router = modeling_gpt_oss.GptOssTopKRouter(config)
    router.weight.data.copy_(w)
    router.bias.data.copy_(bias)
    _, ref_w, ref_ids = router(x)
    ours_w, ours_ids = topk_softmax(F.linear(x, w, bias), 3)
    torch.testing.assert_close(_sorted(ours_w, ours_ids), _sorted(ref_w, ref_ids))
    plain_w, plain_ids = route_topk_softmax(x, w, _moe("topk_softmax"))  # the bias-free form
    torch.testing.assert_close(_sorted(plain_w, plain_ids), _sorted(*topk_softmax(x @ w.T, 3)))


def _logit_router(logits: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """x = [[1]] and W = the logits as a column, so that F.linear(x, W) == the given logits."""
    return torch.ones(1, 1), torch.tensor(logits)[:, None]


@pytest.mark.parametrize(("router", "expected"), [
    # softmax over all four, keep the top two as they are (Qwen1.5-MoE, OLMoE)
    (route_softmax_topk, torch.tensor([1.0, 3.0, 2.0, 0.0]).softmax(-1)[[1, 2]]),
    # top two of the logits, softmax over just those (GPT-OSS) = renormalised softmax (Qwen3-MoE)
    (route_topk_softmax, torch.tensor([3.0, 2.0]).softmax(-1)),
    (route_softmax_topk_renorm, torch.tensor([3.0, 2.0]).softmax(-1)),
])
def test_formulas_by_hand(router: object, expected: torch.Tensor) -> None:
    x, w = _logit_router([1.0, 3.0, 2.0, 0.0])
    weights, ids = router(x, w, MoEArgs(4, 2, 4, "softmax_topk"))  # type: ignore[operator]
    assert ids.tolist() == [[1, 2]]
    torch.testing.assert_close(weights[0], expected)


def _args(**moe: object) -> ModelArgs:
    return ModelArgs(family="test", vocab_size=10, dim=H, n_layers=1, n_heads=4, n_kv_heads=2,
                     head_dim=4, moe=MoEArgs(E, 2, 12, **moe))  # type: ignore[arg-type]


def test_gated_shared_expert_matches_qwen2_moe_block() -> None:
    config = transformers.Qwen2MoeConfig(hidden_size=H, num_attention_heads=4, num_experts=E,
                                         num_experts_per_tok=2, moe_intermediate_size=12,
                                         shared_expert_intermediate_size=20)
    torch.manual_seed(6)
    block = modeling_qwen2_moe.Qwen2MoeSparseMoeBlock(config)
    for p in block.parameters():
        p.data.normal_(0, 0.3)
    ours = MoEFeedForward(_args(router="softmax_topk", shared_ffn_dim=20, n_shared=1,
                                shared_gate=True), layer=0)
    ours.router.weight.data.copy_(block.gate.weight)
    ours.experts.w13.data.copy_(block.experts.gate_up_proj)
    ours.experts.w2.data.copy_(block.experts.down_proj)
    shared = block.shared_expert
    ours.shared.w13.weight.data.copy_(torch.cat((shared.gate_proj.weight, shared.up_proj.weight)))
    ours.shared.w2.weight.data.copy_(shared.down_proj.weight)
    ours.shared_gate.weight.data.copy_(block.shared_expert_gate.weight)  # type: ignore[union-attr]
    x = torch.randn(1, 5, H)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), block(x))
        torch.testing.assert_close(ours(x[:, :1]), block(x[:, :1]))  # the one-token decode path


def test_clamped_swiglu_experts_match_gpt_oss_mlp() -> None:
    config = transformers.GptOssConfig(
        hidden_size=H, num_attention_heads=4, num_local_experts=E, num_experts_per_tok=2,
        intermediate_size=12, swiglu_limit=0.5, experts_implementation="eager")
    torch.manual_seed(7)
    mlp = modeling_gpt_oss.GptOssMLP(config)
    for p in mlp.parameters():
        p.data.normal_(0, 0.3)
    ours = BiasedMoEFeedForward(_args(router="topk_softmax", experts="clamped_swiglu",
                                      swiglu_limit=0.5), layer=0)
    order = torch.cat((torch.arange(0, 24, 2), torch.arange(1, 24, 2)))  # gate/up de-interleaved
    ours.router.load_state_dict(mlp.router.state_dict())
    ours.experts.w13.data.copy_(mlp.experts.gate_up_proj.transpose(1, 2)[:, order])
    ours.experts.b13.data.copy_(mlp.experts.gate_up_proj_bias[:, order])
    ours.experts.w2.data.copy_(mlp.experts.down_proj.transpose(1, 2))
    ours.experts.b2.data.copy_(mlp.experts.down_proj_bias)
    x = torch.randn(1, 5, H)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), mlp(x)[0])
        torch.testing.assert_close(ours(x[:, :1]), mlp(x[:, :1])[0])


def _hf_sink_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sinks: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
    module = torch.nn.Module()
    module.num_key_value_groups, module.sinks = q.shape[1] // k.shape[1], sinks
    additive = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    out, _ = modeling_gpt_oss.eager_attention_forward(module, q, k, v, additive[None, None], 0.5)
    return out.transpose(1, 2)  # back to [B, H, T, D]


@pytest.mark.parametrize(("start", "t", "window"), [
    (0, 7, None), (0, 7, 3), (6, 1, None), (6, 1, 3), (4, 3, 2),  # prefill, decode, chunk
])
def test_attention_sinks_match_transformers_eager(start: int, t: int, window: int | None) -> None:
    gen = torch.Generator().manual_seed(8)
    s = start + t
    q = torch.randn(1, 4, t, 8, generator=gen)
    k, v = torch.randn(1, 2, s, 8, generator=gen), torch.randn(1, 2, s, 8, generator=gen)
    sinks = torch.randn(4, generator=gen)
    pos = torch.arange(start, s)[:, None]
    key = torch.arange(s)[None, :]
    mask = (key <= pos) & ((key > pos - window) if window else True)
    ours = attend_with_sinks(q, k, v, start, 0.5, window, sinks)
    torch.testing.assert_close(ours, _hf_sink_attention(q, k, v, sinks, mask))


def test_sink_at_minus_infinity_is_plain_attention() -> None:
    gen = torch.Generator().manual_seed(9)
    q, k, v = (torch.randn(1, 4, 6, 8, generator=gen) for _ in range(3))
    ours = attend_with_sinks(q, k, v, 0, 8 ** -0.5, None, torch.full((4,), -math.inf))
    plain = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, plain)
