"""The `"w8a8"` mode: int8 weights *and* int8 activations, run by fbgemm (`quant="w8a8"`).

Every matmul weight `int8` covers (routed experts one by one, attention projections, shared and
dense MLPs, the LM head; not the router) is rounded to int8 with one fp32 scale per output
channel — the same rounding as `int8.per_channel` — and prepacked once for fbgemm
(`torch.ops.quantized.linear_prepack`). Each call then quantises its activations to uint8
(fbgemm: one scale and zero point per call; `matmul` first scales every row to the same range,
so in effect per token) and runs fbgemm's int8 GEMM with int32 accumulation
(`torch.ops.quantized.linear_dynamic`), fp32 out. That is the design of llama.cpp's
q8_0 × q8_0 dot product (its activations are int8 per block of 32, ours per token).

`reduce_range`: without AVX512-VNNI, fbgemm multiplies u8 × s8 pairs into int16 lanes
(`vpmaddubsw`) that saturate when activations use all 8 bits (measured: 16×512 ones give 259
instead of 512 when fbgemm is forced to AVX2/AVX512); `reduce_range=True` quantises
activations to 7 bits so the pair sums fit, at ~2× the rounding error. VNNI
(`vpdpbusd`) accumulates straight into int32 and never saturates. `needs_reduce_range` asks the
kernel itself (a one-off probe) instead of trusting CPU flags, so an env override
(`FBGEMM_ENABLE_INSTRUCTIONS`) or an AVX-VNNI-only CPU, where fbgemm has no VNNI kernel, still
gets the safe setting.

CPU with fbgemm only (x86); the packed weights are opaque to `torch.compile`, so
`compile_decode` refuses this mode (use `int8`/`q8_0` there).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor, nn

from moebench.engine.int8 import per_channel
from moebench.engine.moe import Experts
from moebench.errors import EngineError

MODE = "w8a8"


def check_supported(device: torch.device) -> None:
    """Raise EngineError unless fbgemm can run here (CPU, an x86 build of torch)."""
    if device.type != "cpu":
        raise EngineError(f"quant 'w8a8' runs on CPU only (fbgemm), not {device.type} — "
                          "use quant='int8' or a float dtype there")
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        raise EngineError("quant 'w8a8' needs torch's fbgemm kernels (x86 CPUs) and this torch "
                          "has none — use quant='int8'")


def pack(weight: Tensor) -> tuple[Any, int]:
    """`weight [N, K]` → fbgemm's packed per-channel int8 weight, and its int8 + scale bytes."""
    q, scale = per_channel(weight)  # [N, K] int8, [N] fp32
    zeros = torch.zeros(q.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # quantized-tensor constructors warn they are deprecated
        warnings.simplefilter("ignore", UserWarning)
        qweight = torch._make_per_channel_quantized_tensor(q, scale.double(), zeros, 0)
        packed = torch.ops.quantized.linear_prepack(qweight, None)
    return packed, q.numel() + scale.numel() * 4


def matmul(x: Tensor, packed: Any) -> Tensor:
    """`x [n, K] · Wᵀ` with int8 activations, in x's dtype.

    fbgemm quantises a call's activations with one scale over all its rows, so in a prefill a
    row of small values would keep only a few levels; each row is first divided by its own
    max |x| (and the output multiplied back: the product is linear in each row), which makes
    the one scale fit every row: per-token 8-bit activations. One row (decode) needs none.
    """
    rr = needs_reduce_range()
    if x.shape[0] == 1:
        return torch.ops.quantized.linear_dynamic(x.float(), packed, rr).to(x.dtype)
    row = x.float().abs().amax(-1, keepdim=True).clamp_min(1e-20)  # [n, 1]
    out = torch.ops.quantized.linear_dynamic(x.float() / row, packed, rr)  # [n, N]
    return (out * row).to(x.dtype)


@lru_cache(maxsize=1)
def needs_reduce_range() -> bool:
    """Whether fbgemm's kernel saturates on full-range u8 activations (no VNNI path): a
    16×512 all-ones product must come out 512; a saturating kernel gives ~259."""
    ones = torch.ones(16, 512)
    packed, _ = pack(ones)
    out = torch.ops.quantized.linear_dynamic(ones[:1], packed, False)  # [1, 16]
    return bool((out - 512).abs().max() > 1.0)


class W8A8Linear(nn.Module):
    """A `nn.Linear` stand-in holding an fbgemm-packed int8 weight (bias kept in float)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.packed, self.nbytes = pack(linear.weight.data)
        self.bias = linear.bias

    def packed_bytes(self) -> int:
        """Bytes of the int8 weight and its per-channel scales (fbgemm's padding not counted)."""
        return self.nbytes

    def forward(self, x: Tensor) -> Tensor:
        out = matmul(x.reshape(-1, x.shape[-1]), self.packed)  # [n, N]
        out = out.view(*x.shape[:-1], -1)
        return out + self.bias if self.bias is not None else out


class W8A8Experts(Experts):
    """Stacked experts as one fbgemm-packed int8 weight per expert and matrix."""

    def __init__(self, experts: Experts) -> None:
        nn.Module.__init__(self)
        self.act, self.n_experts = experts.act, experts.n_experts
        self.p13: list[Any] = []  # per expert: packed w13 [2I, H]
        self.p2: list[Any] = []  # per expert: packed w2 [H, I]
        self.nbytes = 0
        for name, packs in (("w13", self.p13), ("w2", self.p2)):
            for w in getattr(experts, name).data:  # one expert at a time
                packed, nbytes = pack(w)
                packs.append(packed)
                self.nbytes += nbytes
            setattr(experts, name, None)  # free the float copy before the next matrix

    def packed_bytes(self) -> int:
        """Bytes of every expert's int8 weights and scales."""
        return self.nbytes

    def expert_bytes(self) -> int:
        return self.nbytes // self.n_experts

    def expert(self, x: Tensor, e: int) -> Tensor:
        gate, up = matmul(x, self.p13[e]).chunk(2, dim=-1)  # [n, I] each
        return matmul(self.act(gate) * up, self.p2[e])  # [n, H]


def has_packed_weights(model: nn.Module) -> bool:
    """Whether any of `model`'s layers holds fbgemm-packed w8a8 weights."""
    return any(isinstance(m, (W8A8Linear, W8A8Experts)) for m in model.modules())
