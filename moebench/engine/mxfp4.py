"""MXFP4 dequantisation, for the expert weights of OpenAI's gpt-oss checkpoints.

Each weight row is cut into groups of 32 values; a group is 16 bytes of packed 4-bit E2M1
codes (low nibble = even position, high nibble = odd) and one uint8 power-of-two scale with
bias 127. Bit-exact with transformers' `integrations.mxfp4.convert_moe_packed_tensors`
(before its final transpose).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: the 16 E2M1 code points, indexed by the 4-bit code
FP4_VALUES = (+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
              -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
SCALE_BIAS = 127


def dequantize(blocks: Tensor, scales: Tensor, dtype: torch.dtype) -> Tensor:
    """`blocks [..., G, 16]` uint8 and `scales [..., G]` uint8 → values `[..., G·32]` in `dtype`."""
    if blocks.shape[:-1] != scales.shape:
        raise ValueError(f"MXFP4 blocks {list(blocks.shape)} do not match scales "
                         f"{list(scales.shape)}")
    lut = torch.tensor(FP4_VALUES, dtype=dtype, device=blocks.device)
    codes = torch.stack((blocks & 0x0F, blocks >> 4), dim=-1).flatten(-2)  # [..., G, 32]
    values = lut[codes.long()]
    exponents = (scales.to(torch.int32) - SCALE_BIAS)[..., None]  # [..., G, 1]
    return torch.ldexp(values, exponents).to(dtype).flatten(-2)
