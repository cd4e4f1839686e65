"""Autoregressive decoding: prefill, KV-cache decode steps, sampling, stopping, timings.

Kept apart from the model (as gpt-fast does): `generate` runs one prompt through the model's
static cache, samples greedily or with temperature / top-k / top-p from a seeded generator,
stops on EOS, a stop condition or the token budget, streams each token to a callback, stops
with `GenerationTimeout` once a wall-clock `deadline` (a `perf_counter` value) has passed
(checked after the prefill and between decode steps), and reports prefill and decode time
separately (`time.perf_counter`; reading the sampled token
with `.item()` synchronises CUDA before the clock is read).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import torch
from torch import Tensor

from moebench.engine.model import Transformer
from moebench.errors import EngineError


class GenerationTimeout(EngineError):
    """The generation ran past its deadline (the caller's per-request timeout)."""


@dataclass(frozen=True)
class Sampling:
    """How to pick the next token: greedy when temperature == 0."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None


@dataclass(frozen=True)
class GenerationStats:
    """What one `generate` call measured."""

    prompt_tokens: int
    new_tokens: int
    #: prompt forward pass + picking the first token
    prefill_s: float
    #: first token emitted → last token emitted (new_tokens − 1 decode steps)
    decode_s: float
    #: start → first token handed to the callback
    ttft_s: float
    #: "eos" | "stop" | "length"
    stop_reason: str

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Decode steps per second (the first token comes from the prefill, so it is excluded)."""
        steps = self.new_tokens - 1
        return steps / self.decode_s if steps > 0 and self.decode_s > 0 else None


def sample(logits: Tensor, sampling: Sampling, generator: torch.Generator | None) -> int:
    """Next token id from `logits [V]`."""
    if sampling.temperature <= 0:
        return int(logits.argmax())
    logits = logits.float() / sampling.temperature
    if 0 < sampling.top_k < logits.shape[-1]:
        kth = logits.topk(sampling.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1)
    if sampling.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        drop = sorted_probs.cumsum(-1) - sorted_probs > sampling.top_p  # keeps at least one
        probs = probs.scatter(0, order, sorted_probs.masked_fill(drop, 0.0))
    return int(torch.multinomial(probs, 1, generator=generator))


def generate(model: Transformer, prompt: list[int], max_new_tokens: int, sampling: Sampling,
             eos_ids: Collection[int] = (), should_stop: Callable[[list[int]], bool] | None = None,
             on_token: Callable[[int], None] | None = None,
             step: Callable[[Tensor, int], Tensor] | None = None,
             deadline: float | None = None) -> tuple[list[int], GenerationStats]:
    """Generate up to `max_new_tokens` after `prompt`; returns the new tokens (EOS included).

    `step(token [1, 1], position) -> logits [1, 1, V]` runs one decode step (default: the
    eager model; a compiled step from `compiled.CompiledDecoder` can stand in).
    """
    if not prompt:
        raise EngineError("empty prompt — give at least one token")
    if max_new_tokens < 1:
        return [], GenerationStats(len(prompt), 0, 0.0, 0.0, 0.0, "length")
    device = model.tok_embeddings.weight.device
    generator = None
    if sampling.seed is not None and sampling.temperature > 0:
        generator = torch.Generator(device).manual_seed(sampling.seed)
    model.setup_cache(len(prompt) + max_new_tokens)
    with torch.inference_mode():
        start = time.perf_counter()
        model.stats.phase = "prefill"
        logits = model(torch.tensor([prompt], device=device), 0, last_only=True)  # [1, 1, V]
        tokens = [sample(logits[0, -1], sampling, generator)]
        prefill_s = time.perf_counter() - start
        if on_token is not None:
            on_token(tokens[0])
        first = time.perf_counter()
        model.stats.phase = "decode"
        reason = _stop_reason(tokens, eos_ids, should_stop)
        while reason is None and len(tokens) < max_new_tokens:
            if deadline is not None and time.perf_counter() > deadline:
                raise GenerationTimeout(f"generation passed its deadline after {len(tokens)} "
                                        "tokens")
            token = torch.tensor([[tokens[-1]]], device=device)
            logits = (step or model)(token, len(prompt) + len(tokens) - 1)  # [1, 1, V]
            tokens.append(sample(logits[0, -1], sampling, generator))
            if on_token is not None:
                on_token(tokens[-1])
            reason = _stop_reason(tokens, eos_ids, should_stop)
        end = time.perf_counter()
    stats = GenerationStats(len(prompt), len(tokens), prefill_s, end - first, first - start,
                            reason or "length")
    return tokens, stats


def _stop_reason(tokens: list[int], eos_ids: Collection[int],
                 should_stop: Callable[[list[int]], bool] | None) -> str | None:
    if tokens[-1] in eos_ids:
        return "eos"
    if should_stop is not None and should_stop(tokens):
        return "stop"
    return None
