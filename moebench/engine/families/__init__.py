"""Registry of supported model families, keyed by config.json's `model_type`.

A family is two functions: `read_config(cfg) -> ModelArgs` (map the HF config keys) and
`load_weights(args, ckpt) -> state dict` (map the checkpoint's tensor names onto the engine's).
Each lives in its own module here and registers itself with `register`; see
`moebench/engine/README.md` for how to add one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from moebench.engine.config import ModelArgs
from moebench.engine.weights import Checkpoint
from moebench.errors import EngineError

ConfigReader = Callable[[dict[str, Any]], ModelArgs]
WeightMap = Callable[[ModelArgs, Checkpoint], dict[str, Tensor]]


@dataclass(frozen=True)
class Family:
    """How to read one `model_type`'s config and weights."""

    name: str
    read_config: ConfigReader
    load_weights: WeightMap


_FAMILIES: dict[str, Family] = {}


def register(name: str, read_config: ConfigReader, load_weights: WeightMap) -> Family:
    """Register (or replace) the family for `model_type == name`."""
    family = Family(name, read_config, load_weights)
    _FAMILIES[name] = family
    return family


def supported() -> list[str]:
    """Names of the supported `model_type`s, sorted."""
    return sorted(_FAMILIES)


def get_family(model_type: str | None) -> Family:
    """The family for `model_type`, or an EngineError listing the supported ones."""
    family = _FAMILIES.get(model_type or "")
    if family is None:
        raise EngineError(f"model_type '{model_type}' is not supported by the built-in engine — "
                          f"supported: {', '.join(supported())} (or run it with --backend ollama)")
    return family


# Import for their side effect (registration); add new families to this line.
from moebench.engine.families import (  # noqa: E402,F401
    dbrx, deepseek_v2, gpt_oss, granitemoe, mixtral, olmoe, qwen2_moe, qwen3_moe)
