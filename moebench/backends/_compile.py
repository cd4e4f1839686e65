"""`--compile` for the torch backend: the compiled decode step's length, the one-off compile,
and the eager fallback with its reason.

`Engine.compile_decode(length)` builds a static-shape decode step over a KV cache of `length`
positions. A request whose prompt + max_tokens exceeds it decodes eagerly (and grows the
cache, after which the step recompiles once inside a timed request), so the length is the
longest prompt + max_tokens of the run's requests when `prepare` gets them; otherwise a
caller's hint (`moebench speed`: its longest cell) or the model's context capped at 1024.
The compile time is reported apart from the load time (`extra["compile_s"]`); a model that
cannot be compiled (no C compiler, an attention variant compiled.py lacks, `w8a8` weights, inductor
failing on the device) runs eager and says why in `extra["compile_error"]`, never raising.
Imports nothing heavy: the Ray driver uses `budget_requests` without torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from moebench.errors import EngineError
from moebench.types import ModelInfo, Request

if TYPE_CHECKING:
    from moebench.engine import Engine

#: the static length when no request is known at load: the model's context, at most this
DEFAULT_LENGTH = 1024
#: the step's warm-up writes positions 0 and 1; tiny budgets still get a usable cache
MIN_LENGTH = 16
#: longest reason kept from an inductor error (its messages run to pages of C++ output)
REASON_CHARS = 200


def budget_requests(requests: Iterable[Request]) -> list[Request]:
    """The requests that differ in what sizes the cache (system, prompt, max_tokens), each once
    and without their case fields: what the length is chosen from, small enough to send to
    a Ray actor."""
    seen: dict[tuple[Any, ...], Request] = {}
    for request in requests:
        key = (request.system, request.prompt, request.options.get("max_tokens"))
        if key not in seen:
            seen[key] = dataclasses.replace(request, case={})
    return list(seen.values())


def decode_length(needs: Sequence[int], context: int | None, hint: int | None) -> int:
    """Positions the compiled cache holds: the largest of `needs` (prompt + max_tokens per
    request), else `hint` within the model's context (plus the slack a `moebench speed`
    prompt may overshoot its target by: a request past the length decodes eagerly and the
    step then recompiles inside a timed request), else the context capped at 1024."""
    if needs:
        length = max(needs)
    elif hint:
        length = min(hint, context + MIN_LENGTH + context // 50) if context else hint
    else:
        length = min(context or DEFAULT_LENGTH, DEFAULT_LENGTH)
    return max(length, MIN_LENGTH)


def compile_engine(engine: Engine, info: ModelInfo, requests: Sequence[Request],
                   need: Callable[[Request], int | None], hint: int | None) -> ModelInfo:
    """Compile `engine`'s decode step; `info` with `compile_s` and `compile_length` in its
    extra, or with `compile_error` (the engine then stays eager). `need(request)` is the
    request's prompt tokens + max_tokens (None when it cannot be tokenized)."""
    needs = [n for n in (need(r) for r in budget_requests(requests)) if n is not None]
    length = decode_length(needs, info.context_length, hint)
    try:
        seconds = engine.compile_decode(length)
    except Exception as error:  # any failure to compile means eager, never a crashed run
        engine.compiled = None
        return dataclasses.replace(info, extra={**info.extra, "compile_error": reason(error)})
    return dataclasses.replace(info, extra={**info.extra, "compile_s": seconds,
                                            "compile_length": length})


def reason(error: BaseException) -> str:
    """One line saying why compiling failed: the engine's own message (it names the fix), or
    the first line of inductor's inner error, cut short."""
    inner = getattr(error, "inner_exception", None) or error  # dynamo's BackendCompilerFailed
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > REASON_CHARS:
        text = text[:REASON_CHARS - 1] + "…"
    if isinstance(inner, EngineError) or not text:
        return text or type(inner).__name__
    return f"{type(inner).__name__}: {text}"


def compile_note(info: ModelInfo) -> str | None:
    """The note for a model `--compile` could not compile, or None."""
    why = (info.extra or {}).get("compile_error")
    if not why:
        return None
    return f"{info.name}: --compile could not compile its decode step, running it eager ({why})"

