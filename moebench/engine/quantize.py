"""`quantize_model`: swap a loaded model's weights for one of the int8 modes (`quant=`), in place.

The modes themselves live in `int8.py` ("int8", "q8_0") and `w8a8.py` ("w8a8"); this module
picks each mode's stand-ins for the routed experts and the `nn.Linear` layers (attention
projections, shared/dense MLPs, an untied LM head; never the router) and installs them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from moebench.engine import w8a8
from moebench.engine.int8 import Int8Experts, Int8Linear
from moebench.engine.moe import Experts, FeedForward, MoEFeedForward
from moebench.errors import EngineError

QUANT_MODES = ("int8", "q8_0", "w8a8")


@torch.no_grad()
def quantize_model(model: nn.Module, mode: str) -> None:
    """Swap the model's weights for int8 in place (`mode`: one of QUANT_MODES, see `int8.py`
    and `w8a8.py`); raises EngineError for an unknown mode or where w8a8 cannot run."""
    if mode not in QUANT_MODES:
        raise EngineError(f"quant '{mode}' is not supported — use one of: "
                          f"{', '.join(QUANT_MODES)}")
    linear, experts = _layouts(model, mode)
    model.use_column_major_weights(False)  # int8 kernels and blocks want row-major rows
    for block in model.layers:
        ffn = block.ffn
        if isinstance(ffn, MoEFeedForward) and type(ffn.experts) is Experts:
            ffn.experts = experts(ffn.experts)
        if linear is not None:
            _linears(block.attention, linear)
            for dense in (getattr(ffn, "shared", None), ffn):
                if isinstance(dense, FeedForward):
                    _linears(dense, linear)
    tied = model.output.weight.data_ptr() == model.tok_embeddings.weight.data_ptr()
    if linear is not None and not tied:
        model.output = linear(model.output)


def _layouts(model: nn.Module, mode: str) -> tuple[Callable[[nn.Linear], nn.Module] | None,
                                                    Callable[[Experts], Experts]]:
    """The mode's stand-ins: for `nn.Linear` layers (None: keep them float) and for experts."""
    if mode == "w8a8":
        w8a8.check_supported(model.tok_embeddings.weight.device)
        return w8a8.W8A8Linear, w8a8.W8A8Experts
    return (Int8Linear if mode == "int8" else None), lambda e: Int8Experts(e, mode)


def _linears(module: nn.Module, linear: Callable[[nn.Linear], nn.Module]) -> None:
    """Replace the direct `nn.Linear` children of `module` (attention projections, MLPs)."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Linear:
            setattr(module, name, linear(child))
