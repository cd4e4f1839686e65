"""`--native` for the torch backend: the C decode step (`Engine.native_decode`), its build
time, and the fallback with its reason.

The step (moebench/engine/native/) covers GQA + routed-expert models (Mixtral, DBRX) in fp32,
fp16 or `q8_0` on CPU; it is built once per machine (~0.5 s with the system C compiler, then
cached) and recorded apart from the load time (`extra["native_s"]`, `extra["decode_step"]`).
A model it does not cover runs as it would have without `--native` (with `--compile` too:
compiled, else eager) and `extra["native_error"]` says why, never raising.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from moebench.types import ModelInfo

if TYPE_CHECKING:
    from moebench.engine import Engine


def native_engine(engine: Engine, info: ModelInfo) -> tuple[ModelInfo, bool]:
    """Switch `engine` to the C decode step: (`info` with what happened, whether it did)."""
    from moebench.errors import EngineError

    try:
        seconds = engine.native_decode()
    except (EngineError, OSError) as error:  # not covered, or no compiler: decode as before
        extra = {**info.extra, "native_error": str(error)[:200]}
        return dataclasses.replace(info, extra=extra), False
    extra = {**info.extra, "native_s": seconds, "decode_step": "native"}
    return dataclasses.replace(info, extra=extra), True


def native_note(info: ModelInfo) -> str | None:
    """The note for a model `--native` could not take, or None."""
    why = (info.extra or {}).get("native_error")
    if not why:
        return None
    return f"{info.name}: --native does not cover it, decoding in PyTorch ({why})"
