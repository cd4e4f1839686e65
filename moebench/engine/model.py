"""The decoder: embedding → blocks (attention + MoE or dense FFN) → norm → lm head.

In the spirit of gpt-fast's mixtral-moe/model.py and nanoGPT: one `ModelArgs` describes every
supported family, the blocks are pre-norm residual, and the KV cache is static (allocated by
`setup_cache`, written in place). Legend: B batch, T tokens, H hidden size, V vocabulary.

Parameter names are the engine's own (`layers.3.ffn.experts.w13`); `families/*` map each
checkpoint's names onto them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from moebench.engine.attention import Attention
from moebench.engine.attention_variants import VariantAttention
from moebench.engine import hugepages
from moebench.engine.config import ModelArgs
from moebench.engine.mla import MLAttention
from moebench.engine.moe import FeedForward, MoEFeedForward
from moebench.engine.moe_oss import BiasedMoEFeedForward
from moebench.engine.norm import Norm
from moebench.engine.rope import Rotary
from moebench.engine.telemetry import RouterStats


class Block(nn.Module):
    """Pre-norm residual block: `x + attn(norm(x))`, then `h + ffn(norm(h))`."""

    def __init__(self, args: ModelArgs, layer: int) -> None:
        super().__init__()
        self.attention_norm = Norm(args.dim, args.norm_eps, args.norm)
        self.attention = _attention(args, layer)
        self.ffn_norm = Norm(args.dim, args.norm_eps, args.norm)
        self.ffn = _ffn(args, layer)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], start: int) -> Tensor:
        h = x + self.attention(self.attention_norm(x), rope, start)
        return h + self.ffn(self.ffn_norm(h))


def _attention(args: ModelArgs, layer: int) -> Attention | MLAttention:
    """MLA (DeepSeek), a GQA variant (q/k norm, sinks, per-layer window) or plain GQA."""
    if args.mla is not None:
        return MLAttention(args)
    if args.qk_norm or args.attn_sinks or args.layer_types:
        return VariantAttention(args, layer)
    return Attention(args)


def _ffn(args: ModelArgs, layer: int) -> nn.Module:
    """The layer's feed-forward: a dense MLP, GPT-OSS's biased MoE, or the common MoE."""
    if not args.is_moe_layer(layer):
        return FeedForward(args.dim, args.dense_ffn_dim, args.moe.activation)
    if args.moe.experts == "clamped_swiglu":
        return BiasedMoEFeedForward(args, layer)
    return MoEFeedForward(args, layer)


class Transformer(nn.Module):
    """A decoder-only MoE language model for batch-1 generation with a static KV cache."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(Block(args, i) for i in range(args.n_layers))
        self.norm = Norm(args.dim, args.norm_eps, args.norm)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        self.stats = RouterStats(
            [args.moe.n_experts if args.is_moe_layer(i) else 0 for i in range(args.n_layers)])
        for block in self.layers:
            if isinstance(block.ffn, MoEFeedForward):
                block.ffn.stats = self.stats
        self.rotary: Rotary | None = None
        self.cache_length = 0

    @property
    def rope_dim(self) -> int:
        """Dimensions RoPE rotates per head (DeepSeek rotates only its decoupled part)."""
        mla = self.args.mla
        return mla.qk_rope_head_dim if mla is not None else self.args.head_dim

    def setup_cache(self, length: int) -> None:
        """Make the KV caches and RoPE tables hold at least `length` positions (contents kept)."""
        if length <= self.cache_length:
            return
        length = max(length, 2 * self.cache_length)  # grow geometrically when stepping past the end
        weight = self.tok_embeddings.weight
        if self.rotary is None:
            self.rotary = Rotary(self.args.rope, self.rope_dim, weight.dtype, weight.device)
        self.rotary.ensure(length)
        for block in self.layers:
            block.attention.make_cache(length, weight.dtype, weight.device)
        self.cache_length = length

    def forward(self, idx: Tensor, start: int = 0, last_only: bool = False) -> Tensor:
        """Logits `[B, T, V]` (or `[B, 1, V]` with `last_only`) for tokens `idx [B, T]` at `start`.

        The tokens' keys/values are written to the cache at positions [start, start + T).
        """
        t = idx.shape[1]
        self.setup_cache(start + t)
        assert self.rotary is not None
        rope = self.rotary(start, t)  # ([T, D], [T, D])
        x = self.tok_embeddings(idx)  # [B, T, H]
        for block in self.layers:
            x = block(x, rope, start)
        if last_only:
            x = x[:, -1:]
        return self.output(self.norm(x))  # [B, T, V]

    @torch.no_grad()
    def use_column_major_weights(self, enable: bool = True) -> None:
        """Store matmul weights column-major (same shapes, transposed strides), or back.

        `F.linear(x, W)` then hands MKL a row-major `Wᵀ`, whose fp32 GEMV reads memory
        1.2–1.8× faster on the CPUs measured (performance-anchors §5.2; bf16 is the other way
        round, so eager fp32 on CPU only). The compiled decode step wants row-major weights
        (its reductions run along contiguous rows). One tensor is copied at a time.
        """
        for param in self._matmul_weights():
            if _column_major(param) != enable:
                param.data = _relaid(param.data, enable)

    def column_major_weights(self) -> bool:
        """Whether the matmul weights are stored column-major (`use_column_major_weights`)."""
        return any(_column_major(param) for param in self._matmul_weights())

    def _matmul_weights(self) -> list[nn.Parameter]:
        """The float matrices F.linear reads (not the embedding, nor a head tied to it)."""
        head = getattr(self.output, "weight", None)  # an int8 head has none (`int8.py`)
        tied = head is not None and head.data_ptr() == self.tok_embeddings.weight.data_ptr()
        return [param for name, param in self.named_parameters()
                if param.dim() >= 2 and name.endswith((".weight", ".w13", ".w2"))
                and "tok_embeddings" not in name and not (tied and name == "output.weight")]

    def weight_bytes(self) -> int:
        """Bytes held by the parameters (tied weights counted once)."""
        seen: set[int] = set()
        total = 0
        for p in self.parameters():
            if p.data_ptr() not in seen:
                seen.add(p.data_ptr())
                total += p.numel() * p.element_size()
        for name, b in self.named_buffers():  # int8 weights and their scales (`int8.py`)
            if name.rsplit(".", 1)[-1] in ("q", "scale", "q13", "s13", "q2", "s2"):
                total += b.numel() * b.element_size()
        for module in self.modules():  # fbgemm-packed w8a8 weights are neither (`w8a8.py`)
            packed_bytes = getattr(module, "packed_bytes", None)
            total += packed_bytes() if packed_bytes is not None else 0
        return total

    @torch.no_grad()
    def active_bytes_per_token(self) -> int:
        """Weight bytes one decode step reads: all but the unpicked routed experts."""
        skipped = 0
        for block in self.layers:
            if isinstance(block.ffn, MoEFeedForward):
                per_expert = block.ffn.experts.expert_bytes()
                skipped += (self.args.moe.n_experts - self.args.moe.top_k) * per_expert
        embedding = self.tok_embeddings.weight
        untouched_embedding = 0 if self.args.tie_embeddings else embedding.numel() * embedding.element_size()
        return self.weight_bytes() - skipped - untouched_embedding + embedding.shape[1] * embedding.element_size()


def _column_major(param: Tensor) -> bool:
    return param.stride(-2) == 1 and param.stride(-1) != 1


def _relaid(t: Tensor, column_major: bool) -> Tensor:
    """`t` copied column-major or row-major, into huge pages where it can (`hugepages.py`)."""
    stride = (hugepages.column_major_stride(t.shape) if column_major
              else torch.empty(t.shape, device="meta").stride())
    copy = hugepages.huge_copy(t, stride)
    if copy is not None:
        return copy
    return t.transpose(-1, -2).contiguous().transpose(-1, -2) if column_major else t.contiguous()
