"""OpenAI-compatible routes for the Ollama stand-in: `POST /v1/chat/completions`, `GET /v1/models`.

They speak Ollama's `/v1` shapes (`shared/notes/ollama-api.md` §2.12): SSE `data: {chunk}` lines,
the role on the first delta, a dedicated finish chunk with an empty delta, a usage chunk
(`"choices": []`) only with `stream_options.include_usage`, then `data: [DONE]`; OpenAI-style
error objects. Generation runs on the stand-in's own engine (`standin.state.generation`), so
queueing, loads, token delays, counters and the armed faults (`fail_next`, `drop_next`,
`delay_next`) apply here exactly as on `/api/chat`.

`OPENAI_ROUTES` is merged into the stand-in's route table. `chat_completions(usage=False)` streams without any usage
chunk, as llama.cpp's server does. Tests that need more than Ollama
does (Ollama ignores API keys and never rate-limits) install per-instance variants:

    server.add_route("POST", "/v1/chat/completions", chat_completions(api_key="sk-good"))
    limiter = RateLimited(times=1, retry_after=0.3)        # 429 + Retry-After, then serve
    server.add_route("POST", "/v1/chat/completions", limiter)
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from moebench.testing.standin_models import MODIFIED_AT

if TYPE_CHECKING:
    from moebench.testing.ollama_standin import OllamaStandin, StandinRequest

Handler = Callable[["OllamaStandin", "StandinRequest"], None]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                404: "not_found_error", 429: "rate_limit_error"}
#: OpenAI request keys → Ollama runner options (notes §2.12; `max_completion_tokens` is ignored)
_OPTION_KEYS = {"max_tokens": "num_predict", "temperature": "temperature", "top_p": "top_p",
                "seed": "seed", "stop": "stop", "frequency_penalty": "frequency_penalty",
                "presence_penalty": "presence_penalty", "ignore_eos": "ignore_eos"}


def send_error(req: StandinRequest, status: int, message: str,
               headers: Mapping[str, str] | None = None) -> None:
    """An OpenAI-style error object (`{"error": {"message", "type", "param", "code"}}`)."""
    body = {"error": {"message": message, "type": _ERROR_TYPES.get(status, "api_error"),
                      "param": None, "code": None}}
    data = json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (f"HTTP/1.1 {status} {req.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n{extra}"
            f"Date: {req.date_time_string()}\r\n\r\n")
    req.wfile.write(head.encode() + data)


def _authorized(req: StandinRequest, api_key: str | None) -> bool:
    """Check `Authorization: Bearer KEY` when the route requires a key (401 otherwise)."""
    if api_key is None or req.headers.get("Authorization") == f"Bearer {api_key}":
        return True
    send_error(req, 401, "Incorrect API key provided.")
    return False


def models_route(api_key: str | None = None) -> Handler:
    """`GET /v1/models`: the installed models as an OpenAI list."""

    def handle(standin: OllamaStandin, req: StandinRequest) -> None:
        if not _authorized(req, api_key):
            return
        created = int(MODIFIED_AT.timestamp())
        data = [{"id": m.full_name, "object": "model", "created": created,
                 "owned_by": "library"} for m in standin.state.installed.values()]
        req.send_json({"object": "list", "data": data})

    return handle


def chat_completions(api_key: str | None = None, usage: bool = True) -> Handler:
    """`POST /v1/chat/completions`, streaming (SSE) or not; `api_key` makes the key required.

    `usage=False` never sends token usage in streams, even when asked (llama.cpp's server).
    """

    def handle(standin: OllamaStandin, req: StandinRequest) -> None:
        arrival = time.perf_counter_ns()
        if not _authorized(req, api_key):
            return
        body = req.json_body()
        if body is None:
            return
        messages = [dict(m) for m in body.get("messages") or []]
        if not messages:
            return send_error(req, 400, "[] is too short - 'messages'")
        name = str(body.get("model") or "")
        model = standin.state.find(name) if name else None
        if model is None:
            return send_error(req, 404, f"model '{name}' not found")
        refusal = standin.state.faults.load_failure(model)
        if refusal is not None:
            return send_error(req, refusal[0], refusal[1])
        if standin.state.queue_full():
            return send_error(req, 503, "server busy, please try again.  maximum pending "
                                        "requests exceeded")
        options = {ours: body[theirs] for theirs, ours in _OPTION_KEYS.items()
                   if body.get(theirs) is not None}
        run = standin.state.generation(model, messages, options, None, None, arrival)
        include_usage = usage and bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            if body.get("stream"):
                _stream(req, name, run, include_usage)
            else:
                req.send_json(_whole(name, run))
        finally:
            run.close()

    return handle


def _envelope(model: str, obj: str, created: int, rid: str) -> dict[str, Any]:
    return {"id": rid, "object": obj, "created": created, "model": model,
            "system_fingerprint": "fp_ollama"}


def _usage(metrics: Mapping[str, Any]) -> dict[str, int]:
    prompt, output = int(metrics["prompt_eval_count"]), int(metrics["eval_count"])
    return {"prompt_tokens": prompt, "completion_tokens": output,
            "total_tokens": prompt + output}


def _stream(req: StandinRequest, model: str, run: Iterator[Any], include_usage: bool) -> None:
    """SSE chunks: role on the first delta, a finish chunk, the usage chunk, `[DONE]`."""
    base = _envelope(model, "chat.completion.chunk", int(time.time()),
                     f"chatcmpl-{random.randint(0, 998)}")
    req.start_chunked("text/event-stream")

    def event(choices: list[dict[str, Any]], **extra: Any) -> None:
        data = json.dumps({**base, "choices": choices, **extra})
        req.write_chunk(f"data: {data}\n\n".encode())

    first = True
    for item in run:
        if isinstance(item, dict):
            event([{"index": 0, "delta": {}, "finish_reason": item["done_reason"]}])
            if include_usage:
                event([], usage=_usage(item))
            req.write_chunk(b"data: [DONE]\n\n")
            return req.end_chunked()
        kind, piece = item
        delta = {"role": "assistant"} if first else {}
        delta["reasoning" if kind == "thinking" else "content"] = piece
        first = False
        event([{"index": 0, "delta": delta, "finish_reason": None}])


def _whole(model: str, run: Iterator[Any]) -> dict[str, Any]:
    """The non-streaming `chat.completion` object."""
    parts: dict[str, list[str]] = {"content": [], "thinking": []}
    metrics: dict[str, Any] = {}
    for item in run:
        if isinstance(item, dict):
            metrics = item
        else:
            parts[item[0]].append(item[1])
    message: dict[str, Any] = {"role": "assistant", "content": "".join(parts["content"])}
    if parts["thinking"]:
        message["reasoning"] = "".join(parts["thinking"])
    return {**_envelope(model, "chat.completion", int(time.time()),
                        f"chatcmpl-{random.randint(0, 998)}"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": metrics.get("done_reason", "stop")}],
            "usage": _usage(metrics)}


class RateLimited:
    """A chat-completions handler that answers 429 with `Retry-After` the first `times` calls,
    then serves normally; `arrivals` holds the perf_counter time of every call."""

    def __init__(self, times: int = 1, retry_after: float = 1.0,
                 inner: Handler | None = None) -> None:
        self.remaining = times
        self.retry_after = retry_after
        self.inner = inner or chat_completions()
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, standin: OllamaStandin, req: StandinRequest) -> None:
        with self._lock:
            self.arrivals.append(time.perf_counter())
            limited = self.remaining > 0
            self.remaining -= 1 if limited else 0
        if not limited:
            return self.inner(standin, req)
        send_error(req, 429, "Rate limit reached; try again later.",
                   {"Retry-After": f"{self.retry_after:g}"})


#: merged into the stand-in's route table (path → method → handler)
OPENAI_ROUTES: dict[str, dict[str, Handler]] = {
    "/v1/chat/completions": {"POST": chat_completions()},
    "/v1/models": {"GET": models_route()},
}
