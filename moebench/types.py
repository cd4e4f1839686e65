"""The in-process nouns that flow through a run, as frozen dataclasses.

suite → `Request` → backend → `Completion` → scorer → `Score` → `Record` → store → report.
`ModelInfo` describes one model as a backend found it (digest, MoE facts, memory, load time).
Anything read from disk or from the user is validated by pydantic elsewhere (`suite.py`,
`store.py`); inside the process these plain, immutable values are passed around.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Generation option keys every backend understands (others are passed through where possible).
#: temperature, top_p, top_k, seed, max_tokens, stop (list[str]), num_ctx
GENERATION_KEYS = ("temperature", "top_p", "top_k", "seed", "max_tokens", "stop", "num_ctx")

#: Summary CSV columns, in the order `shared/contracts.md` §4 fixes (more may follow).
SUMMARY_COLUMNS = (
    "model", "backend", "suite", "task", "n", "passed", "accuracy", "accuracy_low",
    "accuracy_high", "mean_score", "latency_p50_s", "latency_p95_s", "ttft_p50_s",
    "tokens_per_s", "load_s", "errors",
)

#: Samples CSV columns, in the contract's order (more may follow).
SAMPLE_COLUMNS = (
    "run_id", "model", "backend", "suite", "task", "case_id", "repeat", "passed", "score",
    "answer", "expected", "latency_s", "ttft_s", "prompt_tokens", "output_tokens",
    "tokens_per_s", "error", "output",
)


@dataclass(frozen=True)
class ScorerSpec:
    """Which scorer grades a task, with its parameters (e.g. `max_sentences`, `pattern`)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One prompt to send: a rendered case of a task of a suite."""

    suite: str
    task: str
    case_id: str
    prompt: str
    scorer: ScorerSpec
    system: str | None = None
    #: merged generation options (suite → task → case); keys from GENERATION_KEYS
    options: Mapping[str, Any] = field(default_factory=dict)
    #: the case's fields (question, expected, count, must_mention, ...), visible to the scorer
    case: Mapping[str, Any] = field(default_factory=dict)
    repeat: int = 1

    @property
    def expected(self) -> Any:
        """The case's `expected` value, or None."""
        return self.case.get("expected")

    @property
    def key(self) -> tuple[str, str, str, int]:
        """Identity of a sample within one model of a run."""
        return (self.suite, self.task, self.case_id, self.repeat)


@dataclass(frozen=True)
class Completion:
    """What a backend returned for one Request, with honest timings.

    Client-clock times are measured with `time.perf_counter()`; server times come from the
    backend's own fields (Ollama's `*_duration`, converted from ns to s) and are None when
    the backend does not report them.
    """

    text: str
    model: str
    #: wall time from send to last token, client clock, excluding queue wait
    latency_s: float
    #: time to first token (first non-empty chunk), client clock
    ttft_s: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    #: server (or engine) time spent decoding output tokens (Ollama eval_duration)
    decode_s: float | None = None
    #: server time spent on the prompt (Ollama prompt_eval_duration)
    prompt_eval_s: float | None = None
    #: server-reported model load time during this request (Ollama load_duration)
    load_s: float | None = None
    #: server-reported total time (Ollama total_duration)
    server_total_s: float | None = None
    done_reason: str | None = None
    #: time spent waiting for a free slot before being sent (concurrency > server parallelism)
    queue_s: float = 0.0
    #: "server" when decode_s comes from the server, "client" when measured by us,
    #: "client-chunks" when the token count too is ours (streamed chunks; no usage sent)
    timing_source: str = "server"
    #: engine only: {"prefill": [[tokens per expert] per layer], "decode": [...]}
    router: Mapping[str, Any] | None = None
    attempts: int = 1

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens / decode time (load and prompt processing excluded)."""
        if not self.output_tokens or not self.decode_s or self.decode_s <= 0:
            return None
        return self.output_tokens / self.decode_s


@dataclass(frozen=True)
class Score:
    """A scorer's verdict on one completion."""

    score: float
    passed: bool
    #: the short extracted answer shown in tables ("2", "42 km; 30000 people", ...)
    answer: str
    explanation: str = ""


@dataclass(frozen=True)
class Record:
    """One sample of a run: a Request, what came back (or the error) and its Score."""

    run_id: str
    model: str
    backend: str
    request: Request
    completion: Completion | None
    score: Score | None
    error: str | None = None
    #: output after removing a <think>…</think> trace (what the scorer read)
    stripped: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One model as its backend found it: identity, MoE facts, memory, load time."""

    name: str
    backend: str
    digest: str | None = None
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    context_length: int | None = None
    experts: int | None = None
    top_k: int | None = None
    shared_experts: int | None = None
    total_params: int | None = None
    active_params: int | None = None
    #: bytes resident for the model (Ollama /api/ps `size`, engine weight bytes)
    size_bytes: int | None = None
    #: of which on the GPU (Ollama `size_vram`)
    vram_bytes: int | None = None
    #: measured load (warm-up) time in seconds
    load_s: float | None = None
    #: how many loads the backend observed for this model during the run
    loads: int = 0
    #: the server the model ran on (base URL; None for the built-in engine)
    host: str | None = None
    #: that server's version (Ollama `/api/version`), when known
    server_version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gpu_share(self) -> float | None:
        """Fraction of the model's memory on the GPU (0 = all CPU), when known."""
        if not self.size_bytes or self.vram_bytes is None:
            return None
        return self.vram_bytes / self.size_bytes

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ModelInfo:
        """The identity, MoE facts and memory of a `models_frame()` row (NaN → None)."""
        def whole(key: str) -> int | None:
            value = row.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return None
            return int(value)

        return cls(name=row["model"], backend=row.get("backend") or "", experts=whole("experts"),
                   top_k=whole("top_k"), shared_experts=whole("shared_experts"),
                   total_params=whole("total_params"), active_params=whole("active_params"),
                   size_bytes=whole("size_bytes"), vram_bytes=whole("vram_bytes"))

    def memory_split(self) -> str:
        """`100% GPU / 0% CPU`, or '' when the GPU share is unknown."""
        share = self.gpu_share
        return "" if share is None else f"{share:.0%} GPU / {1 - share:.0%} CPU"

    def experts_line(self) -> str:
        """`8 experts, top-2, 2 shared` — the per-model MoE summary, or '' when not MoE."""
        if not self.experts:
            return ""
        parts = [f"{self.experts} experts"]
        if self.top_k:
            parts.append(f"top-{self.top_k}")
        if self.shared_experts:
            parts.append(f"{self.shared_experts} shared")
        return ", ".join(parts)


#: Columns of `Store.samples_frame()`: the samples CSV columns, then what reports also need.
SAMPLE_FRAME_EXTRA = (
    "stripped", "explanation", "decode_s", "prompt_eval_s", "queue_s", "server_load_s",
    "server_total_s", "done_reason", "timing_source", "cold", "attempts", "created_at",
    "prompt", "system", "expected_detail",
)

#: Columns of `Store.models_frame()`: one row per model per run (ModelInfo fields).
MODEL_COLUMNS = (
    "run_id", "model", "backend", "digest", "family", "parameter_size", "quantization",
    "context_length", "experts", "top_k", "shared_experts", "total_params", "active_params",
    "size_bytes", "vram_bytes", "load_s", "loads", "host", "server_version", "extra",
)

#: Columns of `Store.router_frame()`: tokens routed per expert, summed per task (engine runs).
ROUTER_COLUMNS = ("run_id", "model", "suite", "task", "phase", "layer", "expert", "tokens")
