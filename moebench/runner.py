"""The run loop: options → plan (backend, models, suites) → each model in turn → the store.

Models run one after another: `prepare` (warm-up, load time recorded apart), its requests
(`concurrency` in flight), `unload`. Every sample is scored and written to the store the
moment it completes (one transaction each), so Ctrl-C or a killed process loses only what
was in flight and `--resume` redoes exactly the missing or errored samples of the same model
digest. A failed request is a row with `error`, never a crash.

A model that cannot load (after the backend's retries) is stored with status `failed` and the
server's reason, its samples as error rows, and the run goes on; `--resume` tries it again. A
scorer that raises keeps the output in a row whose error is `scorer NAME: message`. When the
server stops accepting connections (`ServerGone`), the model's remaining samples become error
rows at once and the run stops as `interrupted` (RunResult.stopped says why). Every model is
checked to exist before the first request, so a misspelt name fails the run before any work.

Repeats are independent generations: nothing is cached between them. When a request carries
no `seed` (the suite left it unset), repeat r is sent with seed r, so repeats differ from one
another yet a rerun is reproducible; a seed the suite sets is kept for every repeat.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import platform
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from moebench import __version__
from moebench.backends import Backend, BackendConfig, create_backend
from moebench.errors import (
    AuthError, BackendError, BackendUnavailable, MoebenchError, ModelNotFound, RequestFailed,
    ServerGone,
)
from moebench.paths import BUNDLED_TASKS, DEFAULT_OUT, DEMO_MODELS_DIR, normalize_host
from moebench.run_faults import ServerStop, Stopped, check_models, failed_model, unload_quietly
from moebench.scorers import registry, score_stripped, strip_think
from moebench.scorers.judge import DEFERRED
from moebench.store import Store
from moebench.types import ModelInfo, Record, Request

DEMO_SUITE = "demo.yaml"


class RunOptions(BaseModel):
    """What the user asked `moebench run` for (validated); stored with the run for --resume."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: list[str] = Field(default_factory=list, description="model names or paths")
    suites: list[Path] = Field(default_factory=list, description="suite files or folders")
    backend: str | None = Field(None, description="ollama | torch | langchain | openai")
    host: str | None = Field(None, description="server base URL")
    out: Path = Field(DEFAULT_OUT, description="results folder holding the store")
    csv: Path | None = None
    samples_csv: Path | None = None
    html: Path | None = None
    repeats: int = Field(1, ge=1)
    limit: int | None = Field(None, ge=1)
    concurrency: int = Field(1, ge=1)
    timeout: float = Field(300.0, gt=0)
    retries: int = Field(3, ge=0, description="extra tries for a failed request")
    resume: str | None = None
    pull: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    #: the NAME of the variable holding the API key (openai backend); the key is never stored
    api_key_env: str = Field("OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class RunEvents(Protocol):
    """What the runner reports while it works (render.py draws it; tests record it)."""

    def on_model_start(self, info: ModelInfo, total: int) -> None: ...
    def on_sample(self, record: Record) -> None: ...
    def on_model_end(self, info: ModelInfo) -> None: ...
    def on_note(self, message: str) -> None: ...


class NullEvents:
    """Events that do nothing (library use without a display)."""

    def on_model_start(self, info: ModelInfo, total: int) -> None:
        """Ignore."""

    def on_sample(self, record: Record) -> None:
        """Ignore."""

    def on_model_end(self, info: ModelInfo) -> None:
        """Ignore."""

    def on_note(self, message: str) -> None:
        """Ignore."""


@dataclass(frozen=True)
class RunResult:
    """How a run ended and where its results are."""

    run_id: str
    out: Path
    db_path: Path
    #: completed | interrupted
    status: str
    models: tuple[ModelInfo, ...]
    #: samples produced by this invocation (a resume counts only what it redid)
    samples: int
    errors: int
    #: samples a resume found already done and kept
    kept: int
    written: tuple[Path, ...]
    #: why the run stopped early (the server stopped answering), else None
    stopped: str | None = None


@dataclass(frozen=True)
class _Plan:
    """A resolved run: concrete backend, models, suites and requests."""

    run_id: str
    options: RunOptions
    requests: tuple[Request, ...]
    stop: ServerStop = field(default_factory=ServerStop, compare=False)


@dataclass
class _Tally:
    samples: int = 0
    errors: int = 0
    kept: int = 0


def run(options: RunOptions, events: RunEvents | None = None) -> RunResult:
    """Run (or resume) a benchmark; every sample lands in the store as soon as it is scored."""
    events = events or NullEvents()
    store = Store(options.out)
    try:
        plan = _resume_plan(options, store, events) if options.resume else _new_plan(
            options, store, events)
        try:
            backend = create_backend(str(plan.options.backend), _backend_config(plan.options))
        except BaseException:
            store.set_status(plan.run_id, "failed")
            raise
        return _execute(plan, backend, store, events)
    finally:
        store.close()


def _execute(plan: _Plan, backend: Backend, store: Store, events: RunEvents) -> RunResult:
    tally, infos, status, stopped = _Tally(), [], "completed", None
    # one worker pool for the whole run: each worker's client (and its keep-alive connection)
    # is set up once and serves every model
    pool = _pool(plan.options.concurrency)
    # Optional event (older RunEvents lack it): the whole run's size, for an overall bar.
    on_run_start = getattr(events, "on_run_start", None)
    if on_run_start is not None:
        on_run_start(len(plan.options.models), len(plan.requests))
    try:
        check_models(backend, plan.options.models)
        for position, model in enumerate(plan.options.models):
            infos.append(_run_model(plan, backend, store, events, position, model, tally, pool))
    except KeyboardInterrupt:
        status = "interrupted"
    except Stopped as stop:
        status, stopped = "interrupted", str(stop)  # the CLI prints it with the resume hint
    except BaseException:
        store.set_status(plan.run_id, "failed")
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        backend.close()
    store.update_run(plan.run_id, machine=machine_info())  # after the backend imported torch
    store.set_status(plan.run_id, status)
    written = _write_outputs(store, plan) if status == "completed" else ()
    return RunResult(plan.run_id, store.out, store.path, status, tuple(infos), tally.samples,
                     tally.errors, tally.kept, written, stopped)


# ---- planning ---------------------------------------------------------------------------


def _new_plan(options: RunOptions, store: Store, events: RunEvents) -> _Plan:
    from moebench.suites.loader import load_suites

    host = normalize_host(options.host)
    backend, models, suites, server_version = _choose(options, host, events)
    loaded = load_suites(suites)
    resolved = options.model_copy(update={"backend": backend, "models": models,
                                          "suites": suites, "host": host, "resume": None})
    run_id = store.create_run({
        "suites": [{"name": s.name, "path": str(s.path), "sha256": s.sha256} for s in loaded],
        "models": models, "backend": backend, "host": host,
        "options": resolved.model_dump(mode="json"), "moebench_version": __version__,
        "server_version": server_version,
    })
    return _Plan(run_id, resolved, _requests(loaded, resolved))


def _resume_plan(options: RunOptions, store: Store, events: RunEvents) -> _Plan:
    from moebench.suites.loader import load_suites

    run = store.run(str(options.resume))
    stored = RunOptions.model_validate(run["options"])
    # What defines the run comes from the store; where to write files may be given anew.
    resolved = stored.model_copy(update={
        "out": options.out, "resume": None, "csv": options.csv or stored.csv,
        "samples_csv": options.samples_csv or stored.samples_csv,
        "html": options.html or stored.html})
    loaded = load_suites(resolved.suites)
    before = {s["path"]: s["sha256"] for s in run["suites"]}
    for suite in loaded:
        if before.get(str(suite.path)) not in (None, suite.sha256):
            events.on_note(f"suite {suite.name} ({suite.path}) changed since run {run['id']} "
                           "started; the missing samples use the current file")
    store.update_run(run["id"], status="running", finished_at=None)
    ignored = options.models or options.suites or options.backend
    events.on_note(f"resuming run {run['id']}" + (" with its stored models, suites and options"
                                                   if ignored else ""))
    return _Plan(run["id"], resolved, _requests(loaded, resolved))


def _requests(suites: Sequence[Any], options: RunOptions) -> tuple[Request, ...]:
    registry()  # import every scorer now, not inside the first sample
    requests = [r for s in suites for r in s.requests(options.limit, options.repeats)]
    return tuple(_seeded(r) for r in requests)


def _seeded(request: Request) -> Request:
    """Repeat r gets seed r when the suite set none (see the module docstring)."""
    if request.options.get("seed") is not None:
        return request
    return dataclasses.replace(request, options={**request.options, "seed": request.repeat})


def _backend_config(options: RunOptions) -> BackendConfig:
    return BackendConfig(host=options.host, timeout=options.timeout,
                         load_timeout=max(900.0, options.timeout), retries=options.retries,
                         concurrency=options.concurrency, pull=options.pull,
                         dtype=options.dtype, device=options.device,
                         api_key_env=options.api_key_env)


def _choose(options: RunOptions, host: str,
            events: RunEvents) -> tuple[str, list[str], list[Path], str | None]:
    """Backend, models, suite paths and server version for a new run (the defaults live here)."""
    backend, version = options.backend, None
    if backend in (None, "ollama"):
        from moebench.backends.ollama import ping

        version = ping(host)
    if backend is None and version is None:
        if not options.models and options.host is None:
            return _demo(options, host, events)
        if not options.models:  # an explicit --host must answer: no silent demo run
            raise _unreachable(host)
        if not all(Path(m).is_dir() for m in options.models):
            raise _unreachable(host)
        backend = "torch"
    backend = backend or "ollama"
    if backend == "ollama" and version is None:
        raise _unreachable(host)
    models = list(options.models) or _default_models(backend, host)
    return backend, models, list(options.suites) or default_suites(), version


def _unreachable(host: str) -> BackendUnavailable:
    from moebench.backends.ollama_api import unreachable

    return unreachable(host, " (or pass --host URL, or run a checkpoint folder: "
                             "--backend torch -m PATH)")


def _demo(options: RunOptions, host: str,
          events: RunEvents) -> tuple[str, list[str], list[Path], None]:
    models = demo_models()
    if not models:
        raise BackendUnavailable(
            f"Ollama is not reachable at {host} and the bundled demo models are missing — "
            "start Ollama (`ollama serve`) or pass --host URL, or reinstall moebench "
            "(pip install -e .)")
    suites = list(options.suites) or [BUNDLED_TASKS / DEMO_SUITE]
    on = "the given suites" if options.suites else "the demo suite"
    events.on_note(f"no Ollama at {host}: using the built-in demo models on {on} "
                   "(point moebench at Ollama with --host URL, or start it with `ollama serve`)")
    return "torch", models, suites, None


def demo_models() -> list[str]:
    """The bundled demo checkpoints by name (`demo-mixtral`, ...; the torch backend finds them)."""
    if not DEMO_MODELS_DIR.is_dir():
        return []
    return [p.name for p in sorted(DEMO_MODELS_DIR.glob("demo-*")) if p.is_dir()]


def default_suites() -> list[Path]:
    """Every bundled `tasks/*.yaml` except the demo suite."""
    suites = [p for p in sorted(BUNDLED_TASKS.glob("*.yaml")) if p.name != DEMO_SUITE]
    if not suites:
        raise MoebenchError(f"no suites found in {BUNDLED_TASKS} — pass --suite PATH")
    return suites


def _default_models(backend: str, host: str) -> list[str]:
    if backend != "ollama":
        raise MoebenchError(f"no model given for the {backend} backend — pass -m NAME")
    from moebench.backends.ollama_api import list_models

    models = [m.name for m in list_models(host) if m.experts]
    if not models:
        raise ModelNotFound(f"no MoE model on the Ollama server at {host} — pull one "
                            "(e.g. moebench pull granite3-moe:1b) or pass -m NAME")
    return models


# ---- executing --------------------------------------------------------------------------


def _pool(concurrency: int) -> ThreadPoolExecutor | None:
    """The run's request workers; None at concurrency 1 (requests run inline)."""
    if concurrency == 1:  # inline: Ctrl-C lands in the request itself
        return None
    return ThreadPoolExecutor(concurrency, thread_name_prefix="moebench")


def _run_model(plan: _Plan, backend: Backend, store: Store, events: RunEvents,
               position: int, model: str, tally: _Tally,
               pool: ThreadPoolExecutor | None = None) -> ModelInfo:
    """Prepare `model`, run its missing requests, unload it; returns its final info."""
    stored = store.model_info(plan.run_id, position)
    if stored and len(store.done_keys(plan.run_id, stored.name, stored.digest)) == len(
            plan.requests):  # a resumed run's finished model is not even loaded again
        tally.kept += len(plan.requests)
        events.on_note(f"{stored.name}: all {len(plan.requests)} samples already stored")
        return stored
    try:
        info = _prepare(backend, model, plan.requests)
    except (ServerGone, BackendUnavailable) as error:
        raise Stopped(f"{error} — the server stopped answering") from None
    except (ModelNotFound, AuthError):
        raise
    except BackendError as error:  # the load failed: the model's samples become errors
        return _load_failed(plan, backend, store, events, position, model, stored, error, tally)
    store.add_model(plan.run_id, info, position)
    todo = _todo(plan, store, info, events, tally)
    events.on_model_start(info, len(todo))
    deferred: list[tuple[int, Record]] = []
    records = _held_back(_generate(plan, backend, model, info, todo, pool), deferred)
    _store_all(plan, store, events, info, todo, records, tally)
    stopped = plan.stop.is_set()  # the server is gone: nothing to unload
    final = info if stopped else unload_quietly(backend, model, events.on_note) or info
    # judge-style scorers run now: never beside a timed request or in the judged model's memory
    _store_all(plan, store, events, info, todo, _score_deferred(deferred), tally)
    if stopped:
        raise Stopped(plan.stop.reason)
    store.add_model(plan.run_id, final, position)
    events.on_model_end(final)
    return final


def _load_failed(plan: _Plan, backend: Backend, store: Store, events: RunEvents, position: int,
                 model: str, stored: ModelInfo | None, error: BackendError,
                 tally: _Tally) -> ModelInfo:
    """Store the model as `failed` with the server's reason; its missing samples as errors."""
    info, reason, note = failed_model(error, model, backend.name, stored, plan.run_id)
    events.on_note(note)
    done = store.done_keys(plan.run_id, info.name, info.digest)
    todo = [(seq, r) for seq, r in enumerate(plan.requests) if r.key not in done]
    store.add_model(plan.run_id, info, position)
    failure = RequestFailed(f"load failed: {reason}")
    errors = ((i, _error(plan, backend, info, r, failure)) for i, (_, r) in enumerate(todo))
    _store_all(plan, store, events, info, todo, errors, tally)
    return info


def _prepare(backend: Backend, model: str, requests: Sequence[Request]) -> ModelInfo:
    """Warm up with the run's generation options when the backend can use them (Ollama pins
    runner options such as num_ctx at warm-up, so the first request does not reload)."""
    if requests and "options" in inspect.signature(backend.prepare).parameters:
        return backend.prepare(model, options=requests[0].options)  # type: ignore[call-arg]
    return backend.prepare(model)


def _todo(plan: _Plan, store: Store, info: ModelInfo, events: RunEvents,
          tally: _Tally) -> list[tuple[int, Request]]:
    """(seq, request) pairs still to run for this model: missing, errored, or older digest."""
    digests = store.stored_digests(plan.run_id, info.name)
    if digests and digests != {info.digest}:
        dropped = store.forget_model(plan.run_id, info.name)
        events.on_note(f"{info.name} changed since this run started (new digest): redoing its "
                       f"{dropped} stored samples")
    done = store.done_keys(plan.run_id, info.name, info.digest)
    todo = [(seq, r) for seq, r in enumerate(plan.requests) if r.key not in done]
    tally.kept += len(plan.requests) - len(todo)
    return todo


def _generate(plan: _Plan, backend: Backend, model: str, info: ModelInfo,
              todo: list[tuple[int, Request]],
              pool: ThreadPoolExecutor | None) -> Iterator[tuple[int, Record]]:
    """Yield (index in todo, Record) in completion order; `concurrency` in flight at most."""
    if pool is None:
        for index, (_, request) in enumerate(todo):
            yield index, _sample(plan, backend, model, info, request)
        return
    futures: dict[Future[Record], int] = {}
    try:
        for i, (_, r) in enumerate(todo):
            futures[pool.submit(_sample, plan, backend, model, info, r)] = i
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        for future in futures:  # an early exit drops this model's queued requests
            future.cancel()


def _store_all(plan: _Plan, store: Store, events: RunEvents, info: ModelInfo,
               todo: list[tuple[int, Request]], records: Iterable[tuple[int, Record]],
               tally: _Tally) -> None:
    """Write each record as it arrives; the first request of the model is marked cold."""
    counted = False
    for index, record in records:
        store.add_record(record, seq=todo[index][0], cold=index == 0, digest=info.digest)
        tally.samples += 1
        tally.errors += record.error is not None
        source = record.completion.timing_source if record.completion else None
        if source == "client-chunks" and not counted:
            counted = True
            events.on_note(f"{info.name}: the server sends no token usage; output tokens are "
                           "counted from streamed chunks (one token each on llama.cpp-family "
                           "servers), timing source client-chunks")
        events.on_sample(record)


def _sample(plan: _Plan, backend: Backend, model: str, info: ModelInfo,
            request: Request) -> Record:
    """Generate and score one request; a RequestFailed becomes an error record, and so does a
    scorer that raises (its output kept); once the server is gone nothing is sent.

    A `DEFERRED` scorer (judge) is left unscored here: `_score_deferred` grades it later.
    """
    if plan.stop.is_set():
        return _error(plan, backend, info, request,
                      RequestFailed(f"not run: {plan.stop.reason}"))
    try:
        completion = backend.generate(model, request)
    except ServerGone as error:
        plan.stop.set(f"{error} — the server stopped answering")
        return _error(plan, backend, info, request, error)
    except RequestFailed as error:
        return _error(plan, backend, info, request, error)
    record = Record(plan.run_id, info.name, backend.name, request, completion, None,
                    stripped=strip_think(completion.text))
    return record if request.scorer.name in DEFERRED else _scored(record)


def _scored(record: Record) -> Record:
    """`record` with its score; a scorer that cannot decide (ScorerFailed) or raises makes it
    an error row with the output kept."""
    try:
        score = score_stripped(record.request.scorer, record.stripped or "", record.request.case)
    except Exception as error:  # noqa: BLE001 - any scorer bug must not lose the output
        message = " ".join(str(error).split())[:500] or type(error).__name__
        return replace(record, error=f"scorer {record.request.scorer.name}: {message}")
    return replace(record, score=score)


def _held_back(records: Iterable[tuple[int, Record]],
               deferred: list[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
    """Pass records through, keeping back the ones a deferred scorer has still to grade."""
    for index, record in records:
        if record.score is None and record.error is None:
            deferred.append((index, record))
        else:
            yield index, record


def _score_deferred(deferred: list[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
    for index, record in deferred:
        yield index, _scored(record)


def _error(plan: _Plan, backend: Backend, info: ModelInfo, request: Request,
           error: Exception) -> Record:
    return Record(plan.run_id, info.name, backend.name, request, None, None,
                  error=str(error) or type(error).__name__)


def _write_outputs(store: Store, plan: _Plan) -> tuple[Path, ...]:
    from moebench.report.summary import write_reports

    options = plan.options
    return tuple(write_reports(store, [plan.run_id], csv=options.csv,
                               samples_csv=options.samples_csv, html=options.html))


def machine_info() -> dict[str, Any]:
    """OS, CPU, cores, RAM, Python, and torch/GPU when torch is already in use."""
    import psutil

    info: dict[str, Any] = {
        "os": platform.platform(), "cpu": _cpu_name(), "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_bytes": psutil.virtual_memory().total, "python": platform.python_version(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:  # only report torch when a backend actually imported it
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


__all__ = ["NullEvents", "RunEvents", "RunOptions", "RunResult", "run"]
