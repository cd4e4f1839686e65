"""Routers against each family's transformers router and hand-checked formulas; telemetry."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import transformers

from moebench.engine.config import MoEArgs
from moebench.engine.moe import (route_softmax_topk_pnorm, route_softmax_topk_renorm,
                                 route_softmax_topk_scaled)
from moebench.engine.telemetry import load_cv, usage_entropy

H, E, T = 16, 8, 32


def _sorted(weights: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order each token's (expert, weight) pairs by expert id so set-equal choices compare equal."""
    ids, order = ids.sort(dim=-1)
    return weights.gather(-1, order), ids


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(T, H, generator=gen), torch.randn(E, H, generator=gen)


def test_mixtral_router_matches_transformers() -> None:
    x, w = _inputs()
    config = transformers.MixtralConfig(hidden_size=H, num_local_experts=E, num_experts_per_tok=2)
    router = transformers.models.mixtral.modeling_mixtral.MixtralTopKRouter(config)
    router.weight.data.copy_(w)
    _, ref_w, ref_ids = router(x)
    ours_w, ours_ids = route_softmax_topk_renorm(x, w, MoEArgs(E, 2, 4, "softmax_topk_renorm"))
    torch.testing.assert_close(_sorted(ours_w, ours_ids), _sorted(ref_w, ref_ids))
    torch.testing.assert_close(ours_w.sum(-1), torch.ones(T))  # renormalised


@pytest.mark.parametrize("p", [1.0, 2.0, None])
def test_dbrx_router_matches_transformers_pnorm(p: float | None) -> None:
    x, w = _inputs(1)
    config = transformers.DbrxConfig(
        d_model=H, n_heads=4, attn_config={"kv_n_heads": 2, "rope_theta": 1e4},
        ffn_config={"moe_num_experts": E, "moe_top_k": 3, "moe_normalize_expert_weights": p})
    ffn = transformers.models.dbrx.modeling_dbrx.DbrxFFN(config)
    ffn.router.layer.weight.data.copy_(w)
    ref_w, ref_ids = ffn.route_tokens_to_experts(ffn.router(x))
    ours_w, ours_ids = route_softmax_topk_pnorm(x, w, MoEArgs(E, 3, 4, "softmax_topk_pnorm", norm_p=p))
    torch.testing.assert_close(_sorted(ours_w, ours_ids), _sorted(ref_w, ref_ids))
    if p is not None:
        torch.testing.assert_close(ours_w.norm(p=p, dim=-1), torch.ones(T))


@pytest.mark.parametrize("method", ["greedy", "group_limited_greedy"])
def test_deepseek_v2_router_matches_transformers(method: str) -> None:
    x, w = _inputs(2)
    config = transformers.DeepseekV2Config(
        hidden_size=H, num_attention_heads=4, n_routed_experts=E, num_experts_per_tok=3,
        topk_method=method, n_group=4,
        topk_group=2, routed_scaling_factor=2.5)
    router = transformers.models.deepseek_v2.modeling_deepseek_v2.DeepseekV2TopkRouter(config)
    router.weight.data.copy_(w)
    _, ref_w, ref_ids = router(x)
    moe = MoEArgs(E, 3, 4, "softmax_topk_scaled", scaling=2.5, n_group=4, topk_group=2,
                  group_limited=method == "group_limited_greedy")
    ours_w, ours_ids = route_softmax_topk_scaled(x, w, moe)
    torch.testing.assert_close(_sorted(ours_w, ours_ids), _sorted(ref_w, ref_ids))


def _logit_router(logits: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """x = [[1]] and W = the logits as a column, so that F.linear(x, W) == the given logits."""
    return torch.ones(1, 1), torch.tensor(logits)[:, None]


def test_deepseek_group_limited_choice_and_unnormalised_weights() -> None:
    # groups of 2: g0 = [5, 0], g1 = [4.9, 0], g2 = [4.8, 0], g3 = [0, 0]
    x, w = _logit_router([5.0, 0.0, 4.9, 0.0, 4.8, 0.0, 0.0, 0.0])
    greedy = MoEArgs(8, 3, 4, "softmax_topk_scaled", scaling=2.0, n_group=4, topk_group=2)
    limited = MoEArgs(8, 3, 4, "softmax_topk_scaled", scaling=2.0, n_group=4, topk_group=2,
                      group_limited=True)
    probs = torch.tensor([5.0, 0.0, 4.9, 0.0, 4.8, 0.0, 0.0, 0.0]).softmax(-1)
    g_w, g_ids = _sorted(*route_softmax_topk_scaled(x, w, greedy))
    l_w, l_ids = _sorted(*route_softmax_topk_scaled(x, w, limited))
    assert g_ids.tolist() == [[0, 2, 4]]
    chosen = set(l_ids[0].tolist())
    assert {0, 2} <= chosen <= {0, 1, 2, 3}  # only groups g0, g1 survive: expert 4 (g2) is out
    torch.testing.assert_close(g_w[0], probs[[0, 2, 4]] * 2.0)  # × scaling, no renorm
    assert not math.isclose(g_w.sum().item(), 1.0)


def test_mixtral_formula_by_hand() -> None:
    x, w = _logit_router([1.0, 3.0, 2.0, 0.0])
    weights, ids = route_softmax_topk_renorm(x, w, MoEArgs(4, 2, 4, "softmax_topk_renorm"))
    assert ids.tolist() == [[1, 2]]
    e = torch.tensor([3.0, 2.0]).exp()
    torch.testing.assert_close(weights[0], e / e.sum())


def test_router_counts_per_phase(engines: dict[str, Any]) -> None:
    engine = engines["deepseek_v2"]  # layer 0 dense, layers 1-2 MoE, top-2
    engine.reset_router_stats()
    prompt = engine.tokenizer.encode("A router picks the top experts")
    new = engine.generate(prompt, max_new_tokens=5, ignore_eos=True)
    stats = engine.router_stats()
    assert stats.prefill[0] == [] and stats.decode[0] == []  # the dense layer
    for layer in (1, 2):
        assert len(stats.prefill[layer]) == 8
        assert sum(stats.prefill[layer]) == len(prompt) * 2
        assert sum(stats.decode[layer]) == (len(new) - 1) * 2
    assert stats.total()[1] == [a + b for a, b in zip(stats.prefill[1], stats.decode[1])]
    engine.reset_router_stats()
    assert sum(map(sum, engine.router_stats().prefill)) == 0
    assert engine.router_stats().as_dict()["decode"][1] == [0] * 8


@pytest.mark.parametrize(("counts", "cv", "entropy"), [
    ([5, 5, 5, 5], 0.0, 1.0),
    ([20, 0, 0, 0], math.sqrt(3), 0.0),
    ([2, 2, 0, 0], 1.0, 0.5),
])
def test_balance_helpers(counts: list[int], cv: float, entropy: float) -> None:
    assert load_cv(counts) == pytest.approx(cv)
    assert usage_entropy(counts) == pytest.approx(entropy)


def test_balance_helpers_empty_are_nan() -> None:
    assert math.isnan(load_cv([0, 0])) and math.isnan(usage_entropy([0, 0]))
    assert usage_entropy([1, 1, 1, 1], normalized=False) == pytest.approx(2.0)
