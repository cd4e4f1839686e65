"""Throughput simulation for the Ollama stand-in: known prompt and generation rates per model.

A `FakeModel` with `prompt_tok_s` / `gen_tok_s` set is a *timed* model (what `moebench speed`
is tested against): prompt processing takes `new prompt tokens / prompt_tok_s` seconds and each
output token `1 / gen_tok_s`, each request's rates scaled by a random factor of sd `jitter`.
Tokens are sent on that schedule, and the reported `prompt_eval_duration` / `eval_duration`
are the scheduled times (a loaded test machine oversleeps; the client clock still sees it).
A timed model keeps talking until `num_predict` (filler words after the responder's answer),
unless `eos_after` makes it stop early with `done_reason: "stop"` — which an `ignore_eos` option
overrides, as llama.cpp-style servers allow.

Like a real runner it keeps a prompt cache per model: a prompt sharing a prefix with the
previous one processes only the new tokens, while `prompt_eval_count` still counts them all
(notes §2.6: `CacheN + PromptN`) — so a benchmark that reuses its prompt sees inflated prompt
rates, exactly the trap a nonce at the start of each prompt avoids.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from moebench.testing.standin_models import FakeModel

#: tokens a chat template adds around the messages (what the stand-in always counted)
TEMPLATE_TOKENS = 10
_FILLER = (" and", " the", " story", " goes", " on")
#: what a timed model says when no `num_predict` bounds it (then it ends with EOS)
UNLIMITED_TOKENS = 128


def prompt_pieces(messages: Sequence[Mapping[str, Any]], split: Any) -> list[str]:
    """The prompt as token-ish pieces: a BOS token, each message's words, then the rest of
    the template (so, as with real chat templates, only a token or so precedes the text)."""
    pieces = ["<s>"]
    for message in messages:
        pieces += split(str(message.get("content", "")))
    return pieces + [f"<t{i}>" for i in range(1, TEMPLATE_TOKENS)]


def timed(models: Sequence[FakeModel], rates: str) -> tuple[FakeModel, ...]:
    """The models with `rates` = "PP,TG" prompt and generation tok/s (the script's --rates)."""
    pp, tg = (float(v) for v in rates.split(","))
    return tuple(replace(m, prompt_tok_s=pp, gen_tok_s=tg) for m in models)


def is_timed(model: FakeModel) -> bool:
    """True for models with a configured prompt or generation rate."""
    return model.prompt_tok_s is not None or model.gen_tok_s is not None


def extend_output(model: FakeModel, pieces: list[tuple[str, str]],
                  options: Mapping[str, Any]) -> tuple[list[tuple[str, str]], str]:
    """A timed model's output: `num_predict` pieces, or `eos_after` when EOS is not ignored."""
    limit = options.get("num_predict")
    limited = limit is not None and int(limit) >= 0
    budget = int(limit) if limited else UNLIMITED_TOKENS
    eos = (model.eos_after is not None and not options.get("ignore_eos")
           and model.eos_after < budget)
    n = int(model.eos_after) if eos and model.eos_after is not None else budget
    out = list(pieces[:n])
    while len(out) < n:
        out.append(("content", _FILLER[len(out) % len(_FILLER)]))
    return out, "length" if limited and not eos else "stop"


def pace(start_ns: int, offset_s: float) -> None:
    """Sleep until `offset_s` after `start_ns` (perf_counter_ns); when already past, still
    yield the GIL once, as the old per-token `sleep(0)` did."""
    time.sleep(max(0.0, start_ns / 1e9 + offset_s - time.perf_counter()))


@dataclass(frozen=True)
class Timing:
    """Seconds of prompt processing and per output token for one request."""

    prompt_s: float
    token_s: float
    cached: int

    def durations_ns(self, tokens: int) -> tuple[int, int]:
        """(prompt_eval_duration, eval_duration) of the schedule for `tokens` output tokens."""
        return int(self.prompt_s * 1e9), int(tokens * self.token_s * 1e9)


class SpeedSim:
    """Prompt caches and the jitter generator shared by a stand-in's requests."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._last: dict[str, list[str]] = {}

    def timing(self, model: FakeModel, prompt: list[str], token_delay: float,
               first_token_delay: float) -> Timing:
        """How long this request's prompt and each of its tokens take."""
        with self._lock:
            cached = _common_prefix(self._last.get(model.full_name, []), prompt)
            self._last[model.full_name] = prompt
            scale = max(0.2, self._rng.gauss(1.0, model.jitter)) if model.jitter else 1.0
        new = max(1, len(prompt) - cached)  # a runner always evaluates the last token anew
        prompt_s = (new / (model.prompt_tok_s * scale) if model.prompt_tok_s
                    else first_token_delay)
        token_s = 1.0 / (model.gen_tok_s * scale) if model.gen_tok_s else token_delay
        return Timing(prompt_s, token_s, cached)


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
