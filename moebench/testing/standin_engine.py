"""The stand-in's model state: installed models, loads, keep-alive, queueing, fake token streams.

`StandinState` is what a request handler talks to. `generation()` behaves like an Ollama
runner: wait for a free slot (server parallelism, extra requests queue), load the model if it
is not resident (configurable delay; a change of `num_ctx` reloads, like Ollama's
`needsReload`), then yield text pieces with a first-token and a per-token delay, and finally a
dict of metrics in nanoseconds. Counters (requests, loads per model, max in flight) and fault
injection live here too, so the OpenAI-compatible route can reuse the same engine.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moebench.testing.standin_models import FOREVER, FakeModel, normalize_name
from moebench.testing.standin_speed import (
    SpeedSim, extend_output, is_timed, pace, prompt_pieces,
)

#: responder(model, messages, options) -> answer text (may start with `<think>…</think>`)
Responder = Callable[[str, Sequence[Mapping[str, Any]], Mapping[str, Any]], str]

#: the paths a fault applies to unless told otherwise: the generation endpoints
GENERATION_PATHS = ("/api/chat", "/api/generate", "/v1/chat/completions")
#: fault kinds that act on a streamed body (not taken by unstreamed requests such as warm-ups)
STREAM_KINDS = ("drop", "badline", "trickle")
_GO_DURATION = re.compile(r"(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def canned_responder(model: str, messages: Sequence[Mapping[str, Any]],
                     options: Mapping[str, Any]) -> str:
    """Deterministic default answer: the same prompt always gets the same short reply."""
    prompt = str(messages[-1].get("content", "")) if messages else ""
    n = int(hashlib.sha256(prompt.encode()).hexdigest()[:6], 16) % 100
    return f"Let me think step by step. The answer is {n}."


def parse_keep_alive(value: Any, default_s: float) -> float:
    """Seconds from a number or a Go duration string ("5m", "1h30m", "0", "-1"); <0 = forever."""
    if value is None or value == "":
        return default_s
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f'time: invalid duration "{text}"')
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def split_tokens(text: str) -> list[str]:
    """Word-ish pieces with their leading whitespace, like a BPE stream ("The", " sky", ...)."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


@dataclass
class Stats:
    """Counters the tests read: requests per path, loads per model, peak concurrency."""

    requests: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    loads: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    pending: int = 0
    max_pending: int = 0
    #: (method, path, parsed JSON body or None) of every request, in arrival order
    log: list[tuple[str, str, Any]] = field(default_factory=list)


@dataclass
class Fault:
    """One armed fault: `kind` is "status", "drop", "delay", "trickle", "badline" or "die".

    A one-shot fault applies to the next `remaining` matching requests; a periodic one
    (`every` > 0) to every `every`-th matching request, for as long as it is armed.
    """

    kind: str
    remaining: int
    status: int = 500
    message: str = "internal server error"
    after_chunks: int = 0
    clean: bool = False
    seconds: float = 0.0
    paths: tuple[str, ...] = GENERATION_PATHS
    every: int = 0
    seen: int = 0
    #: "badline": the raw bytes sent instead of the next NDJSON line
    line: bytes = b"this is not json\n"


class Faults:
    """Fault injection, armed from tests: each call applies to the next `n` matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []
        #: lower-cased full model name → (status, message) every load of it answers
        self.load_failures: dict[str, tuple[int, str]] = {}

    def fail_next(self, n: int = 1, status: int = 500, message: str = "internal server error",
                  paths: tuple[str, ...] = GENERATION_PATHS,
                  retry_after: float = 0.0) -> None:
        """The next n requests answer `status` with `{"error": message}` before any streaming
        (with a `Retry-After: retry_after` header when it is > 0)."""
        self._arm(Fault("status", n, status=status, message=message, paths=paths,
                        seconds=retry_after))

    def drop_next(self, n: int = 1, after_chunks: int = 1, clean: bool = False,
                  paths: tuple[str, ...] = GENERATION_PATHS) -> None:
        """The next n streams stop after K chunks: abruptly (connection reset mid-body) or, with
        `clean`, by ending the body properly but without the `done` chunk."""
        self._arm(Fault("drop", n, after_chunks=after_chunks, clean=clean, paths=paths))

    def delay_next(self, n: int = 1, seconds: float = 1.0,
                   paths: tuple[str, ...] = GENERATION_PATHS) -> None:
        """The next n requests sleep `seconds` before answering (for timeout tests)."""
        self._arm(Fault("delay", n, seconds=seconds, paths=paths))

    def fail_every(self, n: int, status: int = 500, message: str = "internal server error",
                   paths: tuple[str, ...] = GENERATION_PATHS) -> None:
        """Every n-th matching request answers `status` with `{"error": message}`."""
        self._arm(Fault("status", 1, status=status, message=message, paths=paths, every=n))

    def drop_every(self, n: int, after_chunks: int = 1, clean: bool = False,
                   paths: tuple[str, ...] = GENERATION_PATHS) -> None:
        """Every n-th matching stream is cut after K chunks (see `drop_next`)."""
        self._arm(Fault("drop", 1, after_chunks=after_chunks, clean=clean, paths=paths,
                        every=n))

    def trickle_next(self, n: int = 1, byte_delay: float = 0.05,
                     paths: tuple[str, ...] = GENERATION_PATHS) -> None:
        """The next n streams send their body one byte at a time, `byte_delay` apart (a
        server that never goes quiet long enough for a per-read timeout)."""
        self._arm(Fault("trickle", n, seconds=byte_delay, paths=paths))

    def bad_line_next(self, n: int = 1, line: bytes = b"this is not json\n",
                      after_chunks: int = 1,
                      paths: tuple[str, ...] = GENERATION_PATHS) -> None:
        """The next n streams send `line` (invalid JSON, `[1]`, `{"done": "x"}`, ...) after
        K good chunks, then end the body."""
        self._arm(Fault("badline", n, line=line, after_chunks=after_chunks, paths=paths))

    def die_after(self, n: int, paths: tuple[str, ...] = GENERATION_PATHS) -> None:
        """The server dies on the n-th matching request from now: every connection is cut and
        the port stops listening (connections are refused from then on)."""
        self._arm(Fault("die", 1, paths=paths, every=n))

    def fail_loads(self, model: str, message: str, status: int = 500) -> None:
        """Every request that would load `model` answers `status` `{"error": message}`, as
        Ollama does for a model that does not fit (`model requires more system memory ...`)
        or whose runner crashes (`llama runner process has terminated: exit status 2`)."""
        with self._lock:
            self.load_failures[normalize_name(model).lower()] = (status, message)

    def load_failure(self, model: FakeModel) -> tuple[int, str] | None:
        """(status, message) when loads of `model` are set to fail."""
        with self._lock:
            return self.load_failures.get(model.full_name.lower())

    def clear(self) -> None:
        """Disarm everything (load failures included)."""
        with self._lock:
            self._armed.clear()
            self.load_failures.clear()

    def _arm(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(fault)

    def take(self, path: str, streaming: bool = True) -> list[Fault]:
        """Consume one use of every armed fault that matches `path` (one per kind); the
        faults that act on a streamed body only match streamed requests."""
        taken: list[Fault] = []
        with self._lock:
            for fault in list(self._armed):
                if path not in fault.paths or any(f.kind == fault.kind for f in taken):
                    continue
                if fault.kind in STREAM_KINDS and not streaming:
                    continue
                if fault.every > 0:  # periodic: counts every matching request
                    fault.seen += 1
                    if fault.seen % fault.every == 0:
                        taken.append(fault)
                        if fault.kind == "die":
                            self._armed.remove(fault)
                    continue
                taken.append(fault)
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._armed.remove(fault)
        return taken


@dataclass(frozen=True)
class StandinConfig:
    """Everything configurable about the stand-in (see `ollama_standin` for the meaning)."""

    models: tuple[FakeModel, ...]
    registry: tuple[FakeModel, ...]
    responder: Responder = canned_responder
    token_delay: float = 0.0
    first_token_delay: float = 0.0
    load_delay: float = 0.0
    parallel: int = 1
    max_queue: int = 512
    pull_steps: int = 3
    pull_step_delay: float = 0.0
    keep_alive_s: float = 300.0
    version: str = "0.12.6"


class StandinState:
    """Installed models, resident models, the slot semaphore, counters and faults."""

    def __init__(self, config: StandinConfig) -> None:
        self.config = config
        self.stats = Stats()
        self.faults = Faults()
        self.lock = threading.Lock()
        self.installed: dict[str, FakeModel] = {m.full_name.lower(): m for m in config.models}
        self.registry: dict[str, FakeModel] = {m.full_name.lower(): m for m in config.registry}
        #: full name → (expires_at, num_ctx) of resident models
        self.loaded: dict[str, tuple[datetime, int]] = {}
        self._slots = threading.Semaphore(max(1, config.parallel))
        #: prompt caches and rate jitter of timed models (`standin_speed`)
        self.speed = SpeedSim()
        self._load_lock = threading.Lock()

    # ---- bookkeeping -------------------------------------------------------------------
    def count(self, method: str, path: str, body: Any) -> None:
        """Record one request."""
        with self.lock:
            self.stats.requests += 1
            self.stats.by_path[path] += 1
            self.stats.log.append((method, path, body))

    def refuses_load(self, body: Mapping[str, Any]) -> bool:
        """True when `body` asks for a model whose loads are set to fail (`fail_loads`)."""
        model = self.find(str(body.get("model") or "")) if body.get("model") else None
        return model is not None and self.faults.load_failure(model) is not None

    def find(self, name: str) -> FakeModel | None:
        """An installed model by (case-insensitive, tag-defaulted) name."""
        return self.installed.get(normalize_name(name).lower())

    def resident(self) -> list[tuple[FakeModel, datetime, int]]:
        """Loaded models whose keep-alive has not lapsed, latest expiry first."""
        now = datetime.now().astimezone()
        with self.lock:
            for name, (expires, _) in list(self.loaded.items()):
                if expires <= now:
                    del self.loaded[name]
            rows = [(self.installed[n], e, c) for n, (e, c) in self.loaded.items()
                    if n in self.installed]
        return sorted(rows, key=lambda r: r[1], reverse=True)

    def set_expiry(self, model: FakeModel, keep_alive_s: float, num_ctx: int) -> None:
        """Apply keep_alive after a request: 0 unloads now, negative keeps forever."""
        key = model.full_name.lower()
        with self.lock:
            if keep_alive_s == 0:
                self.loaded.pop(key, None)
            else:
                span = FOREVER if keep_alive_s < 0 else timedelta(seconds=keep_alive_s)
                self.loaded[key] = (datetime.now().astimezone() + span, num_ctx)

    def ensure_loaded(self, model: FakeModel, num_ctx: int) -> int:
        """Load the model unless resident with the same runner options; returns load ns."""
        start = time.perf_counter_ns()
        key = model.full_name.lower()
        with self._load_lock:
            self.resident()  # drop lapsed models first
            with self.lock:
                current = self.loaded.get(key)
            if current is None or current[1] != num_ctx:
                time.sleep(self.config.load_delay)
                with self.lock:
                    self.stats.loads[model.full_name] += 1
                    self.loaded[key] = (datetime.now().astimezone() + FOREVER, num_ctx)
            else:
                time.sleep(0)  # a warm runner still costs a scheduler hop
        return max(time.perf_counter_ns() - start, 120_000)

    # ---- generation ---------------------------------------------------------------------
    def generation(self, model: FakeModel, messages: Sequence[Mapping[str, Any]],
                   options: Mapping[str, Any], keep_alive: Any, think: Any,
                   arrival_ns: int) -> Iterator[tuple[str, str] | dict[str, Any]]:
        """Queue for a slot, load, then yield ("content"|"thinking", piece) tuples and, last,
        the metrics dict (`done_reason` + the six durations/counts in ns)."""
        num_ctx = int(options.get("num_ctx") or 4096)
        keep_s = parse_keep_alive(keep_alive, self.config.keep_alive_s)
        self._enter_queue()
        try:
            with self._slots:
                self._enter_slot()
                try:
                    yield from self._run(model, messages, options, think, num_ctx, arrival_ns)
                finally:
                    self.set_expiry(model, keep_s, num_ctx)
                    with self.lock:
                        self.stats.in_flight -= 1
        finally:
            with self.lock:
                self.stats.pending -= 1

    def queue_full(self) -> bool:
        """True when another request would exceed OLLAMA_MAX_QUEUE (the server answers 503)."""
        with self.lock:
            return self.stats.pending >= self.config.max_queue + self.config.parallel

    def _enter_queue(self) -> None:
        with self.lock:
            self.stats.pending += 1
            self.stats.max_pending = max(self.stats.max_pending, self.stats.pending)

    def _enter_slot(self) -> None:
        with self.lock:
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)

    def _run(self, model: FakeModel, messages: Sequence[Mapping[str, Any]],
             options: Mapping[str, Any], think: Any, num_ctx: int,
             arrival_ns: int) -> Iterator[tuple[str, str] | dict[str, Any]]:
        load_ns = self.ensure_loaded(model, num_ctx)
        pieces, done_reason = self._pieces(model, messages, options, think)
        prompt = prompt_pieces(messages, split_tokens)
        prompt_tokens = len(prompt)
        timing = self.speed.timing(model, prompt, self.config.token_delay,
                                   self.config.first_token_delay)
        if is_timed(model):
            pieces, done_reason = extend_output(model, pieces, options)
        t0 = time.perf_counter_ns()
        time.sleep(timing.prompt_s)
        t1 = time.perf_counter_ns()
        for i, piece in enumerate(pieces):
            pace(t1, (i + 1) * timing.token_s)  # on a schedule: per-token overheads don't add up
            yield piece
        t2 = time.perf_counter_ns()
        prompt_ns, eval_ns = t1 - t0, t2 - t1
        if is_timed(model):  # report the configured work, not a busy machine's sleep overshoot
            prompt_ns, eval_ns = timing.durations_ns(len(pieces))
        yield {"done_reason": done_reason, "total_duration": t2 - arrival_ns,
               "load_duration": load_ns, "prompt_eval_count": prompt_tokens,
               "prompt_eval_duration": max(prompt_ns, 1_000),
               "eval_count": len(pieces), "eval_duration": max(eval_ns, 1_000)}

    def _pieces(self, model: FakeModel, messages: Sequence[Mapping[str, Any]],
                options: Mapping[str, Any], think: Any) -> tuple[list[tuple[str, str]], str]:
        """Answer text → (kind, piece) list, honouring `stop`, `num_predict` and thinking."""
        text = self.config.responder(model.full_name, messages, options)
        thinking = ""
        match = re.match(r"\s*<think>(.*?)</think>\s*", text, re.S)
        if match and "thinking" in model.capabilities and think is not False:
            thinking, text = match.group(1), text[match.end():]
        done_reason = "stop"
        stops = options.get("stop") or []
        for stop in [stops] if isinstance(stops, str) else stops:
            if stop and stop in text:
                text = text[: text.index(stop)]
        pieces = [("thinking", p) for p in split_tokens(thinking)]
        pieces += [("content", p) for p in split_tokens(text)]
        limit = options.get("num_predict")
        if limit is not None and 0 <= int(limit) < len(pieces):
            pieces, done_reason = pieces[: int(limit)], "length"
        return pieces, done_reason
