"""Mixture-of-experts feed-forward: routers, routed experts, shared experts, dense MLP.

Legend: T tokens, H hidden size, E routed experts, k experts per token, I expert width.

Routers are plain functions `(x [T, H], weight [E, H], moe) -> (weights [T, k] fp32, ids [T, k])`
in `ROUTERS`, one per family formula (a new family with a new formula adds one function).
Experts are stored stacked, gate and up fused: `w13 [E, 2I, H]`, `w2 [E, H, I]`. On CPU the
fastest eager schedule is a loop over the experts actually hit, on weight *views*:
for one token (decode) the k ids come out with `.tolist()`; for many tokens (prefill) the
(token, slot) pairs are sorted by expert and each expert runs one GEMM on its slice.
Never gather expert weights per token and never run all experts densely (see
shared/notes/performance-anchors.md §3).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moebench.engine.config import ModelArgs, MoEArgs
from moebench.engine.telemetry import RouterStats
from moebench.errors import EngineError

Route = tuple[Tensor, Tensor]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"silu": F.silu, "gelu": F.gelu}


def route_softmax_topk_renorm(x: Tensor, weight: Tensor, moe: MoEArgs) -> Route:
    """Mixtral: softmax (fp32) over all experts → top-k → renormalise to sum 1."""
    probs = F.linear(x, weight).float().softmax(dim=-1)  # [T, E]
    top, ids = probs.topk(moe.top_k, dim=-1)  # [T, k]
    return top / top.sum(dim=-1, keepdim=True), ids


def route_softmax_topk_pnorm(x: Tensor, weight: Tensor, moe: MoEArgs) -> Route:
    """DBRX: softmax in the logits' dtype → top-k → divide by the p-norm (p = normalize weights)."""
    logits = F.linear(x, weight)  # [T, E]
    top, ids = logits.softmax(dim=-1, dtype=logits.dtype).topk(moe.top_k, dim=-1)
    if moe.norm_p is not None:
        top = top / torch.norm(top, p=moe.norm_p, dim=-1, keepdim=True)
    return top.float(), ids


def route_softmax_topk_scaled(x: Tensor, weight: Tensor, moe: MoEArgs) -> Route:
    """DeepSeek-V2: fp32 softmax → top-k (optionally group-limited) → × routed_scaling_factor."""
    scores = F.linear(x.float(), weight.float()).softmax(dim=-1)  # [T, E]
    if moe.group_limited:
        scores = _keep_top_groups(scores, moe.n_group, moe.topk_group)
    top, ids = scores.topk(moe.top_k, dim=-1, sorted=False)
    return top * moe.scaling, ids


def route_softmax_topk(x: Tensor, weight: Tensor, moe: MoEArgs) -> Route:
    """Qwen1.5-MoE, OLMoE (`norm_topk_prob: false`): softmax (fp32) → top-k, no renormalisation."""
    probs = F.linear(x, weight).float().softmax(dim=-1)  # [T, E]
    top, ids = probs.topk(moe.top_k, dim=-1)  # [T, k]
    return top, ids


def route_topk_softmax(x: Tensor, weight: Tensor, moe: MoEArgs) -> Route:
    """Top-k of the logits → softmax over those k (GPT-OSS; its router bias: `moe_oss.py`)."""
    return topk_softmax(F.linear(x, weight), moe.top_k)


def topk_softmax(logits: Tensor, k: int) -> Route:
    """Top-k of `logits [T, E]`, their softmax as fp32 weights `[T, k]`, and the ids."""
    top, ids = logits.topk(k, dim=-1)  # [T, k]
    return top.softmax(dim=-1, dtype=top.dtype).float(), ids


def _keep_top_groups(scores: Tensor, n_group: int, topk_group: int) -> Tensor:
    """Zero the experts outside the `topk_group` groups with the highest max score."""
    grouped = scores.unflatten(-1, (n_group, -1))  # [T, G, E/G]
    best = grouped.amax(dim=-1).topk(topk_group, dim=-1, sorted=False).indices  # [T, g]
    keep = torch.zeros_like(grouped[..., 0], dtype=torch.bool).scatter_(1, best, True)  # [T, G]
    return grouped.masked_fill(~keep[..., None], 0.0).flatten(-2)


#: router kind (MoEArgs.router) → formula
ROUTERS: dict[str, Callable[[Tensor, Tensor, MoEArgs], Route]] = {
    "softmax_topk_renorm": route_softmax_topk_renorm,
    "softmax_topk_pnorm": route_softmax_topk_pnorm,
    "softmax_topk_scaled": route_softmax_topk_scaled,
    "softmax_topk": route_softmax_topk,
    "topk_softmax": route_topk_softmax,
}


class FeedForward(nn.Module):
    """Dense SwiGLU MLP with gate and up fused: `w2(act(gate) * up)`."""

    def __init__(self, dim: int, hidden: int, activation: str = "silu") -> None:
        super().__init__()
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)  # [2I, H]: gate rows, then up rows
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.act = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(self.act(gate) * up)


class Experts(nn.Module):
    """E stacked SwiGLU experts; runs only the experts the router picked."""

    def __init__(self, dim: int, hidden: int, n_experts: int, activation: str = "silu") -> None:
        super().__init__()
        self.w13 = nn.Parameter(torch.empty(n_experts, 2 * hidden, dim))  # [E, 2I, H]
        self.w2 = nn.Parameter(torch.empty(n_experts, dim, hidden))  # [E, H, I]
        self.act = _activation(activation)
        self.n_experts = n_experts

    def expert_bytes(self) -> int:
        """Weight bytes one expert's matmuls read."""
        return (self.w13[0].numel() + self.w2[0].numel()) * self.w13.element_size()

    def expert(self, x: Tensor, e: int) -> Tensor:
        """Expert `e` on tokens `x [n, H]`, through views of the stacked weights."""
        gate, up = F.linear(x, self.w13[e]).chunk(2, dim=-1)  # [n, I] each
        return F.linear(self.act(gate) * up, self.w2[e])  # [n, H]

    def one_token(self, x: Tensor, weights: Tensor, ids: list[int]) -> Tensor:
        """Decode path: x `[1, H]`, the k expert ids as ints (no sort, no gather)."""
        out = self.expert(x, ids[0]) * weights[:, 0:1].to(x.dtype)
        for slot in range(1, len(ids)):
            out += self.expert(x, ids[slot]) * weights[:, slot:slot + 1].to(x.dtype)
        return out

    def grouped(self, x: Tensor, weights: Tensor, ids: Tensor) -> tuple[Tensor, list[int]]:
        """Prefill path: sort (token, slot) pairs by expert, one GEMM per hit expert.

        Returns the combined output `[T, H]` and the tokens routed to each expert.
        """
        k = ids.shape[-1]
        flat = ids.flatten()  # [T*k]
        order = flat.argsort(stable=True)  # slots grouped by expert
        counts = torch.bincount(flat, minlength=self.n_experts).tolist()
        tokens = order // k  # [T*k] token of each sorted slot
        scale = weights.flatten()[order].to(x.dtype)[:, None]  # [T*k, 1]
        out = torch.zeros_like(x)
        start = 0
        for e, n in enumerate(counts):
            if n:
                rows = tokens[start:start + n]
                out.index_add_(0, rows, self.expert(x[rows], e) * scale[start:start + n])
                start += n
        return out, counts


class MoEFeedForward(nn.Module):
    """Router + routed experts (+ shared experts), reporting choices to `RouterStats`."""

    def __init__(self, args: ModelArgs, layer: int) -> None:
        super().__init__()
        moe = args.moe
        if moe.router not in ROUTERS:
            raise EngineError(f"unknown router '{moe.router}' — known: {', '.join(ROUTERS)}")
        self.moe, self.layer = moe, layer
        self.router = nn.Linear(args.dim, moe.n_experts, bias=False)  # [E, H]
        self.experts = Experts(args.dim, moe.ffn_dim, moe.n_experts, moe.activation)
        self.shared = (FeedForward(args.dim, moe.shared_ffn_dim, moe.activation)
                       if moe.shared_ffn_dim else None)
        #: Qwen2-MoE scales the shared expert by sigmoid(shared_gate(x)), one gate value per token
        self.shared_gate = (nn.Linear(args.dim, 1, bias=False)  # [1, H]
                            if moe.shared_gate and self.shared is not None else None)
        self.route = ROUTERS[moe.router]
        self.stats: RouterStats | None = None  # set by the Transformer

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape  # [B, T, H]
        x = x.reshape(-1, shape[-1])  # [T, H]
        weights, ids = self.gate(x)  # [T, k] each
        if x.shape[0] == 1:
            id_list = ids[0].tolist()
            out = self.experts.one_token(x, weights, id_list)
            if self.stats is not None:
                self.stats.add_ids(self.layer, id_list)
        else:
            out, counts = self.experts.grouped(x, weights, ids)
            if self.stats is not None:
                self.stats.add_counts(self.layer, counts)
        if self.shared is not None:
            shared = self.shared(x)
            if self.shared_gate is not None:
                shared = torch.sigmoid(self.shared_gate(x)) * shared
            out = out + shared
        return out.view(shape)

    def gate(self, x: Tensor) -> Route:
        """Routing weights (fp32) and expert ids, `[T, k]` each, for tokens `x [T, H]`."""
        return self.route(x, self.router.weight, self.moe)


def _activation(name: str) -> Callable[[Tensor], Tensor]:
    if name not in ACTIVATIONS:
        raise EngineError(f"activation '{name}' is not supported — known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]
