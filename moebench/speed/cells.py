"""The numbers of a speed sweep: one `Sample` per measured request, one `Cell` per
model × prompt length × concurrency, with its trust flags.

Per request (from the backend's `Completion`):
* prompt tok/s = prompt tokens / prompt-processing time — the server's (`prompt_eval_duration`)
  or the engine's prefill time; a client-only API gives prompt tokens / TTFT, labelled client;
* generation tok/s = output tokens / decode time (`eval_duration`; client first→last token gap
  otherwise);
* TTFT as the client saw it.
Per cell: each as mean ± sd and median over all measured requests, the aggregate tok/s of the
concurrency rounds (all output tokens of a round / its wall time, client clock), and the flags:
`partial_offload` (0 < GPU share < 1), `other_models_resident`, `early_stop` (a request
produced fewer tokens than asked), `high_variance` (sd of pp or tg tok/s > 10% of the mean),
`cpu_only` (the server holds the model entirely in CPU memory). Flagged cells are left out of
"fastest" claims.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from moebench.speed.options import HIGH_VARIANCE
from moebench.types import Completion

FLAGS = ("partial_offload", "other_models_resident", "early_stop", "high_variance", "cpu_only")


@dataclass(frozen=True)
class Stat:
    """Mean, sample sd (0 for one value) and median of some per-request values."""

    mean: float | None = None
    sd: float | None = None
    median: float | None = None
    n: int = 0

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat:
        """The statistics of the values that are not None."""
        got = [float(v) for v in values if v is not None]
        if not got:
            return cls()
        sd = statistics.stdev(got) if len(got) > 1 else 0.0
        return cls(statistics.fmean(got), sd, statistics.median(got), len(got))

    @property
    def cv(self) -> float | None:
        """sd / mean, when both are known and the mean is positive."""
        if self.mean is None or self.sd is None or self.mean <= 0:
            return None
        return self.sd / self.mean


@dataclass(frozen=True)
class Sample:
    """One measured request of a cell."""

    round: int
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    pp_tok_s: float | None = None
    tg_tok_s: float | None = None
    ttft_s: float | None = None
    done_reason: str | None = None
    timing_source: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, completion: Completion, round_: int) -> Sample:
        """A request's speeds from its Completion (server/engine times preferred)."""
        c = completion
        source = c.timing_source
        prompt_s = c.prompt_eval_s
        if not prompt_s and c.ttft_s:
            prompt_s, source = c.ttft_s, "client"
        pp = c.prompt_tokens / prompt_s if c.prompt_tokens and prompt_s else None
        return cls(round_, c.prompt_tokens, c.output_tokens, pp, c.tokens_per_s, c.ttft_s,
                   c.done_reason, source)

    def as_dict(self) -> dict[str, Any]:
        """For the store's per-cell JSON."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Round:
    """One round of `concurrency` simultaneous requests: its wall time and output tokens."""

    wall_s: float
    output_tokens: int

    @property
    def tok_s(self) -> float | None:
        """Aggregate generated tokens per second of the round (client clock)."""
        return self.output_tokens / self.wall_s if self.wall_s > 0 else None


@dataclass(frozen=True)
class Placement:
    """Where the model sat while a cell ran."""

    gpu_share: float | None = None
    #: the server can say where the model is (Ollama /api/ps); False for in-process engines
    server_placed: bool = False
    other_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cell:
    """The result of one model × prompt length × concurrency."""

    model: str
    backend: str
    prompt_tokens: int
    gen_tokens: int
    concurrency: int
    repeats: int
    samples: tuple[Sample, ...]
    rounds: tuple[Round, ...]
    placement: Placement = field(default_factory=Placement)
    load_s: float | None = None
    roofline_tok_s: float | None = None
    notes: tuple[str, ...] = ()

    def stat(self, name: str) -> Stat:
        """Stat of a per-request field (`pp_tok_s`, `tg_tok_s`, `ttft_s`, token counts)."""
        return Stat.of([getattr(s, name) for s in self.samples if s.error is None])

    @property
    def aggregate(self) -> Stat:
        """Aggregate tok/s over the rounds."""
        return Stat.of([r.tok_s for r in self.rounds])

    @property
    def errors(self) -> int:
        """Measured requests that failed."""
        return sum(s.error is not None for s in self.samples)

    @property
    def early_stops(self) -> int:
        """Measured requests that produced fewer tokens than asked."""
        return sum(s.error is None and (s.output_tokens or 0) < self.gen_tokens
                   for s in self.samples)

    def flags(self) -> dict[str, bool]:
        """Each trust flag of FLAGS."""
        share = self.placement.gpu_share
        noisy = [self.stat(n).cv for n in ("pp_tok_s", "tg_tok_s")]
        return {
            "partial_offload": share is not None and 0.0 < share < 1.0,
            "other_models_resident": bool(self.placement.other_models),
            "early_stop": self.early_stops > 0,
            "high_variance": any(cv is not None and cv > HIGH_VARIANCE for cv in noisy),
            "cpu_only": self.placement.server_placed and share == 0.0,
        }

    @property
    def trusted(self) -> bool:
        """No flag raised and at least one request measured."""
        return not any(self.flags().values()) and self.stat("tg_tok_s").n > 0

    @property
    def roofline_pct(self) -> float | None:
        """Measured generation tok/s as a percentage of the roofline bound."""
        tg = self.stat("tg_tok_s").mean
        if tg is None or not self.roofline_tok_s:
            return None
        return 100.0 * tg / self.roofline_tok_s

    @property
    def timing_source(self) -> str | None:
        """`server`, `engine` or `client` (the least trustworthy source among the samples)."""
        sources = {s.timing_source for s in self.samples if s.timing_source}
        for source in ("client", "server", "engine"):
            if source in sources:
                return source
        return None


@dataclass(frozen=True)
class Fastest:
    """The best trusted cell for one measure, and how many flagged cells were left out."""

    measure: str
    cell: Cell | None
    value: float | None
    left_out: int


def fastest(cells: Sequence[Cell], measure: str) -> Fastest:
    """The trusted cell with the highest mean `measure` (`tg_tok_s` / `pp_tok_s`)."""
    trusted = [c for c in cells if c.trusted and c.stat(measure).mean is not None]
    left_out = sum(not c.trusted for c in cells)
    if not trusted:
        return Fastest(measure, None, None, left_out)
    best = max(trusted, key=lambda c: c.stat(measure).mean or 0.0)
    return Fastest(measure, best, best.stat(measure).mean, left_out)
