"""A loopback stand-in for an Ollama server, for tests and benchmarks (no weights, no network).

It speaks the real JSON / NDJSON shapes of `shared/notes/ollama-api.md` (checklist §8) so the
official `ollama` client, langchain-ollama and our backends can be driven for real:
`GET|HEAD /`, `/api/version`, `/api/tags`, `POST /api/show`, `/api/generate`, `/api/chat`
(streaming and not), `/api/pull` (streamed per-layer progress; an error line for unknown
models), `GET /api/ps`, `DELETE /api/delete`, and the OpenAI-compatible `/v1/chat/completions`
and `/v1/models` (from `openai_routes`); 404 `{"error": "model 'x' not found"}`; plain
`404 page not found` / `405 method not allowed` for unknown routes. Handlers live in a route
table (`ROUTES` / `register_route`, or `server.add_route(...)` per instance): a handler gets
`(standin, request)` and can use `standin.state.generation(...)` for queueing, loads and
token timing.

    with OllamaStandin(token_delay=0.01, load_delay=0.3, parallel=2) as server:
        client = ollama.Client(server.url)
        server.faults.fail_next(2)          # next 2 generation requests → 500
        server.stats.loads["mixtral:8x7b"]  # counters

Constructor keyword arguments (all optional; or pass `config=StandinConfig(...)`):
  models            installed models: FakeModel objects or names from `standin_models.LIBRARY`
                    (default `DEFAULT_INSTALLED`: mixtral:8x7b, deepseek-v2:16b, granite3-moe:1b)
  registry          what `/api/pull` can fetch (default: all of LIBRARY plus `models`)
  responder         `(model, messages, options) -> str`; default `canned_responder`
                    (deterministic per prompt). A leading `<think>…</think>` becomes
                    `message.thinking` for models with the `thinking` capability.
  token_delay       seconds before each output token (so tokens/s ≈ 1 / token_delay)
  first_token_delay seconds of "prompt processing" before the first token
  load_delay        seconds to load a model that is not resident (reported as load_duration)
  parallel          generation slots (OLLAMA_NUM_PARALLEL, default 1); extra requests queue
  max_queue         queued requests beyond which the server answers 503 (default 512)
  pull_steps, pull_step_delay   progress lines per layer while pulling, and the pause between
  keep_alive_s      default keep-alive (300 s); requests' `keep_alive` (0 unloads, <0 forever)
  version           what `/api/version` reports
  host, port        bind address (default 127.0.0.1, an ephemeral port)
Attributes: `url`, `state` (models, loaded models), `stats` (requests, by_path, loads per
model, max_in_flight, max_pending, log of (method, path, body)), `faults` (`fail_next`,
`drop_next`, `delay_next`, `fail_every`, `drop_every`, `trickle_next`, `bad_line_next`,
`die_after`, `fail_loads`, `clear`). `kill()` stops the server like a killed process.

Run as a process: `python -m moebench.testing.ollama_standin --port 0 [--token-delay S]
[--load-delay S] [--parallel N] [--model NAME ...] [--responder module:function]
[--answer TEXT] [--rates PP,TG]` (`--rates`: timed models, see `standin_speed`); it prints `listening on http://127.0.0.1:PORT` once ready and serves until
killed.
"""

from __future__ import annotations

import argparse
import importlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from moebench.testing.standin_engine import (
    Faults, StandinConfig, StandinState, Stats, canned_responder, parse_keep_alive,
)
from moebench.testing.openai_routes import OPENAI_ROUTES
from moebench.testing.standin_http import Handler, StandinRequest, _Server
from moebench.testing.standin_speed import timed
from moebench.testing.standin_models import (
    DEFAULT_INSTALLED, LIBRARY, FakeModel, normalize_name, ps_entry, show_payload, tags_entry,
    utc_now,
)

# ---- route handlers ---------------------------------------------------------------------------
def _root(standin: OllamaStandin, req: StandinRequest) -> None:
    req.send_text("Ollama is running")


def _version(standin: OllamaStandin, req: StandinRequest) -> None:
    req.send_json({"version": standin.state.config.version})


def _tags(standin: OllamaStandin, req: StandinRequest) -> None:
    req.send_json({"models": [tags_entry(m) for m in standin.state.installed.values()]})


def _ps(standin: OllamaStandin, req: StandinRequest) -> None:
    rows = standin.state.resident()
    req.send_json({"models": [ps_entry(m, expires, ctx) for m, expires, ctx in rows]})


def _model_or_404(standin: OllamaStandin, req: StandinRequest, body: dict[str, Any],
                  shown: str | None = None) -> FakeModel | None:
    name = str(body.get("model") or body.get("name") or "")
    model = standin.state.find(name) if name else None
    if model is None:
        req.send_json({"error": f"model '{shown or name}' not found"}, 404)
    return model


def _show(standin: OllamaStandin, req: StandinRequest) -> None:
    body = req.json_body()
    if body is None:
        return
    name = str(body.get("model") or body.get("name") or "")
    if not name:
        return req.send_json({"error": "model is required"}, 400)
    model = _model_or_404(standin, req, body, shown=normalize_name(name))
    if model is not None:
        req.send_json(show_payload(model))


def _delete(standin: OllamaStandin, req: StandinRequest) -> None:
    body = req.json_body()
    model = _model_or_404(standin, req, body) if body is not None else None
    if model is not None:
        with standin.state.lock:
            standin.state.installed.pop(model.full_name.lower(), None)
            standin.state.loaded.pop(model.full_name.lower(), None)
        req.send_bytes(b"", 200, "text/plain; charset=utf-8")


def _pull(standin: OllamaStandin, req: StandinRequest) -> None:
    body = req.json_body()
    if body is None:
        return
    name = normalize_name(str(body.get("model") or body.get("name") or ""))
    model = standin.state.registry.get(name.lower()) if name != ":latest" else None
    if name == ":latest":
        return req.send_json({"error": "invalid model name"}, 400)
    lines = _pull_lines(standin, model)
    if body.get("stream", True) is False:
        for _ in lines:  # run the pull, answer only the last status
            pass
        if model is None:
            return req.send_json({"error": "pull model manifest: file does not exist"}, 500)
        return req.send_json({"status": "success"})
    req.start_chunked()
    for line in lines:
        req.write_line(line)
    if model is None:
        req.write_line({"error": "pull model manifest: file does not exist"})
    req.end_chunked()


def _pull_lines(standin: OllamaStandin, model: FakeModel | None) -> Iterator[dict[str, Any]]:
    """The progress objects of `ollama pull` (notes §2.5); installs the model at the end."""
    yield {"status": "pulling manifest"}
    if model is None:
        return
    cfg = standin.state.config
    already = model.full_name.lower() in standin.state.installed
    for digest, total in model.layers():
        status = f"pulling {digest[7:19]}"
        if already:
            yield {"status": status, "digest": digest, "total": total, "completed": total}
            continue
        yield {"status": status, "digest": digest, "total": total}
        for step in range(1, cfg.pull_steps + 1):
            time.sleep(cfg.pull_step_delay)
            yield {"status": status, "digest": digest, "total": total,
                   "completed": total * step // cfg.pull_steps}
    yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    with standin.state.lock:
        standin.state.installed[model.full_name.lower()] = model
    yield {"status": "success"}


def _generation_route(kind: str) -> Handler:
    """`/api/chat` (kind "chat") or `/api/generate` (kind "generate")."""

    def handle(standin: OllamaStandin, req: StandinRequest) -> None:
        arrival = time.perf_counter_ns()
        body = req.json_body()
        if body is None:
            return
        name = str(body.get("model") or "")
        if not name and kind == "chat":
            return req.send_json({"error": "model is required"}, 400)
        model = _model_or_404(standin, req, body)
        if model is None:
            return
        try:
            parse_keep_alive(body.get("keep_alive"), 0)
        except ValueError as error:
            return req.send_json({"error": str(error)}, 400)
        messages = _messages(kind, body)
        unloading = parse_keep_alive(body.get("keep_alive"), 1) == 0
        refusal = None if unloading else standin.state.faults.load_failure(model)
        if refusal is not None:  # the runner cannot start: Ollama answers before streaming
            return req.send_json({"error": refusal[1]}, refusal[0])
        if not any(str(m.get("content") or "") for m in messages):
            return _load_only(standin, req, kind, model, body)
        if standin.state.queue_full():
            return req.send_json({"error": "server busy, please try again.  maximum pending "
                                           "requests exceeded"}, 503)
        run = standin.state.generation(model, messages, body.get("options") or {},
                                       body.get("keep_alive"), body.get("think"), arrival)
        try:
            _respond(req, kind, name, run,
                     body.get("stream", True) is not False)
        finally:
            run.close()

    return handle


def _messages(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if kind == "chat":
        return [dict(m) for m in body.get("messages") or []]
    system = [{"role": "system", "content": body["system"]}] if body.get("system") else []
    return system + [{"role": "user", "content": str(body.get("prompt") or "")}]


def _load_only(standin: OllamaStandin, req: StandinRequest, kind: str, model: FakeModel,
               body: dict[str, Any]) -> None:
    """An empty prompt loads (or with keep_alive 0 unloads) the model."""
    keep_s = parse_keep_alive(body.get("keep_alive"), standin.state.config.keep_alive_s)
    num_ctx = int((body.get("options") or {}).get("num_ctx") or 4096)
    if keep_s != 0:
        standin.state.ensure_loaded(model, num_ctx)
    standin.state.set_expiry(model, keep_s, num_ctx)
    out = {"model": body["model"], "created_at": utc_now(), "done": True,
           "done_reason": "unload" if keep_s == 0 else "load"}
    out.update({"message": {"role": "assistant", "content": ""}} if kind == "chat"
               else {"response": ""})
    req.send_json(out)


def _chunk(kind: str, model: str, text: str, thinking: str, done: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "created_at": utc_now()}
    if kind == "chat":
        message = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        out["message"] = message
    else:
        out["response"] = text
        if thinking:
            out["thinking"] = thinking
    out["done"] = done
    return out


def _respond(req: StandinRequest, kind: str, model: str, run: Iterator[Any],
             stream: bool) -> None:
    content: list[str] = []
    thinking: list[str] = []
    if stream:
        req.start_chunked()
    for item in run:
        if isinstance(item, dict):
            final = _chunk(kind, model, "" if stream else "".join(content),
                           "" if stream else "".join(thinking), True)
            final.update(item)
            if kind == "generate":
                final["context"] = [1, 2, 3]
            if not stream:
                return req.send_json(final)
            req.write_line(final)
            return req.end_chunked()
        (thinking if item[0] == "thinking" else content).append(item[1])
        if stream:
            piece = item[1]
            req.write_line(_chunk(kind, model, piece if item[0] == "content" else "",
                                  piece if item[0] == "thinking" else "", False))


#: path → method → handler. Extend per instance with `OllamaStandin.add_route`, or module-wide
#: with `register_route` (e.g. the OpenAI-compatible `/v1/chat/completions`).
ROUTES: dict[str, dict[str, Handler]] = {
    "/": {"GET": _root},
    "/api/version": {"GET": _version},
    "/api/tags": {"GET": _tags},
    "/api/ps": {"GET": _ps},
    "/api/show": {"POST": _show},
    "/api/delete": {"DELETE": _delete},
    "/api/pull": {"POST": _pull},
    "/api/chat": {"POST": _generation_route("chat")},
    "/api/generate": {"POST": _generation_route("generate")},
    **OPENAI_ROUTES,  # /v1/chat/completions, /v1/models (Ollama's OpenAI-compatible API)
}


def register_route(method: str, path: str, handler: Handler) -> None:
    """Add a route to every stand-in created afterwards."""
    ROUTES.setdefault(path, {})[method.upper()] = handler


def _resolve_models(models: Sequence[FakeModel | str]) -> tuple[FakeModel, ...]:
    return tuple(m if isinstance(m, FakeModel) else LIBRARY[normalize_name(m)] for m in models)


class OllamaStandin:
    """The stand-in server; a context manager that serves on a background thread."""

    def __init__(self, *, config: StandinConfig | None = None,
                 models: Sequence[FakeModel | str] = DEFAULT_INSTALLED,
                 registry: Sequence[FakeModel | str] | None = None,
                 host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        if config is None:
            installed = _resolve_models(models)
            pullable = _resolve_models(registry) if registry is not None else tuple(
                LIBRARY.values())
            config = StandinConfig(models=installed, registry=pullable + installed, **options)
        self.state = StandinState(config)
        self.routes: dict[str, dict[str, Handler]] = {p: dict(m) for p, m in ROUTES.items()}
        self._httpd = _Server((host, port), StandinRequest)
        self._httpd.standin = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:54321`."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    @property
    def stats(self) -> Stats:
        """Counters: requests, by_path, loads, max_in_flight, max_pending, log."""
        return self.state.stats

    @property
    def faults(self) -> Faults:
        """Fault injection (`fail_next`, `drop_next`, `delay_next`, `clear`)."""
        return self.state.faults

    def kill(self) -> None:
        """Die like a killed server: cut every connection, refuse new ones."""
        self._httpd.die()

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Add or replace a route on this instance only."""
        self.routes.setdefault(path, {})[method.upper()] = handler

    def start(self) -> OllamaStandin:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve on the calling thread (script mode)."""
        self._httpd.serve_forever(poll_interval=0.2)

    def __enter__(self) -> OllamaStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_responder(spec: str) -> Callable[..., str]:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def _fixed(text: str) -> Callable[..., str]:
    return lambda model, messages, options: text


def _arm_from_args(server: OllamaStandin, args: argparse.Namespace) -> None:
    """The script's fault flags."""
    for model, message in args.fail_load:
        server.faults.fail_loads(model, message)
    if args.fail_every:
        server.faults.fail_every(args.fail_every)
    if args.drop_every:
        server.faults.drop_every(args.drop_every)
    if args.no_usage:
        from moebench.testing.openai_routes import chat_completions

        server.add_route("POST", "/v1/chat/completions", chat_completions(usage=False))


def main(argv: Sequence[str] | None = None) -> None:
    """Script entry point: serve until killed."""
    parser = argparse.ArgumentParser(description="Ollama stand-in server for tests/benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", action="append", help="installed model (repeatable)")
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--first-token-delay", type=float, default=0.0)
    parser.add_argument("--load-delay", type=float, default=0.0)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--responder", help="module:function returning the answer text")
    parser.add_argument("--answer", help="answer every prompt with this text")
    parser.add_argument("--fail-load", nargs=2, action="append", default=[],
                        metavar=("MODEL", "MESSAGE"), help="every load of MODEL answers 500")
    parser.add_argument("--fail-every", type=int, default=0, metavar="N",
                        help="answer every N-th generation request with 500")
    parser.add_argument("--drop-every", type=int, default=0, metavar="N",
                        help="cut every N-th generation stream after one chunk")
    parser.add_argument("--no-usage", action="store_true",
                        help="/v1/chat/completions streams carry no usage (like llama.cpp)")
    parser.add_argument("--rates", metavar="PP,TG",
                        help="make every model timed: prompt and generation tok/s")
    args = parser.parse_args(argv)
    responder = _load_responder(args.responder) if args.responder else canned_responder
    if args.answer is not None:
        responder = _fixed(args.answer)
    models = _resolve_models(args.model or DEFAULT_INSTALLED)
    if args.rates:
        models = timed(models, args.rates)
    server = OllamaStandin(models=models, host=args.host,
                           port=args.port, token_delay=args.token_delay,
                           first_token_delay=args.first_token_delay,
                           load_delay=args.load_delay, parallel=args.parallel,
                           responder=responder)
    _arm_from_args(server, args)
    print(f"listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
