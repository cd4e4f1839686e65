"""Normalisation layers: RMSNorm (HF Llama style, computed in fp32) and bias-free LayerNorm (DBRX)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Norm(nn.Module):
    """`kind="rms"`: `w · rmsnorm(x.float()).to(dtype)`; `kind="layer"`: LayerNorm without bias."""

    def __init__(self, dim: int, eps: float, kind: str = "rms") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps, self.kind = eps, kind

    def forward(self, x: Tensor) -> Tensor:
        shape = (x.shape[-1],)
        if self.kind == "layer":
            return F.layer_norm(x, shape, self.weight, None, self.eps)
        return self.weight * F.rms_norm(x.float(), shape, eps=self.eps).to(x.dtype)
