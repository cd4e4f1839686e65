"""Optional `torch.compile`d decode step: one token, static shapes, every GEMV a fused reduction.

Legend: H hidden, G KV heads, R query heads per KV head, D head dim, S cache length, k experts.

Eager decode spends most of its time in MKL GEMVs at ~half the memory bandwidth; inductor's
own reductions read weights at close to full bandwidth (performance-anchors §5.4: 88% of the
roofline). The step therefore writes each matmul as multiply + sum and gathers the k chosen
experts' weights *inside* the compiled graph, where the gather fuses into the reduction (in
eager code that gather would copy weights — never do that there). Shapes are static: the KV
cache is allocated once for `length` positions and attention masks the unused tail. Supports
GQA attention (with Qwen3-MoE's / OLMoE's q/k norms and per-layer windows) and DeepSeek's MLA,
with the common MoE / dense feed-forwards (Mixtral, DBRX, DeepSeek-V2, Qwen-MoE, OLMoE);
others (GPT-OSS's sinks and biased experts) raise EngineError and stay eager. Router counts are
accumulated on-device and flushed into `RouterStats` after each generation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from moebench.engine.attention import Attention
from moebench.engine.attention_variants import VariantAttention
from moebench.engine.int8 import BLOCK, Int8Experts, Int8Linear
from moebench.engine.mla import MLAttention
from moebench.engine.model import Transformer
from moebench.engine.moe import FeedForward, MoEFeedForward
from moebench.engine.rope import apply_rope
from moebench.engine.w8a8 import has_packed_weights
from moebench.errors import EngineError


#: decoders one process may compile before dynamo refuses (see CompiledDecoder.__init__)
RECOMPILE_LIMIT = 64


def gemv(x: Tensor, weight: Tensor) -> Tensor:
    """`x [..., in] · weight [out, in]ᵀ` as a product and a sum (inductor fuses it into one GEMV)."""
    return (weight * x.unsqueeze(-2)).sum(-1)


def qgemv(x: Tensor, q: Tensor, scale: Tensor, mode: str) -> Tensor:
    """`gemv` on int8 weights `q [..., N, K]`: per-channel `scale [..., N]` (`int8`) or one
    per 32-block `[..., N, K/32]` (`q8_0`); the int8 → float conversion fuses into the read."""
    if mode == "int8":
        return gemv(x, q.to(x.dtype)) * scale.to(x.dtype)
    blocks = q.unflatten(-1, (-1, BLOCK)).to(x.dtype)  # [..., N, B, 32]
    part = (blocks * x.unflatten(-1, (-1, BLOCK)).unsqueeze(-3)).sum(-1)  # [..., N, B]
    return (part * scale.to(x.dtype)).sum(-1)


def linear(x: Tensor, module: torch.nn.Module) -> Tensor:
    """A (possibly int8) linear layer's GEMV, with its bias."""
    if isinstance(module, Int8Linear):
        out = qgemv(x, module.q, module.scale, "int8")
    else:
        out = gemv(x, module.weight)
    return out + module.bias if module.bias is not None else out


class CompiledDecoder:
    """A compiled `step(token [1, 1], position [1]) -> logits [1, 1, V]` over a fixed-size cache."""

    def __init__(self, model: Transformer, length: int) -> None:
        if has_packed_weights(model):
            raise EngineError("compiled decode cannot read quant 'w8a8' weights (fbgemm-packed, "
                              "opaque to torch.compile) — use quant='int8' or 'q8_0' with "
                              "compile_decode, or keep w8a8 eager")
        for i, block in enumerate(model.layers):
            supported = _compilable_attention(block.attention) and type(block.ffn) in (
                MoEFeedForward, FeedForward)
            if not supported:
                raise EngineError(f"compiled decode does not support layer {i} of "
                                  f"{model.args.family} yet — use the eager engine")
        self.model = model
        model.use_column_major_weights(False)  # reductions run along contiguous rows
        model.setup_cache(length)
        device = model.tok_embeddings.weight.device
        self.counts = {i: torch.zeros(model.args.moe.n_experts, dtype=torch.long, device=device)
                       for i, b in enumerate(model.layers) if isinstance(b.ffn, MoEFeedForward)}
        # Every decoder compiles the same code object (`_step`), once per model and cache
        # length: a process that compiles many models (tests, notebooks) would otherwise hit
        # dynamo's default limit of 8 recompiles and fail (fullgraph=True makes that fatal).
        limit = torch._dynamo.config.recompile_limit
        torch._dynamo.config.recompile_limit = max(limit, RECOMPILE_LIMIT)
        self._compiled: Callable[[Tensor, Tensor], Tensor] = torch.compile(
            self._step, fullgraph=True, dynamic=False)

    def warm_up(self) -> float:
        """Compile now (two calls); returns the seconds it took.

        On CPU the step is compiled with inductor's C++ wrapper: the kernels are then called
        from C++, not from generated Python, which measured 104–109 tok/s against 90–105 with
        the Python wrapper (tiny Mixtral F32, 1 thread, quiet machine, 2026-12-04).
        """
        from torch._inductor import config

        start = time.perf_counter()
        device = self.model.tok_embeddings.weight.device
        with torch.inference_mode(), config.patch(cpp_wrapper=device.type == "cpu"):
            for pos in (0, 1):  # writes junk at 0/1 — the next prefill overwrites it
                self._compiled(torch.zeros(1, 1, dtype=torch.long, device=device),
                               torch.tensor([pos], device=device))
        for counts in self.counts.values():
            counts.zero_()
        return time.perf_counter() - start

    @property
    def length(self) -> int:
        """Positions the cache holds (an eager call past it grows the cache; the step then
        recompiles once for the new size)."""
        return self.model.cache_length

    def step(self, token: Tensor, position: int) -> Tensor:
        """Logits `[1, 1, V]` for `token [1, 1]` at `position` (must be < length)."""
        return self._compiled(token, torch.tensor([position], device=token.device))

    def flush(self) -> None:
        """Move the on-device router counts into the model's RouterStats (decode phase)."""
        for layer, counts in self.counts.items():
            self.model.stats.add_counts(layer, counts.tolist())
            counts.zero_()

    def _step(self, token: Tensor, pos: Tensor) -> Tensor:
        model = self.model
        assert model.rotary is not None
        x = model.tok_embeddings(token)  # [1, 1, H]
        rope = model.rotary.cos[pos], model.rotary.sin[pos]  # [1, D] each
        keys = torch.arange(model.cache_length, device=token.device)  # [S]
        for i, block in enumerate(model.layers):
            attend = self._mla if isinstance(block.attention, MLAttention) else self._attention
            x = x + attend(block.attention, block.attention_norm(x), rope, pos, keys)
            h = block.ffn_norm(x)
            x = x + (self._moe(block.ffn, h, i) if i in self.counts else _dense(block.ffn, h))
        return linear(model.norm(x), model.output)  # [1, 1, V]

    @staticmethod
    def _attention(a: Attention, x: Tensor, rope: tuple[Tensor, Tensor], pos: Tensor,
                   keys: Tensor) -> Tensor:
        g, d = a.n_kv, a.head_dim
        q, k, v = linear(x, a.wqkv).split([a.n_heads * d, g * d, g * d], dim=-1)
        qk_norm = getattr(a, "qk_norm", None)  # VariantAttention: Qwen3-MoE "head", OLMoE "full"
        if qk_norm == "full":
            q, k = a.q_norm(q), a.k_norm(k)
        if a.clip is not None:
            q, k, v = (y.clamp(-a.clip, a.clip) for y in (q, k, v))
        q, k = q.view(1, a.n_heads, 1, d), k.view(1, g, 1, d)  # one token: [1, 1, H, D]ᵀ
        if qk_norm == "head":
            q, k = a.q_norm(q), a.k_norm(k)
        q = apply_rope(q, *rope, a.interleaved)  # [1, G·R, 1, D]
        k = apply_rope(k, *rope, a.interleaved)  # [1, G, 1, D]
        assert a.cache is not None
        a.cache.k.index_copy_(2, pos, k)
        a.cache.v.index_copy_(2, pos, v.view(1, g, 1, d))
        visible = keys <= pos  # [S]
        if a.window is not None:
            visible &= keys > pos - a.window
        scores = q.view(g, -1, d) @ a.cache.k[0].transpose(-1, -2) * a.scale  # [G, R, S]
        probs = scores.masked_fill(~visible, float("-inf")).float().softmax(-1).to(q.dtype)
        y = (probs @ a.cache.v[0]).reshape(1, 1, -1)  # [1, 1, G·R·D]
        return linear(y, a.wo)

    @staticmethod
    def _mla(a: MLAttention, x: Tensor, rope: tuple[Tensor, Tensor], pos: Tensor,
             keys: Tensor) -> Tensor:
        """`MLAttention.forward` for one token over the static cache (H heads, R latent rank)."""
        q = linear(a.q_norm(linear(x, a.wq_a)), a.wq_b) if a.low_rank_q else linear(x, a.wq)
        q_nope, q_pe = q.view(1, a.n_heads, 1, -1).split([a.dn, a.dr], dim=-1)  # [1, H, 1, ·]
        latent, k_pe = linear(x, a.wkv_a).split([a.r, a.dr], dim=-1)  # [1, 1, R], [1, 1, Dr]
        kv = linear(a.kv_norm(latent), a.wkv_b).view(1, a.n_heads, 1, -1)
        k_nope, v = kv.split([a.dn, a.dv], dim=-1)  # [1, H, 1, Dn], [1, H, 1, Dv]
        q = torch.cat((q_nope, apply_rope(q_pe, *rope, interleaved=True)), dim=-1)
        k_pe = apply_rope(k_pe[:, None], *rope, interleaved=True)  # [1, 1, 1, Dr]
        k = torch.cat((k_nope, k_pe.expand(-1, a.n_heads, -1, -1)), dim=-1)  # [1, H, 1, Dn+Dr]
        assert a.cache is not None
        a.cache.k.index_copy_(2, pos, k)
        a.cache.v.index_copy_(2, pos, v)
        scores = q @ a.cache.k.transpose(-1, -2) * a.scale  # [1, H, 1, S]
        probs = scores.masked_fill(~(keys <= pos), float("-inf")).float().softmax(-1)
        y = probs.to(q.dtype) @ a.cache.v  # [1, H, 1, Dv]
        return linear(y.reshape(1, 1, -1), a.wo)

    def _moe(self, ffn: MoEFeedForward, x: Tensor, layer: int) -> Tensor:
        flat = x.view(1, -1)  # [1, H]
        weights, ids = ffn.gate(flat)  # [1, k] each
        ids = ids[0]
        gate, up = _experts_gemv(ffn.experts, flat, ids, "w13").chunk(2, dim=-1)  # [k, I] each
        down = _experts_gemv(ffn.experts, ffn.experts.act(gate) * up, ids, "w2")  # [k, H]
        out = (down * weights[0, :, None].to(x.dtype)).sum(0)  # [H]
        self.counts[layer].index_add_(0, ids, torch.ones_like(ids))
        if ffn.shared is not None:
            shared = _dense(ffn.shared, x)
            if getattr(ffn, "shared_gate", None) is not None:
                shared = torch.sigmoid(gemv(x, ffn.shared_gate.weight)) * shared
            return out.view_as(x) + shared
        return out.view_as(x)


def _experts_gemv(experts: torch.nn.Module, x: Tensor, ids: Tensor, name: str) -> Tensor:
    """The chosen experts' `w13` or `w2` GEMVs, `[k, out]`; the gather fuses into the read."""
    if isinstance(experts, Int8Experts):
        suffix = name[1:]
        return qgemv(x, getattr(experts, "q" + suffix)[ids], getattr(experts, "s" + suffix)[ids],
                     experts.mode)
    return gemv(x, getattr(experts, name)[ids])


def _dense(ffn: FeedForward, x: Tensor) -> Tensor:
    gate, up = linear(x, ffn.w13).chunk(2, dim=-1)
    return linear(ffn.act(gate) * up, ffn.w2)


def _compilable_attention(attention: torch.nn.Module) -> bool:
    """Plain GQA, MLA, or a GQA variant without attention sinks (GPT-OSS's stay eager)."""
    if type(attention) is VariantAttention:
        return attention.sinks is None
    return type(attention) in (Attention, MLAttention)
