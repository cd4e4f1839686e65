"""`moebench speed`: the sweep over models × prompt lengths × concurrency levels.

Per model: note (and with `--evict` unload) the other models resident on the server, load the
model through its backend (the load time is measured apart, by the backend's warm-up), fit the
prompt builder to the server's token counts (two short probes), work out the roofline, then run
every cell (`cell.py`), store each finished cell at once (Ctrl-C keeps them), and unload the
model so the next one does not find it resident. Requests go through the ordinary backends
(`moebench.backends`), so the timings are the ones `moebench run` records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from moebench import __version__
from moebench.backends import Backend, BackendConfig, create_backend
from moebench.errors import MoebenchError, RequestFailed
from moebench.paths import DEMO_MODELS_DIR
from moebench.run_control import interrupt_requested, raise_if_interrupted
from moebench.run_faults import prepare_model
from moebench.speed.cells import Cell, Placement, Round, Sample
from moebench.speed.options import SpeedOptions
from moebench.speed.prompts import PROBE_WORDS, Fit, PromptBuilder, close_enough
from moebench.speed.roofline import bound_tok_s
from moebench.speed.rows import store_row, write_csv
from moebench.speed.targets import Target, make_target
from moebench.store import Store
from moebench.types import Completion, ModelInfo, Request, ScorerSpec

#: tokens per filler word assumed when a server reports no prompt token counts
_WORDS_GUESS = Fit(16.0, 1.3)
#: KV-cache headroom on top of the longest prompt + generation (Ollama `num_ctx`)
_CTX_MARGIN = 256
#: active weights below this may stay in CPU caches between tokens (L2 + L3 of a desktop CPU)
_CACHE_BYTES = 64 * 2**20


class SpeedEvents(Protocol):
    """What the progress display hears about."""

    def on_note(self, message: str) -> None:
        """A line worth printing (evictions, skipped cells, roofline inputs)."""

    def on_model_start(self, model: str, requests: int) -> None:
        """A model is loaded; `requests` measured + warm-up requests follow."""

    def on_request(self, label: str) -> None:
        """One request of the model finished."""

    def on_cell(self, cell: Cell) -> None:
        """A cell is finished and stored."""


class NullSpeedEvents:
    """SpeedEvents that ignore everything (library use, tests)."""

    def on_note(self, message: str) -> None:
        return None

    def on_model_start(self, model: str, requests: int) -> None:
        return None

    def on_request(self, label: str) -> None:
        return None

    def on_cell(self, cell: Cell) -> None:
        return None


@dataclass(frozen=True)
class SpeedResult:
    """What a sweep left: its run id, finished cells, and the files written."""

    run_id: str
    status: str
    cells: tuple[Cell, ...]
    out: Path
    db_path: Path
    written: tuple[Path, ...] = ()


def run_speed(options: SpeedOptions, events: SpeedEvents | None = None) -> SpeedResult:
    """Run the sweep; every finished cell is in the store even when interrupted."""
    events = events or NullSpeedEvents()
    backend_name, models = choose(options, events)
    store = Store(options.out)
    run_id = store.create_run({
        "suites": [], "models": list(models), "backend": backend_name, "host": options.host,
        "options": options.as_dict(), "moebench_version": __version__})
    cells: list[Cell] = []
    status = "failed"
    try:
        backend = create_backend(backend_name, _config(options, backend_name))
        try:
            target = make_target(backend_name, options.host, options.device)
            for position, model in enumerate(models):
                sweep = ModelSweep(options, backend, target, events, model)
                try:
                    sweep.run(store, run_id, position, cells)
                except RequestFailed as error:  # this model cannot run: go on with the next
                    raise_if_interrupted()  # unless the failure was a Ctrl-C caught on the way
                    events.on_note(f"{model}: skipped — {error}")
            status = "completed"
        finally:
            backend.close()
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException:
        # a Ctrl-C that landed inside a library comes back wrapped (pydantic raises
        # PydanticSerializationError around it): still an interrupt, not a failure
        if not interrupt_requested():
            raise
        status = "interrupted"
    finally:
        store.set_status(run_id, status)
        store.close()
    written = write_outputs(options, [(c, run_id) for c in cells], run_id) if cells else ()
    return SpeedResult(run_id, status, tuple(cells), options.out, store.path, written)


def write_outputs(options: SpeedOptions, cells: Sequence[tuple[Cell, str]],
                  title: str) -> tuple[Path, ...]:
    """The `--csv` and `--html` files of these cells."""
    written: list[Path] = []
    if options.csv is not None:
        written.append(write_csv(options.csv, cells))
    if options.html is not None:
        from moebench.report.speed_html import write_speed_html

        written.append(write_speed_html(options.html, [c for c, _ in cells], title))
    return tuple(written)


def choose(options: SpeedOptions, events: SpeedEvents) -> tuple[str, tuple[str, ...]]:
    """The backend and models: Ollama when reachable, else the engine on the demo models."""
    from moebench.backends.ollama_api import normalize_host, ping, unreachable

    backend = options.backend
    host = normalize_host(options.host)
    if backend is None:
        backend = "ollama" if ping(host) is not None else "torch"
        if backend == "torch" and not options.models:
            events.on_note(f"no Ollama at {host}: measuring the built-in demo models on the "
                           "torch engine (point at Ollama with --host URL)")
    elif backend == "ollama" and ping(host) is None:
        raise unreachable(host, " (or measure the built-in engine: --backend torch)")
    demos = tuple(sorted(p.name for p in DEMO_MODELS_DIR.glob("demo-*") if p.is_dir()))
    models = tuple(options.models) or (demos if backend == "torch" else ())
    if not models:
        raise MoebenchError("name the models to measure: -m NAME (list them with: "
                            "moebench models)")
    return backend, models


def _config(options: SpeedOptions, backend: str) -> BackendConfig:
    longest = max(options.prompt_tokens)
    return BackendConfig(host=options.host, timeout=options.timeout, retries=1,
                         concurrency=max(options.concurrency), api_key_env=options.api_key_env,
                         dtype=options.dtype, device=options.device, compile=options.compile,
                         native=options.native,
                         # the longest cell, with room for the prompt builder's 1% miss
                         compile_length=longest + options.gen_tokens + 16 + longest // 50)


class ModelSweep:
    """All cells of one model."""

    def __init__(self, options: SpeedOptions, backend: Backend, target: Target,
                 events: SpeedEvents, model: str) -> None:
        self.options, self.backend, self.target, self.events = options, backend, target, events
        self.model = model
        self.name = backend.name
        self.builder = PromptBuilder(options.seed)
        self.fit = _WORDS_GUESS
        #: the engine and llama.cpp / vLLM servers honour it; Ollama has no such option
        self.ignore_eos = self.name != "ollama"
        #: prompt tokens → filler words that gave that length
        self._words: dict[int, int] = {}
        self.num_ctx = max(4096, max(options.prompt_tokens) + options.gen_tokens + _CTX_MARGIN)

    def run(self, store: Store, run_id: str, position: int, cells: list[Cell]) -> None:
        """Load, calibrate, measure every cell (each stored and added to `cells` when done),
        unload."""
        before = self._others()
        info = self._load()
        if info.extra.get("was_resident"):
            self.events.on_note(f"{info.name} was already loaded: its load time is a warm start")
        store.add_model(run_id, info, position)
        self.fit = self._calibrate()
        try:
            plan = self._plan(info)
            self.events.on_model_start(info.name, len(plan) * (1 + self.options.repeats) +
                                       sum(self.options.repeats * (c - 1) for _, c in plan))
            roofline = self._roofline(info)
            for prompt_tokens, concurrency in plan:
                cell = self._cell(info, prompt_tokens, concurrency, before, roofline)
                store.add_speed_cell({**store_row(cell, run_id), "position": position})
                cells.append(cell)
                self.events.on_cell(cell)
        finally:
            self.backend.unload(self.model)

    # ---- set-up -------------------------------------------------------------------------
    def _others(self) -> tuple[str, ...]:
        others = self.target.others(self.model)
        if others and self.options.evict:
            self.target.evict(others)
            self.events.on_note(f"--evict: unloaded {', '.join(others)} before {self.model}")
            others = self.target.others(self.model)
        elif others:
            self.events.on_note(f"{', '.join(others)} resident next to {self.model}: its cells "
                                "are flagged other_models_resident (--evict unloads them)")
        return others

    def _load(self) -> ModelInfo:
        if self.name == "ollama":
            return self.backend.prepare(self.model, {"num_ctx": self.num_ctx})  # type: ignore[call-arg]
        # --compile on a model it cannot compile: measured eager, and the note says so
        return prepare_model(self.backend, self.model, (), self.events.on_note)

    def _calibrate(self) -> Fit:
        """The line through two probes' server token counts (a guess when none are sent)."""
        try:
            short = self._send(self.builder.text(0), 1)
        except RequestFailed as error:
            if not self.ignore_eos or "ignore_eos" not in str(error):
                raise
            self.ignore_eos = False  # a strict API refuses unknown fields: go on without it
            self.events.on_note(f"{self.model}: the server refuses ignore_eos; early stops "
                                "will be reported")
            short = self._send(self.builder.text(0), 1)
        long = self._send(self.builder.text(PROBE_WORDS), 1)
        if short.prompt_tokens and long.prompt_tokens:
            return Fit.through(short.prompt_tokens, long.prompt_tokens)
        self.events.on_note(f"{self.model}: the server reports no prompt token counts; prompt "
                            "lengths are estimates")
        return _WORDS_GUESS

    def _plan(self, info: ModelInfo) -> list[tuple[int, int]]:
        """(prompt tokens, concurrency) cells that fit the model's context."""
        limit = info.context_length
        fits = [p for p in self.options.prompt_tokens
                if limit is None or p + self.options.gen_tokens <= limit]
        for p in sorted(set(self.options.prompt_tokens) - set(fits)):
            self.events.on_note(f"{info.name}: skipped {p} prompt tokens: {p} + "
                                f"{self.options.gen_tokens} generated exceed its context of "
                                f"{limit}")
        shortest = round(self.fit.base)
        for p in fits:
            if p < shortest:
                self.events.on_note(f"{info.name}: the shortest prompt is {shortest} tokens "
                                    f"(template + nonce + instruction); asked {p}")
        if self.name == "torch" and max(self.options.concurrency) > 1:
            self.events.on_note("the built-in engine runs one request at a time: with "
                                "concurrency > 1 the others wait (aggregate tok/s shows it)")
        return [(p, c) for c in self.options.concurrency for p in fits]

    def _roofline(self, info: ModelInfo) -> Callable[[Placement], float | None]:
        per_token = self.target.bytes_per_token(self.model, info)
        if per_token is None:
            self.events.on_note(f"{info.name}: no roofline (active parameters or quantisation "
                                "unknown)")

        warned: list[bool] = []

        def bound(placement: Placement) -> float | None:
            if per_token is None:
                return None
            bw = self.target.bandwidth(placement, self.options.bandwidth_gb_s)
            value = bound_tok_s(per_token, placement.gpu_share, bw.cpu, bw.gpu)
            if value is None and not warned:
                warned.append(True)
                self.events.on_note(f"{info.name}: no roofline (GPU bandwidth unknown: pass "
                                    "--bandwidth GB/s)")
            return value

        if per_token is not None:
            bw = self.target.bandwidth(self.target.placement(self.model, info),
                                       self.options.bandwidth_gb_s)
            parts = [f"{b / 1e9:.1f} GB/s {k}" for k, b in (("host", bw.cpu), ("GPU", bw.gpu))
                     if b]
            self.events.on_note(f"{info.name}: roofline from {per_token / 1e6:.3g} MB of active "
                                f"weights per token at {', '.join(parts)} ({bw.source}); an "
                                "upper bound, not a forecast")
            if per_token < _CACHE_BYTES:
                self.events.on_note(f"{info.name}: its active weights fit in CPU caches, which "
                                    "are faster than the memory bandwidth measured: a tiny model "
                                    "can beat this bound")
        return bound

    # ---- measuring ----------------------------------------------------------------------
    def _cell(self, info: ModelInfo, prompt_tokens: int, concurrency: int,
              before: tuple[str, ...], roofline: Callable[[Placement], float | None]) -> Cell:
        words, notes = self._warm_up(prompt_tokens)
        samples: list[Sample] = []
        rounds: list[Round] = []
        for r in range(self.options.repeats):
            start = time.perf_counter()
            got = self._round(words, concurrency, r)
            rounds.append(Round(time.perf_counter() - start,
                                sum(s.output_tokens or 0 for s in got if s.error is None)))
            samples += got
        now = self.target.placement(self.model, info)
        placement = replace(now, other_models=tuple(dict.fromkeys(before + now.other_models)))
        if any(s.error for s in samples):
            notes.append(f"{sum(bool(s.error) for s in samples)} requests failed: "
                         f"{next(s.error for s in samples if s.error)}")
        return Cell(info.name, self.name, prompt_tokens, self.options.gen_tokens, concurrency,
                    self.options.repeats, tuple(samples), tuple(rounds), placement,
                    info.load_s, roofline(placement), tuple(notes))

    def _warm_up(self, target: int) -> tuple[int, list[str]]:
        """A full-length warm-up that also checks the prompt length (and corrects it)."""
        words = self._words.get(target, self.fit.words_for(target))
        reply = self._send(self.builder.text(words), self.options.gen_tokens)
        self.events.on_request("warm-up")
        for _ in range(3):
            measured = reply.prompt_tokens
            if measured is None or close_enough(measured, target):
                break
            better = self.fit.refine(words, target, measured)
            if better == words:
                break
            words = better
            reply = self._send(self.builder.text(words), 1)
        self._words[target] = words  # the next concurrency level starts from here
        notes = []
        if reply.prompt_tokens is not None and not close_enough(reply.prompt_tokens, target):
            notes.append(f"prompts are {reply.prompt_tokens} tokens (asked {target})")
        return words, notes

    def _round(self, words: int, concurrency: int, round_: int) -> list[Sample]:
        """`concurrency` requests at once, each with its own nonce."""
        texts = [self.builder.text(words) for _ in range(concurrency)]
        if concurrency == 1:
            return [self._measure(texts[0], round_)]
        pool = ThreadPoolExecutor(concurrency)
        try:
            return list(pool.map(lambda t: self._measure(t, round_), texts))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _measure(self, text: str, round_: int) -> Sample:
        try:
            sample = Sample.of(self._send(text, self.options.gen_tokens), round_)
        except RequestFailed as error:
            raise_if_interrupted()  # a Ctrl-C wrapped by the client is not a failed request
            sample = Sample(round_, error=str(error))
        self.events.on_request("measured")
        return sample

    def _send(self, text: str, max_tokens: int) -> Completion:
        options: dict[str, object] = {"max_tokens": max_tokens, "temperature": 0.0, "seed": 0}
        if self.name == "ollama":
            options["num_ctx"] = self.num_ctx  # the pinned runner size: no reload
        if self.ignore_eos:
            options["ignore_eos"] = True
        request = Request(suite="speed", task="speed", case_id="speed", prompt=text,
                          scorer=ScorerSpec("speed"), options=options)
        return self.backend.generate(self.model, request)

