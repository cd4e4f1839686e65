"""GPT-OSS mixture of experts: biased router, biased experts with a clamped SwiGLU.

Legend: T tokens, H hidden size, E experts, k experts per token, I expert width.

Differences from `moe.MoEFeedForward` (whose routing loop, telemetry and decode/prefill paths
are reused as they are):
- router logits carry a bias `[E]`; top-k of the logits, softmax over the k (`moe.topk_softmax`);
- each expert has biases: `gu = x·W13ₑᵀ + b13ₑ`, `gate = min(gu_gate, limit)`,
  `up = clamp(gu_up, ±limit)`, `out = ((up + 1) · gate · σ(α · gate))·W2ₑᵀ + b2ₑ`
  (α = `swiglu_alpha` 1.702, limit = `swiglu_limit` 7).
The checkpoint stores `gate_up_proj [E, H, 2I]` with gate and up *interleaved* on the last dim;
the family's weight map de-interleaves and transposes it to the engine's `w13 [E, 2I, H]`
(gate rows, then up rows), so the expert matmuls run on contiguous row-major views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moebench.engine.config import ModelArgs
from moebench.engine.moe import Experts, MoEFeedForward, Route, topk_softmax


class ClampedSwiGLUExperts(Experts):
    """Stacked experts with biases `b13 [E, 2I]`, `b2 [E, H]` and GPT-OSS's clamped SwiGLU."""

    def __init__(self, dim: int, hidden: int, n_experts: int, alpha: float, limit: float) -> None:
        super().__init__(dim, hidden, n_experts)
        self.b13 = nn.Parameter(torch.empty(n_experts, 2 * hidden))  # [E, 2I]: gate, then up
        self.b2 = nn.Parameter(torch.empty(n_experts, dim))  # [E, H]
        self.alpha, self.limit = alpha, limit

    def expert(self, x: Tensor, e: int) -> Tensor:
        """Expert `e` on tokens `x [n, H]` → `[n, H]`."""
        gate, up = F.linear(x, self.w13[e], self.b13[e]).chunk(2, dim=-1)  # [n, I] each
        gate = gate.clamp(max=self.limit)
        up = up.clamp(-self.limit, self.limit)
        glu = gate * torch.sigmoid(gate * self.alpha)
        return F.linear((up + 1) * glu, self.w2[e], self.b2[e])


class BiasedMoEFeedForward(MoEFeedForward):
    """GPT-OSS MoE block: router with a bias, top-k-then-softmax, clamped SwiGLU experts."""

    def __init__(self, args: ModelArgs, layer: int) -> None:
        super().__init__(args, layer)
        moe = args.moe
        self.router = nn.Linear(args.dim, moe.n_experts, bias=True)  # [E, H] + [E]
        self.experts = ClampedSwiGLUExperts(args.dim, moe.ffn_dim, moe.n_experts,
                                            moe.swiglu_alpha, moe.swiglu_limit)

    def gate(self, x: Tensor) -> Route:
        """Top-k of the biased logits, softmax over the k."""
        return topk_softmax(self.router(x), self.moe.top_k)  # [T, k] each
