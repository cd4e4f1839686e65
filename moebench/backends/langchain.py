"""The LangChain backend: each request runs a `ChatPromptTemplate | ChatOllama` chain, streamed.

It measures what an application built on LangChain sees, against the same Ollama server. It
is the Ollama backend with one part swapped: the streamed chat request goes through the chain
(`_ChainClient.chat(stream=True)`), so warm-up, unload, timeouts, retries, queue accounting and
the Completion fields follow exactly the Ollama backend's rules (`moebench.backends.ollama`).
Model management (existence check, warm-up with the load time recorded apart, `/api/ps`
memory, MoE facts, unload with `keep_alive: 0`) uses the native client, since LangChain has no
API for it.

Where the numbers come from:
* `ttft_s`, `latency_s`: client clock around the chain (LangChain's overhead included).
* `prompt_tokens`, `output_tokens`, `decode_s` (`eval_duration`), `prompt_eval_s`, `load_s`,
  `server_total_s`, `done_reason`: Ollama's final chunk, which langchain-ollama exposes as the
  last message chunk's `response_metadata` (ns) and `usage_metadata` (`timing_source="server"`).
* If a LangChain version stops exposing `eval_duration`, `decode_s` is estimated from the
  client's first → last token gap and labelled `timing_source="client"`.
Thinking text reaches us only when the request sets `think` (LangChain drops it otherwise).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import httpx
import ollama
from langchain_core.messages import AIMessageChunk
from langchain_core.prompts import ChatPromptTemplate
from langchain_ollama import ChatOllama

from moebench.backends import BackendConfig
from moebench.backends._common import StreamClock
from moebench.backends._deadline import hook
from moebench.backends.ollama import OllamaBackend
from moebench.backends.ollama_api import ping, unreachable
from moebench.types import Completion, ModelInfo

if TYPE_CHECKING:
    from moebench.backends.ollama import _Stream as OllamaStream

#: the chain's prompt: the request's system message (when it has one) and its prompt
_PROMPTS = {
    True: ChatPromptTemplate.from_messages([("system", "{system}"), ("human", "{prompt}")]),
    False: ChatPromptTemplate.from_messages([("human", "{prompt}")]),
}
#: the message LangChain raises when a stream ends before any chunk
_NO_CHUNKS = "No generation chunks were returned"


def chat_response(chunk: AIMessageChunk) -> ollama.ChatResponse:
    """A LangChain message chunk as the Ollama `ChatResponse` it was made from.

    The final chunk's `response_metadata` is Ollama's done chunk minus `message` (durations in
    ns); token counts missing there are taken from `usage_metadata`.
    """
    thinking = chunk.additional_kwargs.get("reasoning_content") or None
    content = chunk.content if isinstance(chunk.content, str) else ""
    fields: dict[str, Any] = {"done": False}
    meta = chunk.response_metadata or {}
    if meta.get("done") is True:
        usage = chunk.usage_metadata or {}
        fields = {"prompt_eval_count": usage.get("input_tokens"),
                  "eval_count": usage.get("output_tokens"), **meta}
    message = {"role": "assistant", "content": content, "thinking": thinking}
    return ollama.ChatResponse.model_validate({**fields, "message": message})


class _ChainClient:
    """An `ollama.Client` whose streamed `chat` runs the LangChain chain instead.

    Everything else (show, ps, list, the non-streamed warm-up, unload) is the wrapped client's.
    One per thread and timeout, like the clients of the Ollama backend.
    """

    def __init__(self, client: ollama.Client, llm: Callable[[str], ChatOllama],
                 clocks: threading.local) -> None:
        self._native = client
        self._llm = llm
        self._clocks = clocks

    def __getattr__(self, name: str) -> Any:
        return getattr(self._native, name)

    def chat(self, model: str = "", messages: Sequence[Mapping[str, Any]] | None = None, *,
             stream: bool = False, **kwargs: Any) -> Any:
        """Through the chain: an iterator of ChatResponse chunks, or (not streamed, as the
        warm-up asks) the final chunk carrying the whole text."""
        chunks = self._stream(model, list(messages or []), **kwargs)
        if stream:
            return chunks
        text: list[str] = []
        for chunk in chunks:
            text.append(chunk.message.content or "")
            if chunk.done:
                chunk.message.content = "".join(text)
                return chunk
        raise ollama.ResponseError("the stream ended before its final chunk", -1)

    def _stream(self, model: str, messages: list[Mapping[str, Any]], *,
                options: Mapping[str, Any] | None = None, keep_alive: Any = None,
                think: Any = None,
                format: Any = None,  # noqa: A002 - the client's own keyword
                ) -> Iterator[ollama.ChatResponse]:
        system = next((str(m["content"]) for m in messages if m.get("role") == "system"), None)
        prompt = str(messages[-1]["content"]) if messages else ""
        llm = self._llm(model).bind(options=dict(options or {}), keep_alive=keep_alive,
                                    reasoning=think, format=format)
        chain = _PROMPTS[system is not None] | llm
        clock = self._clocks.clock = StreamClock()
        variables = {"prompt": prompt} | ({"system": system} if system is not None else {})
        try:
            for chunk in chain.stream(variables):
                response = chat_response(cast(AIMessageChunk, chunk))
                clock.mark(bool(response.message.content or response.message.thinking))
                yield response
        except ValueError as error:
            if _NO_CHUNKS not in str(error):  # an empty stream just ends (no final chunk)
                raise



class LangChainBackend(OllamaBackend):
    """The Ollama backend with its streamed requests sent through a LangChain chain."""

    name = "langchain"

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        self._chains = threading.local()
        self._clocks = threading.local()
        #: (model, timeout) → its ChatOllama, shared by all threads (httpx pools are thread-safe)
        self._llms: dict[tuple[str, float], ChatOllama] = {}

    def _client(self, timeout: float) -> ollama.Client:
        """The Ollama backend's client for this thread, wrapped so streaming uses the chain."""
        cache: dict[float, _ChainClient] = self._chains.__dict__.setdefault("clients", {})
        if timeout not in cache:
            cache[timeout] = _ChainClient(super()._client(timeout),
                                          lambda model: self._llm(model, timeout), self._clocks)
        return cast(ollama.Client, cache[timeout])

    def _llm(self, model: str, timeout: float) -> ChatOllama:
        """The ChatOllama for `model` with this timeout (built once, then shared)."""
        with self._lock:
            if (model, timeout) not in self._llms:
                limit = httpx.Timeout(timeout, connect=min(timeout, 10.0))
                self._llms[(model, timeout)] = ChatOllama(
                    model=model, base_url=self.host, client_kwargs={"timeout": limit},
                    # the wall-clock deadline of each attempt watches the chain's responses too
                    sync_client_kwargs={"event_hooks": {"response": [hook]}})
            return self._llms[(model, timeout)]

    def prepare(self, model: str, options: Mapping[str, Any] | None = None) -> ModelInfo:
        """The Ollama backend's prepare, its warm-up request sent through the chain."""
        info = super().prepare(model, options)
        self._llm(info.name, self.config.timeout)  # built now, not inside the first sample
        return replace(info, backend=self.name)

    def unload(self, model: str) -> ModelInfo | None:
        """Free the model (`keep_alive: 0`, native client)."""
        info = super().unload(model)
        return None if info is None else replace(info, backend=self.name)

    def close(self) -> None:
        """Close the native clients and the chat models' own clients."""
        super().close()
        with self._lock:
            llms, self._llms = list(self._llms.values()), {}
        for llm in llms:
            native = getattr(llm, "_client", None)  # ChatOllama keeps its ollama.Client here
            if native is not None:
                native.close()

    def _completion(self, name: str, got: OllamaStream, wall: float, local_wait: float,
                    attempts: int) -> Completion:
        """The Ollama backend's Completion; decode time from the client if LangChain hid it."""
        done = super()._completion(name, got, wall, local_wait, attempts)
        if done.decode_s is not None:
            return done
        clock: StreamClock | None = getattr(self._clocks, "clock", None)
        decode = clock.client_decode_s(done.output_tokens) if clock else None
        return replace(done, decode_s=decode, timing_source="client")


def create(config: BackendConfig) -> LangChainBackend:
    """Factory used by the backend registry; fails fast when nothing listens at the host."""
    backend = LangChainBackend(config)
    if ping(backend.host, timeout=min(2.0, config.timeout)) is None:
        raise unreachable(backend.host)
    return backend
