"""The OpenAI-compatible backend: `/v1/chat/completions` through the official `openai` client.

Works with any server speaking the Chat Completions API (Ollama's `/v1`, vLLM, llama.cpp's
server, LM Studio, hosted APIs). `--host` is the base URL; a URL without a path gets `/v1`
(`http://127.0.0.1:11434` → `http://127.0.0.1:11434/v1`). The API key is read from the
environment variable named by `--api-key-env` (default `OPENAI_API_KEY`) when the client is
built and is kept only inside the client: never in the store, CSVs, reports or logs.

Timings per request (client clock `perf_counter`):
* `ttft_s`: send → first non-empty content or reasoning delta;
  `latency_s`: send → end of stream.
* token counts from the usage chunk (`stream_options.include_usage`). Servers that send no
  usage in streams (llama.cpp's server) get their output tokens counted from the streamed
  content chunks, one token each on llama.cpp-family servers (`timing_source="client-chunks"`).
* `decode_s`: the server's own figure when it sends one (llama.cpp's `timings.predicted_ms`,
  `timing_source="server"`); otherwise estimated from the client's first → last token gap
  (`timing_source="client"`, see `StreamClock.client_decode_s`). The API reports no load or
  queue times, so `latency_s` may include server-side queueing.

`prepare` lists `/v1/models` to check the model exists (skipped when the server has no such
route), then warms it up with one short request whose wall time is recorded as the load time. The
warm-up is retried like a request; a 5xx that persists (or a memory refusal, at once) raises
`ModelLoadFailed` so the run goes on to the next model. `--timeout` is a wall-clock deadline
per attempt (`_deadline.Deadline` cuts a stream that goes quiet or trickles).
MoE facts and memory are unknown through this API (None). `unload` is a no-op: the API has no
way to free a model. Retries follow the Ollama backend: connection errors, 5xx, 408/429 (after
the server's `Retry-After` when given) and streams that end without a finish reason are retried
with exponential backoff; a timeout is not retried. The client's own retries are off
(`max_retries=0`) so this policy is the only one. Streams are read to the end of the body
after `[DONE]` so the pooled connection is reused (see `_DrainingDecoder`).
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
from openai._streaming import SSEDecoder, ServerSentEvent

from moebench.backends import BackendConfig
from moebench.backends._common import StreamClock, chat_messages
from moebench.backends._deadline import Deadline
from moebench.backends._load import is_memory_error, load_failed
from moebench.backends._retry import (
    RetryPolicy, Retryable, call_with_retries, is_retryable_status, retry_after_header,
)
from moebench.errors import (
    AuthError, BackendError, BackendUnavailable, ModelLoadFailed, ModelNotFound, RequestFailed,
    ServerGone,
)
from moebench.paths import default_host
from moebench.types import Completion, ModelInfo, Request

#: our generation keys sent as top-level Chat Completions fields; others go in `extra_body`
STANDARD_KEYS = ("temperature", "top_p", "seed", "stop", "max_tokens")
#: the HTTP library the installed openai client uses (httpx, or httpx2 in newer releases)
_HTTP = getattr(importlib.import_module("openai._base_client"), "httpx2", None) or httpx
#: transport errors a stream may raise while it is read (either library)
_TRANSPORT_ERRORS = (httpx.TransportError, _HTTP.TransportError)
#: the warm-up request: as short as a request can be
_WARM_UP = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
_MAX_LISTED = 12


def base_url(host: str | None) -> str:
    """`--host` as an OpenAI base URL: `/v1` is added when the URL has no path."""
    url = (host or default_host()).strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url if urlsplit(url).path not in ("", "/") else url + "/v1"


def request_params(options: Mapping[str, Any]) -> dict[str, Any]:
    """Our generation options → `create()` keyword arguments (non-standard keys in extra_body)."""
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        (params if key in STANDARD_KEYS else extra)[key] = value
    if extra:
        params["extra_body"] = extra
    return params


class _DrainingDecoder(SSEDecoder):
    """Reads the body to its end before handing over `[DONE]`.

    The client stops reading at `[DONE]` and closes the response before the chunked body's
    terminator is read, which drops the connection from the pool (openai-python issue #3440):
    every streamed request would then pay a new TCP (and TLS) handshake inside its TTFT.
    """

    def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[ServerSentEvent]:
        for event in super().iter_bytes(iterator):
            if event.data.startswith("[DONE]"):
                for _ in iterator:  # only the terminator is left: lets the pool keep it
                    pass
            yield event


class _Client(openai.OpenAI):
    """The official client with connection reuse after streams (see `_DrainingDecoder`)."""

    def _make_sse_decoder(self) -> SSEDecoder:
        return _DrainingDecoder()


@dataclass
class _Stream:
    """What one streamed attempt collected."""

    clock: StreamClock = field(default_factory=StreamClock)
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    model: str | None = None
    finish_reason: str | None = None
    usage: Any = None
    #: llama.cpp server's per-request `timings` (ms), when sent
    timings: Mapping[str, Any] | None = None
    #: chunks that carried content or reasoning text (the token count when usage is missing)
    text_chunks: int = 0


class OpenAIBackend:
    """Backend protocol implementation for an OpenAI-compatible server; thread-safe."""

    name = "openai"

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.url = base_url(config.host)
        self.key_env = config.api_key_env
        self.policy = RetryPolicy(config.retries, config.backoff_s)
        self._slots = threading.BoundedSemaphore(max(1, config.concurrency))
        self._resolved: dict[str, str] = {}
        # A local server needs no key, but the client insists on one: send a placeholder.
        self._client = _Client(
            base_url=self.url, api_key=os.environ.get(self.key_env) or "no-key",
            max_retries=0, timeout=config.timeout)

    # ---- protocol -----------------------------------------------------------------------
    def check(self, model: str) -> None:
        """The model is listed by `/v1/models` (when the server has that route)."""
        self._resolve(model)

    def prepare(self, model: str) -> ModelInfo:
        """Check the model is listed, warm it up (wall time = load time); MoE facts unknown.

        The warm-up is retried like a request; ModelLoadFailed when the server cannot load it.
        """
        name = self._resolve(model)
        start = time.perf_counter()
        try:
            call_with_retries(lambda n: self._warm_up(name), self.policy, f"loading {name}")
        except (ModelLoadFailed, ServerGone):
            raise
        except RequestFailed as error:
            reason, attempts = getattr(error, "reason", str(error)), getattr(error, "attempts", 1)
            raise load_failed(name, f"{reason} (after {attempts} attempts)" if attempts > 1
                              else reason, self.name, self._known(name)) from None
        wall = time.perf_counter() - start
        return ModelInfo(name=name, backend=self.name, load_s=wall,
                         extra={"base_url": self.url, "warmup_wall_s": wall,
                                "load_source": "client (warm-up wall time)"})

    def _warm_up(self, name: str) -> None:
        """One short request; Retryable for transient failures, ModelLoadFailed otherwise."""
        client = self._client.with_options(timeout=self.config.load_timeout)
        try:
            client.chat.completions.create(model=name, **_WARM_UP)
        except openai.APITimeoutError:
            raise load_failed(name, f"loading took longer than {self.config.load_timeout:.0f}s "
                              "(free memory, or close other loaded models)", self.name,
                              self._known(name)) from None
        except openai.APIStatusError as error:
            text, status = _message(error), error.status_code
            if status in (401, 403, 404):
                raise self._fatal(error, name) from None
            if is_memory_error(text) or not is_retryable_status(status):
                raise load_failed(name, f"{text} ({status})", self.name,
                                  self._known(name)) from None
            raise Retryable(f"{text} ({status})", retry_after=_retry_after(error)) from None
        except openai.APIConnectionError as error:
            raise Retryable(f"connection to {self.url} failed: {error}",
                            refused=_refused(error)) from None
        except (openai.OpenAIError, ValueError) as error:
            raise Retryable(f"the server sent an invalid reply: {error}") from None

    def _known(self, name: str) -> ModelInfo:
        return ModelInfo(name=name, backend=self.name, extra={"base_url": self.url})

    def generate(self, model: str, request: Request) -> Completion:
        """Stream one chat completion; retries transient failures, then raises RequestFailed."""
        name = self._resolved.get(model, model)
        params = {"model": name, "messages": chat_messages(request),
                  **request_params(request.options)}
        waited = time.perf_counter()
        with self._slots:
            local_wait = time.perf_counter() - waited
            return call_with_retries(lambda n: self._attempt(name, params, local_wait, n),
                                     self.policy, f"request to {name}")

    def unload(self, model: str) -> ModelInfo | None:
        """Nothing to do: the Chat Completions API cannot free a model."""
        return None

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    # ---- helpers ------------------------------------------------------------------------
    def _resolve(self, model: str) -> str:
        """The server's id for `model` (`dbrx` matches `dbrx:latest`); ModelNotFound if absent."""
        ids = self._model_ids()
        found = next((c for c in (model, f"{model}:latest") if c in (ids or ())), None)
        if ids is None or found is not None:
            self._resolved[model] = found or model
            return self._resolved[model]
        shown = ", ".join(ids[:_MAX_LISTED]) + (", ..." if len(ids) > _MAX_LISTED else "")
        raise ModelNotFound(f"model '{model}' not found at {self.url} — it has: "
                            f"{shown or 'no models'}")

    def _model_ids(self) -> list[str] | None:
        """`/v1/models` ids, or None when the server has no such route (the warm-up checks)."""
        try:
            return [m.id for m in self._client.models.list()]
        except openai.APIStatusError as error:
            if error.status_code in (404, 405, 501):
                return None
            raise self._fatal(error, "") from None
        except openai.OpenAIError as error:
            raise self._fatal(error, "") from None

    def _attempt(self, name: str, params: dict[str, Any], local_wait: float,
                 n: int) -> Completion:
        """One streamed try; raises Retryable for transient failures."""
        got = _Stream()
        with Deadline(self.config.timeout) as deadline:
            try:
                stream = self._client.chat.completions.create(
                    **params, stream=True, stream_options={"include_usage": True})
                deadline.attach(stream.response)  # cuts a stream that stalls or trickles
                for chunk in stream:
                    _collect(got, chunk)
                    if deadline.passed:  # the read timeout is per chunk only
                        raise self._timed_out(name)
            except openai.OpenAIError as error:
                raise (self._timed_out(name) if deadline.fired else
                       self._failure(error, name)) from None
            except (*_TRANSPORT_ERRORS, ValueError, AttributeError, TypeError) as error:
                if deadline.fired:
                    raise self._timed_out(name) from None
                raise Retryable(f"the stream broke: {type(error).__name__}: {error}") from None
        end = time.perf_counter()
        if got.finish_reason is None:
            raise Retryable("the stream ended before its finish chunk")
        return _completion(name, got, end, local_wait, n)

    def _timed_out(self, name: str) -> RequestFailed:
        return RequestFailed(f"request to {name} timed out after {self.config.timeout:g}s "
                             "— raise --timeout")

    def _failure(self, error: openai.OpenAIError, name: str) -> Exception:
        """A request's error → Retryable (transient), RequestFailed, or a run-ending error."""
        if isinstance(error, openai.APITimeoutError):
            return RequestFailed(f"request to {name} timed out after "
                                 f"{self.config.timeout:g}s — raise --timeout")
        if isinstance(error, openai.APIConnectionError):
            return Retryable(f"connection to {self.url} failed: {error}",
                             refused=_refused(error))
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            if status in (401, 403, 404):
                return self._fatal(error, name)
            if is_retryable_status(status) and not is_memory_error(_message(error)):
                return Retryable(f"server error ({status}): {_message(error)}",
                                 retry_after=_retry_after(error))
            return RequestFailed(f"server refused the request ({status}): {_message(error)}")
        return Retryable(f"server error mid-stream: {_message(error)}")  # SSE error event

    def _fatal(self, error: openai.OpenAIError, name: str) -> BackendError:
        """Errors that end the run: no server, a refused key, an unknown model."""
        if isinstance(error, openai.APIConnectionError):
            return BackendUnavailable(f"no OpenAI-compatible server answers at {self.url} — "
                                      "start it or pass --host URL")
        status = getattr(error, "status_code", None)
        if status in (401, 403):
            state = "is not set" if not os.environ.get(self.key_env) else "was refused"
            return AuthError(f"the server at {self.url} refused the API key ({status}): "
                             f"${self.key_env} {state} — export a valid key or pass "
                             "--api-key-env NAME")
        if status == 404:
            return ModelNotFound(f"model '{name}' not found at {self.url} — check the name "
                                 "with the server's model list")
        return BackendError(f"the server at {self.url} failed: {_message(error)}")


def _collect(got: _Stream, chunk: Any) -> None:
    """Fold one ChatCompletionChunk into `got` (content, reasoning, finish, usage, timings)."""
    got.model = chunk.model or got.model
    if chunk.usage is not None:
        got.usage = chunk.usage
    extra = chunk.model_extra or {}
    if isinstance(extra.get("timings"), Mapping):
        got.timings = extra["timings"]
    text = thought = ""
    for choice in chunk.choices or []:
        delta = choice.delta
        if delta is not None:
            text += delta.content or ""
            thought += getattr(delta, "reasoning", None) or getattr(
                delta, "reasoning_content", None) or ""
        got.finish_reason = choice.finish_reason or got.finish_reason
    got.clock.mark(bool(text or thought))
    got.text_chunks += bool(text or thought)
    got.content.append(text)
    got.reasoning.append(thought)


def _completion(name: str, got: _Stream, end: float, local_wait: float,
                attempts: int) -> Completion:
    usage = got.usage
    timings = got.timings or {}
    output = getattr(usage, "completion_tokens", None) or _int(timings.get("predicted_n"))
    counted = output is None and got.text_chunks > 0  # no usage: one token per chunk
    if counted:
        output = got.text_chunks
    decode, source = _ms(timings.get("predicted_ms")), "server"
    if decode is None:
        decode = got.clock.client_decode_s(output)
        source = "client-chunks" if counted else "client"
    thinking, content = "".join(got.reasoning), "".join(got.content)
    return Completion(
        text=f"<think>{thinking}</think>{content}" if thinking else content,
        model=got.model or name, latency_s=end - got.clock.start, ttft_s=got.clock.ttft_s,
        prompt_tokens=getattr(usage, "prompt_tokens", None) or _int(timings.get("prompt_n")),
        output_tokens=output, decode_s=decode, prompt_eval_s=_ms(timings.get("prompt_ms")),
        done_reason=got.finish_reason, queue_s=local_wait, timing_source=source,
        attempts=attempts,
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _ms(value: Any) -> float | None:
    return float(value) / 1000.0 if isinstance(value, (int, float)) and value > 0 else None


def _message(error: openai.OpenAIError) -> str:
    """The server's own message (`error.message` of the body), else the exception text."""
    body = getattr(error, "body", None)
    if isinstance(body, str) and body:  # the client unwraps {"error": "..."} to the string
        return body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if body.get("message"):
            return str(body["message"])
    return str(getattr(error, "message", None) or error)


def _retry_after(error: openai.APIStatusError) -> float | None:
    """Seconds from `Retry-After` (or `retry-after-ms`), when the server sent one."""
    return retry_after_header(error.response.headers)


def _refused(error: openai.APIConnectionError) -> bool:
    """True when the host refused the connection (nothing listens there any more)."""
    return isinstance(error.__cause__, (httpx.ConnectError, _HTTP.ConnectError))


def create(config: BackendConfig) -> OpenAIBackend:
    """Factory used by the backend registry."""
    return OpenAIBackend(config)
