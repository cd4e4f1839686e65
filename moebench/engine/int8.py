"""Int8 modes: the engine keeps weights as int8 with their scales (`quant=`).

Three layouts, chosen with `load_model(..., quant=NAME)` or `--dtype NAME` on the CLI:

* `"int8"` — every matmul weight (experts, attention, shared/dense MLPs, LM head; not the
  router) requantised to int8 with one fp32 scale per output channel, run by
  `torch._weight_int8pack_mm`. On CPU that kernel is fast only for bf16 activations (the
  fp32 path is a slow fallback: measured 4–16× slower than the bf16 one), so activations are
  cast to bf16 for those matmuls and back: the price is per-channel rounding of the weights
  plus bf16 rounding of the activations (see benchmarks/engine_vs_llamacpp.py for the cost).
* `"q8_0"` — the routed experts keep Q8_0's own layout: int8 values and one scale per block
  of 32, exactly what a Q8_0 GGUF stores (recovered exactly from its dequantised values:
  d = max|w| / 127 per block), dequantised per expert call in eager code. Same numbers as the
  dequantised model; other weights stay in the float dtype.
* `"w8a8"` — the weights of `"int8"`, rounded the same way, but prepacked for fbgemm and run
  with int8 activations too (quantised per token, int32 accumulation): `w8a8.py`. CPU (x86)
  only, eager only.

`quantize.py` swaps a loaded model's layers for these (`quantize_model`).

All cut the resident expert bytes ~4× (fp32 → int8). The compiled decode step reads the int8
weights inside its fused reductions (`compiled.py`), which is where int8 pays off in time.
Loading still dequantises once (peak memory = the float model); the float tensors are freed
layer by layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moebench.engine.moe import Experts
from moebench.errors import EngineError

BLOCK = 32


def per_channel(weight: Tensor) -> tuple[Tensor, Tensor]:
    """`weight [..., N, K]` → int8 values `[..., N, K]` and fp32 scales `[..., N]`."""
    w = weight.float()
    scale = (w.abs().amax(-1) / 127).clamp_min(1e-12)
    return torch.round(w / scale[..., None]).clamp(-127, 127).to(torch.int8), scale


def q8_0_blocks(weight: Tensor) -> tuple[Tensor, Tensor]:
    """`weight [..., N, K]` → int8 values `[..., N, K]` and one scale per 32 values
    `[..., N, K/32]` (fp16-rounded, as Q8_0 stores it), llama.cpp's Q8_0 rounding."""
    if weight.shape[-1] % BLOCK:
        raise EngineError(f"q8_0 needs rows of a multiple of {BLOCK} values, got "
                          f"{weight.shape[-1]} — use quant='int8'")
    w = weight.float().unflatten(-1, (-1, BLOCK))  # [..., N, B, 32]
    d = (w.abs().amax(-1) / 127).half().float()  # [..., N, B]
    q = torch.round(w / d.clamp_min(1e-30)[..., None]).clamp(-127, 127).to(torch.int8)
    return q.flatten(-2), d


def int8_matmul(x: Tensor, q: Tensor, scale: Tensor) -> Tensor:
    """`x [n, K] · (q [N, K] × scale [N])ᵀ` with the bf16 int8 kernel, in x's dtype."""
    return torch._weight_int8pack_mm(x.to(torch.bfloat16), q, scale.to(torch.bfloat16)).to(x.dtype)


class Int8Linear(nn.Module):
    """A bias-free `nn.Linear` stand-in holding int8 weights and per-channel scales."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        q, scale = per_channel(linear.weight.data)
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)
        self.bias = linear.bias

    def forward(self, x: Tensor) -> Tensor:
        out = int8_matmul(x.reshape(-1, x.shape[-1]), self.q, self.scale)
        out = out.view(*x.shape[:-1], -1)
        return out + self.bias if self.bias is not None else out


class Int8Experts(Experts):
    """Stacked experts as int8: per-channel (`int8`) or Q8_0 blocks (`q8_0`)."""

    def __init__(self, experts: Experts, mode: str) -> None:
        nn.Module.__init__(self)
        self.act, self.mode = experts.act, mode
        split = per_channel if mode == "int8" else q8_0_blocks
        for name in ("w13", "w2"):
            pairs = [split(w) for w in getattr(experts, name).data]  # one expert at a time
            self.register_buffer(f"q{name[1:]}", torch.stack([q for q, _ in pairs]))  # q13, q2
            self.register_buffer(f"s{name[1:]}", torch.stack([s for _, s in pairs]))  # s13, s2
            setattr(experts, name, None)  # free the float copy before the next one
        self.n_experts = self.q13.shape[0]

    def expert_bytes(self) -> int:
        return sum(t[0].numel() * t.element_size() for t in (self.q13, self.s13, self.q2, self.s2))

    def weight(self, name: str, e: int, dtype: torch.dtype) -> Tensor:
        """Expert `e`'s `w13`/`w2` dequantised to `dtype` (for code that wants floats)."""
        q, s = getattr(self, f"q{name[1:]}")[e], getattr(self, f"s{name[1:]}")[e]
        if self.mode == "int8":
            return q.to(dtype) * s[:, None].to(dtype)
        return (q.unflatten(-1, (-1, BLOCK)).to(dtype) * s[..., None].to(dtype)).flatten(-2)

    def expert(self, x: Tensor, e: int) -> Tensor:
        if self.mode == "int8":
            gate, up = int8_matmul(x, self.q13[e], self.s13[e]).chunk(2, dim=-1)
            return int8_matmul(self.act(gate) * up, self.q2[e], self.s2[e])
        gate, up = F.linear(x, self.weight("w13", e, x.dtype)).chunk(2, dim=-1)
        return F.linear(self.act(gate) * up, self.weight("w2", e, x.dtype))
