"""The Ollama backend: requests through the official `ollama` client, with honest timings.

Why `/api/chat` (not `/api/generate`): it applies the model's chat template to a system + user
message pair exactly as chat UIs do, and keeps a thinking trace apart (`message.thinking`),
which we store as `<think>…</think>` before the answer so scorers can strip it.

Timings per request (client clock `perf_counter`, server fields converted ns → s):
* `ttft_s`: send → first non-empty content or thinking chunk.
* `latency_s`: send → final chunk, minus the server-side queue wait and minus a model load
  when one happened during the request (a load is `load_duration > LOAD_THRESHOLD_S`).
* `queue_s`: wait for a local slot (`--concurrency`) + the server's queue wait, estimated as
  `total_duration − load_duration − prompt_eval_duration − eval_duration`.
* `decode_s` / `prompt_eval_s` / `load_s` / `server_total_s` / token counts from the final chunk.

Runner options (`num_ctx`, ...) are pinned per model at `prepare` (or the first request):
a change would make Ollama reload the model, so later differing values are ignored (logged).
Every request sends `keep_alive=KEEP_ALIVE`; `unload` sends `keep_alive=0`.
Transient failures (connection errors, 5xx, 429 and 503 after their `Retry-After`, streams
without a `done` chunk, an invalid or wrongly typed NDJSON line) are retried with exponential
backoff; a timeout is not retried (the next try would time out too). `--timeout` is a
wall-clock deadline per attempt (`_deadline.Deadline`), so a stream that goes quiet or a
server that trickles bytes is cut at the deadline. Refused connections after the last retry
raise `ServerGone` (the runner stops the run). The warm-up is retried the same way, except a
memory refusal (`model requires more system memory ...`), which fails at once; a model that
still cannot load raises `ModelLoadFailed` with the server's reason.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import ollama

from moebench.backends import BackendConfig
from moebench.backends._common import chat_messages
from moebench.backends._deadline import Deadline, current_response, hook
from moebench.backends._load import is_memory_error, load_failed
from moebench.backends._retry import (
    RetryPolicy, Retryable, call_with_retries, is_retryable_status, retry_after_header,
)
from moebench.backends.ollama_api import (
    PullProgress, digests, list_models, make_client, model_info, normalize_host, normalize_name,
    not_found, ping, ps_rows, pull_model, running_models, translated, unreachable,
)
from moebench.errors import (
    AuthError, BackendError, BackendUnavailable, ModelLoadFailed, ModelNotFound, RequestFailed,
    ServerGone,
)
from moebench.types import Completion, ModelInfo, Request

__all__ = [
    "OllamaBackend", "PullProgress", "create", "list_models", "normalize_name", "ollama_options",
    "ping", "pull_model", "running_models",
]

log = logging.getLogger(__name__)

#: keep the model resident between requests of a run, but let it go if we die
KEEP_ALIVE = "30m"
#: a server load_duration above this means the request loaded the model
LOAD_THRESHOLD_S = 0.25
#: options that configure Ollama's runner; changing one reloads the model
RUNNER_KEYS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")
#: request keys that are top-level fields of /api/chat rather than `options`
TOP_LEVEL_KEYS = ("think", "format")
_NS = 1e-9


def ollama_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our generation options → (Ollama `options`, top-level chat fields).

    `max_tokens` becomes `num_predict`, a single `stop` string becomes a list, `think` and
    `format` go top-level; everything else is passed through under its own name.
    """
    out: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key in TOP_LEVEL_KEYS:
            top[key] = value
        elif key == "max_tokens":
            out["num_predict"] = int(value)
        elif key == "stop":
            out["stop"] = [value] if isinstance(value, str) else list(value)
        else:
            out[key] = value
    return out, top


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns * _NS


@dataclass
class _ModelState:
    """Per-model bookkeeping for one run."""

    info: ModelInfo
    runner: dict[str, Any] = field(default_factory=dict)
    pinned: bool = False
    loads: int = 0
    warned: bool = False


@dataclass
class _Stream:
    """What one streamed attempt collected."""

    content: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    ttft: float | None = None
    final: ollama.ChatResponse | None = None


class OllamaBackend:
    """Backend protocol implementation for a (local) Ollama server; thread-safe."""

    name = "ollama"

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.host = normalize_host(config.host)
        self.policy = RetryPolicy(config.retries, config.backoff_s)
        self._local = threading.local()
        self._clients: list[ollama.Client] = []
        #: ready request clients (connection open), made in `prepare` for the worker threads
        self._spare: list[ollama.Client] = []
        self._handed = 0  # request clients already owned by a thread
        self._lock = threading.RLock()
        self._slots = threading.BoundedSemaphore(max(1, config.concurrency))
        self._models: dict[str, _ModelState] = {}

    # ---- clients ------------------------------------------------------------------------
    def _client(self, timeout: float) -> ollama.Client:
        """One client (one keep-alive connection pool) per thread and timeout; a thread's first
        request client is a spare made (and connected) by `prepare`, outside the timed run."""
        cache: dict[float, ollama.Client] = self._local.__dict__.setdefault("clients", {})
        if timeout not in cache:
            for_requests = timeout == self.config.timeout
            with self._lock:
                spare = self._spare.pop() if for_requests and self._spare else None
                self._handed += for_requests
            cache[timeout] = spare or self._new_client(timeout)
        return cache[timeout]

    def _new_client(self, timeout: float) -> ollama.Client:
        client = make_client(self.host, timeout, on_response=hook)
        with self._lock:
            self._clients.append(client)
        return client

    def _stock_clients(self, name: str) -> None:
        """Have a ready request client for each of the `concurrency` threads that lack one, its
        connection opened by a cheap `/api/ps`, so no sample pays for client set-up."""
        with self._lock:
            missing = max(1, self.config.concurrency) - self._handed - len(self._spare)
        for _ in range(missing):
            client = self._new_client(self.config.timeout)
            with translated(self.host, name):
                client.ps()
            with self._lock:
                self._spare.append(client)

    def _state(self, name: str) -> _ModelState:
        with self._lock:
            if name not in self._models:
                self._models[name] = _ModelState(ModelInfo(name=name, backend=self.name))
            return self._models[name]

    # ---- protocol -----------------------------------------------------------------------
    def check(self, model: str) -> None:
        """The model is installed (pulled now with `config.pull`); ModelNotFound otherwise."""
        name = normalize_name(model)
        self._show(self._client(self.config.load_timeout), name, model)

    def prepare(self, model: str, options: Mapping[str, Any] | None = None) -> ModelInfo:
        """Check the model (pull it with `config.pull`), warm it up, read memory + MoE facts.

        `options` (optional) are the run's generation options: their runner options (num_ctx)
        are used for the warm-up so the measured load is the one the run needs. Raises
        ModelLoadFailed (the run goes on) when the server cannot load it.
        """
        name = normalize_name(model)
        try:
            return self._prepare(name, model, options)
        except (BackendUnavailable, ModelNotFound, AuthError, RequestFailed):
            raise  # ModelLoadFailed and ServerGone are RequestFailed
        except BackendError as error:  # /api/show or /api/ps failed around the load
            raise load_failed(name, str(error), self.name,
                              ModelInfo(name=name, backend=self.name)) from None

    def _prepare(self, name: str, model: str, options: Mapping[str, Any] | None) -> ModelInfo:
        client = self._client(self.config.load_timeout)
        show = self._show(client, name, model)
        state = self._state(name)
        if options is not None:  # else the first request fixes them
            self._pin(state, ollama_options(options)[0])
        with translated(self.host, name):
            was_resident = name in ps_rows(client)
            digest = digests(client).get(name)
        known = replace(model_info(name, show, digest), backend=self.name)
        warm = self._warm_up(client, name, state, known)
        with translated(self.host, name):
            row = ps_rows(client).get(name)
        load_s = _seconds(warm.load_duration)
        loaded = not was_resident or (load_s or 0) > LOAD_THRESHOLD_S
        info = model_info(name, show, digest, row)
        info = replace(info, load_s=load_s if load_s is not None else warm.wall_s,
                       loads=state.loads + int(loaded),
                       extra={**info.extra, "warmup_wall_s": warm.wall_s,
                              "server_load_s": load_s, "was_resident": was_resident})
        with self._lock:
            state.info, state.loads = info, info.loads
        self._stock_clients(name)
        return info

    def generate(self, model: str, request: Request) -> Completion:
        """Stream one chat request; retries transient failures, then raises RequestFailed."""
        name = normalize_name(model)
        kwargs = self._chat_kwargs(name, request)
        waited = time.perf_counter()
        with self._slots:
            local_wait = time.perf_counter() - waited
            return call_with_retries(
                lambda n: self._attempt(name, kwargs, local_wait, n), self.policy,
                f"request to {name}")

    def unload(self, model: str) -> ModelInfo | None:
        """Free the model now (`keep_alive: 0`); returns its info with the loads observed."""
        name = normalize_name(model)
        client = self._client(self.config.timeout)
        with translated(self.host, name):
            client.generate(model=name, keep_alive=0)
        with self._lock:
            state = self._models.get(name)
            return replace(state.info, loads=state.loads) if state else None

    def close(self) -> None:
        """Close every client's connections."""
        with self._lock:
            clients, self._clients, self._spare, self._handed = self._clients, [], [], 0
        for client in clients:
            client.close()

    # ---- helpers ------------------------------------------------------------------------
    def _show(self, client: ollama.Client, name: str, asked: str) -> ollama.ShowResponse:
        try:
            with translated(self.host, name):
                return client.show(name)
        except ModelNotFound:
            if not self.config.pull:
                raise not_found(asked) from None
        pull_model(self.host, name)
        with translated(self.host, name):
            return client.show(name)

    def _pin(self, state: _ModelState, options: Mapping[str, Any]) -> dict[str, Any]:
        """The runner options for this model: fixed by the first call that gives any."""
        wanted = {k: options[k] for k in RUNNER_KEYS if k in options}
        with self._lock:
            if not state.pinned:
                state.runner, state.pinned = wanted, True
            elif wanted and wanted != state.runner and not state.warned:
                state.warned = True
                log.warning("%s: ignoring runner options %s (keeping %s) to avoid a reload",
                            state.info.name, wanted, state.runner)
            return dict(state.runner)

    def _warm_up(self, client: ollama.Client, name: str, state: _ModelState,
                 known: ModelInfo) -> _Warm:
        """One short chat that loads the model, retried like a request (not on a memory
        refusal); ModelLoadFailed carrying the server's reason when it cannot load."""
        with self._lock:
            options = {**state.runner, "num_predict": 1}
        start = time.perf_counter()
        kwargs = {"model": name, "messages": [{"role": "user", "content": "hi"}],
                  "options": options, "keep_alive": KEEP_ALIVE}
        try:
            reply = call_with_retries(lambda n: self._load_attempt(client, name, kwargs, known),
                                      self.policy, f"loading {name}")
        except (ModelLoadFailed, ServerGone):
            raise
        except RequestFailed as error:
            reason = getattr(error, "reason", str(error))
            attempts = getattr(error, "attempts", 1)
            raise load_failed(name, f"{reason} (after {attempts} attempts)" if attempts > 1
                              else reason, self.name, known) from None
        return _Warm(time.perf_counter() - start, reply.load_duration)

    def _load_attempt(self, client: ollama.Client, name: str, kwargs: dict[str, Any],
                      known: ModelInfo) -> ollama.ChatResponse:
        with Deadline(self.config.load_timeout) as deadline:
            try:
                return client.chat(**kwargs)
            except ollama.ResponseError as error:
                text, status = str(error.error), error.status_code
                if is_memory_error(text) or not (status == -1 or is_retryable_status(status)):
                    raise load_failed(name, text, self.name, known) from None
                raise Retryable(text, retry_after=_retry_after(status)) from None
            except httpx.TimeoutException:
                raise self._load_timed_out(name, known) from None
            except (ConnectionError, httpx.TransportError) as error:
                if deadline.fired:
                    raise self._load_timed_out(name, known) from None
                raise Retryable(f"connection to {self.host} failed: {error}",
                                refused=_refused(error)) from None
            except (ValueError, AttributeError, TypeError) as error:
                raise Retryable(f"the server sent an invalid reply: {_short(error)}") from None

    def _load_timed_out(self, name: str, known: ModelInfo) -> ModelLoadFailed:
        return load_failed(name, f"loading took longer than {self.config.load_timeout:g}s "
                           "(free memory, or close other loaded models)", self.name, known)

    def _chat_kwargs(self, name: str, request: Request) -> dict[str, Any]:
        options, top = ollama_options(request.options)
        pinned = self._pin(self._state(name), options)
        for key in RUNNER_KEYS:
            options.pop(key, None)
        options.update(pinned)
        return {"model": name, "messages": chat_messages(request), "options": options,
                "keep_alive": KEEP_ALIVE, **top}

    def _attempt(self, name: str, kwargs: dict[str, Any], local_wait: float,
                 n: int) -> Completion:
        """One streamed try; raises Retryable for transient failures."""
        client = self._client(self.config.timeout)
        start = time.perf_counter()
        got = self._consume(client, name, kwargs, start)
        end = time.perf_counter()
        if got.final is None:
            raise Retryable("the stream ended before its final chunk")
        return self._completion(name, got, end - start, local_wait, n)

    def _consume(self, client: ollama.Client, name: str, kwargs: dict[str, Any],
                 start: float) -> _Stream:
        got = _Stream()
        with Deadline(self.config.timeout) as deadline:
            try:
                stream = client.chat(**kwargs, stream=True)
                with contextlib.closing(stream):  # release the connection on any early exit
                    got = self._read(stream, got, start, deadline)
            except ollama.ResponseError as error:
                raise self._response_error(name, error) from None
            except httpx.TimeoutException:
                raise self._timed_out(name) from None
            except (ConnectionError, httpx.TransportError) as error:
                if deadline.fired:  # our deadline cut the read
                    raise self._timed_out(name) from None
                raise Retryable(f"connection to {self.host} failed: {error}",
                                refused=_refused(error)) from None
            except _BadLine as error:
                raise Retryable(f"the server sent an invalid stream line: {error}") from None
        if deadline.fired and got.final is None:
            raise self._timed_out(name)
        return got

    def _timed_out(self, name: str) -> RequestFailed:
        return RequestFailed(f"request to {name} timed out after {self.config.timeout:g}s "
                             "— raise --timeout")

    @staticmethod
    def _read(stream: Iterator[ollama.ChatResponse], got: _Stream, start: float,
              deadline: Deadline) -> _Stream:
        """Collect chunks: TTFT at the first non-empty content or thinking piece."""
        for chunk in _checked(stream):
            now = time.perf_counter()
            if deadline.passed:
                raise httpx.ReadTimeout("total request time exceeded")
            piece, thought = chunk.message.content or "", chunk.message.thinking or ""
            if got.ttft is None and (piece or thought):
                got.ttft = now - start
            got.content.append(piece)
            got.thinking.append(thought)
            if chunk.done:  # keep reading to the end of the body so the
                got.final = chunk  # connection goes back to the pool for reuse
        return got

    def _response_error(self, name: str, error: ollama.ResponseError) -> Exception:
        status = error.status_code
        if status == 404:
            return not_found(name)
        if is_memory_error(str(error.error)):  # the model no longer fits: retrying cannot help
            return RequestFailed(f"Ollama error ({status}): {error.error}")
        if status == -1 or is_retryable_status(status):  # -1: error line mid-stream
            return Retryable(f"Ollama error ({status}): {error.error}",
                             retry_after=_retry_after(status))
        return RequestFailed(f"Ollama refused the request ({status}): {error.error}")

    def _completion(self, name: str, got: _Stream, wall: float, local_wait: float,
                    attempts: int) -> Completion:
        final = got.final
        assert final is not None
        load = _seconds(final.load_duration)
        prompt_eval, decode = _seconds(final.prompt_eval_duration), _seconds(final.eval_duration)
        total = _seconds(final.total_duration)
        loaded = (load or 0.0) > LOAD_THRESHOLD_S
        if loaded:
            with self._lock:
                self._state(name).loads += 1
        server_queue = 0.0
        if total is not None:
            server_queue = max(0.0, total - (load or 0) - (prompt_eval or 0) - (decode or 0))
        hidden = server_queue + (load if loaded and load else 0.0)
        thinking, content = "".join(got.thinking), "".join(got.content)
        return Completion(
            text=f"<think>{thinking}</think>{content}" if thinking else content,
            model=name, latency_s=max(wall - hidden, 0.0),
            ttft_s=None if got.ttft is None else max(got.ttft - hidden, 0.0),
            prompt_tokens=final.prompt_eval_count, output_tokens=final.eval_count,
            decode_s=decode, prompt_eval_s=prompt_eval, load_s=load, server_total_s=total,
            done_reason=final.done_reason, queue_s=local_wait + server_queue,
            timing_source="server", attempts=attempts,
        )


class _BadLine(Exception):
    """A stream line that is not JSON, not an object, or not a chat chunk."""


def _checked(stream: Iterator[ollama.ChatResponse]) -> Iterator[ollama.ChatResponse]:
    """The stream's chunks; a line the client cannot parse becomes `_BadLine` (the client
    raises JSONDecodeError, AttributeError or pydantic's ValidationError for those)."""
    while True:
        try:
            chunk = next(stream)
        except StopIteration:
            return
        except (ValueError, AttributeError, TypeError) as error:
            raise _BadLine(_short(error)) from None
        yield chunk


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}"


def _refused(error: BaseException) -> bool:
    """True when the host refused the connection (the client's own ConnectionError, or
    httpx's ConnectError for streams): nothing listens there any more."""
    return type(error) is ConnectionError or isinstance(error, httpx.ConnectError)


def _retry_after(status: int) -> float | None:
    """The server's `Retry-After` on a 429/503 answer of this thread's current attempt."""
    if status not in (429, 503):
        return None
    response = current_response()
    return retry_after_header(response.headers) if response is not None else None


@dataclass(frozen=True)
class _Warm:
    """The warm-up request's client wall time and server load_duration (ns)."""

    wall_s: float
    load_duration: int | None


def create(config: BackendConfig) -> OllamaBackend:
    """Factory used by the backend registry; fails fast when nothing listens at the host."""
    backend = OllamaBackend(config)
    if ping(backend.host, timeout=min(2.0, config.timeout)) is None:
        raise unreachable(backend.host)
    return backend
