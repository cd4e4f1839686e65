"""Rotary position embeddings: inverse frequencies (default, linear, YaRN) and their application.

Two pair layouts exist in HF checkpoints: "rotate half" (pairs (i, i + d/2), Llama/Mixtral/DBRX)
and interleaved (pairs (i, i+1), DeepSeek's complex multiply). The YaRN maths follows
`transformers.modeling_rope_utils._compute_yarn_parameters`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from moebench.engine.config import RopeArgs


def yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    """YaRN's attention-temperature correction `0.1 · mscale · ln(scale) + 1` (1 when scale ≤ 1)."""
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def inv_freq(rope: RopeArgs, dim: int) -> tuple[Tensor, float]:
    """Inverse frequencies `[dim/2]` (fp32) and the factor cos/sin are multiplied by."""
    base = 1.0 / (rope.theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    if rope.kind == "linear":
        return base / rope.factor, 1.0
    if rope.kind != "yarn":
        return base, 1.0
    return _yarn_inv_freq(rope, dim), _yarn_attention_factor(rope)


def _yarn_attention_factor(rope: RopeArgs) -> float:
    if rope.attention_factor is not None:
        return float(rope.attention_factor)
    if rope.mscale and rope.mscale_all_dim:
        return yarn_mscale(rope.factor, rope.mscale) / yarn_mscale(rope.factor, rope.mscale_all_dim)
    return yarn_mscale(rope.factor)


def _yarn_inv_freq(rope: RopeArgs, dim: int) -> Tensor:
    def correction_dim(rotations: float) -> float:
        return dim * math.log(rope.original_max_position / (rotations * 2 * math.pi)) / (
            2 * math.log(rope.theta))

    low, high = correction_dim(rope.beta_fast), correction_dim(rope.beta_slow)
    if rope.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # avoid a zero-width ramp
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    pos_freqs = rope.theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim)
    extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (rope.factor * pos_freqs)
    keep = 1 - ramp  # share of the un-scaled frequency per pair
    return interpolation * (1 - keep) + extrapolation * keep


class Rotary:
    """Precomputed cos/sin tables for positions [0, length), grown on demand."""

    def __init__(self, rope: RopeArgs, dim: int, dtype: torch.dtype, device: torch.device) -> None:
        self.rope, self.dim, self.dtype, self.device = rope, dim, dtype, device
        self.inv_freq, self.scale = inv_freq(rope, dim)
        self.cos = self.sin = torch.empty(0)
        self.length = 0

    def ensure(self, length: int) -> None:
        """Make the tables cover `length` positions."""
        if length <= self.length:
            return
        freqs = torch.arange(length, dtype=torch.float)[:, None] * self.inv_freq[None, :]  # [S, d/2]
        if not self.rope.interleaved:
            freqs = torch.cat((freqs, freqs), dim=-1)  # [S, d] rotate-half layout
        dtype = torch.float32 if self.rope.interleaved else self.dtype  # DeepSeek rotates in fp32
        self.cos = (freqs.cos() * self.scale).to(self.device, dtype)
        self.sin = (freqs.sin() * self.scale).to(self.device, dtype)
        self.length = length

    def __call__(self, start: int, n: int) -> tuple[Tensor, Tensor]:
        """(cos, sin) for positions [start, start + n)."""
        self.ensure(start + n)
        return self.cos[start:start + n], self.sin[start:start + n]


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor, interleaved: bool) -> Tensor:
    """Rotate `x` `[B, H, T, D]` by the position tables `[T, D]` (or `[T, D/2]` interleaved)."""
    if interleaved:
        pairs = x.float().unflatten(-1, (-1, 2))  # [B, H, T, D/2, 2]
        x0, x1 = pairs[..., 0], pairs[..., 1]
        out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
        return out.flatten(-2).type_as(x)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
