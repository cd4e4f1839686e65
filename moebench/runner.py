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

Several hosts (`--host` repeated): `moebench.hosts` places the models, `moebench.scheduler`
runs each host's models in a thread of their own while this thread alone writes the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moebench import __version__, liveness
from moebench.backends import Backend, BackendConfig, create_backend
from moebench.hosts import (
    SERVER_BACKENDS, Assignment, plan_hosts, resumed_assignment, unique_hosts,
)
from moebench.errors import (
    AuthError, BackendError, BackendUnavailable, MoebenchError, ModelNotFound, RequestFailed,
    ServerGone,
)
from moebench.machine import machine_info
from moebench.paths import BUNDLED_TASKS, DEMO_MODELS_DIR, normalize_host
from moebench.run_faults import (
    ServerStop, Stopped, check_models, failed_model, prepare_model, unload_quietly,
)
from moebench.run_scoring import held_back, score_deferred, scored
from moebench.scorers import registry, strip_think
from moebench.run_control import (
    block_signals, check_outputs, check_size, completed_interruptibly, interrupt_requested,
    interrupted_by_sigterm, keep_measured, raise_if_interrupted, resume_options, rewrite_hint,
)
from moebench.scorers.judge import DEFERRED
from moebench.run_types import NullEvents, RunEvents, RunOptions, RunResult
from moebench.store import Store
from moebench.store_guard import StoreFull
from moebench.types import ModelInfo, Record, Request

DEMO_SUITE = "demo.yaml"


@dataclass(frozen=True)
class _Plan:
    """A resolved run: concrete backend, models, suites and requests."""

    run_id: str
    options: RunOptions
    requests: tuple[Request, ...]
    stop: ServerStop = field(default_factory=ServerStop, compare=False)
    #: which host runs each model (server backends), see `moebench.hosts`
    assignment: Assignment | None = None


def run(options: RunOptions, events: RunEvents | None = None) -> RunResult:
    """Run (or resume) a benchmark; every sample lands in the store as soon as it is scored."""
    events = events or NullEvents()
    check_outputs(options)  # before anything is created or any model is called
    store = Store(options.out)
    plan: _Plan | None = None
    try:
        try:
            plan = _resume_plan(options, store, events) if options.resume else _new_plan(
                options, store, events)
            backend = create_backend(str(plan.options.backend), _backend_config(plan.options))
        except KeyboardInterrupt as interrupt:  # Ctrl-C during start-up (imports, warm-up)
            return _interrupted_early(store, plan, interrupt)
        except BaseException as error:
            if interrupt_requested():  # e.g. an import cut in half by Ctrl-C failing later
                return _interrupted_early(store, plan, error)
            if plan is not None:
                store.set_status(plan.run_id, "failed")
            raise
        return _execute(plan, backend, store, events)
    finally:
        store.close()


def _interrupted_early(store: Store, plan: _Plan | None,
                       interrupt: BaseException) -> RunResult:
    """Mark the run this process started (if it got that far) interrupted, keep its samples."""
    run_ids = [plan.run_id] if plan else store.runs_of_process(liveness.this_process())
    for run_id in run_ids:
        store.set_status(run_id, "interrupted")
    kept = store.completeness(run_ids[0])[0] if run_ids else 0
    terminated = type(interrupt).__name__ == "Terminated" or interrupted_by_sigterm()
    return RunResult(run_ids[0] if run_ids else "", store.out, store.path, "interrupted", (), 0,
                     0, kept, (), terminated=terminated)


def _execute(plan: _Plan, backend: Backend, store: Store, events: RunEvents) -> RunResult:
    infos, status, stopped, reason = [], "completed", None, None
    terminated = False
    # one worker pool for the whole run: each worker's client (and its keep-alive connection)
    # is set up once and serves every model
    pool = _pool(plan.options.concurrency)
    # Optional event (older RunEvents lack it): the whole run's size, for an overall bar.
    on_run_start = getattr(events, "on_run_start", None)
    if on_run_start is not None:
        on_run_start(len(plan.options.models), len(plan.requests))
    try:
        _run_models(plan, backend, store, events, infos, pool)
    except KeyboardInterrupt as interrupt:
        status, terminated = "interrupted", type(interrupt).__name__ == "Terminated"
    except Stopped as stop:
        status, stopped = "interrupted", str(stop)  # the CLI prints it with the resume hint
    except StoreFull as full:  # stop; every sample stored so far stays, --resume goes on
        status, reason = "interrupted", str(full)
    except BaseException:
        if not interrupt_requested():
            store.set_status(plan.run_id, "failed")
            raise
        status, terminated = "interrupted", interrupted_by_sigterm()
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        backend.close()
    _finish(store, plan.run_id, status)
    written, write_error = _write_outputs(store, plan) if status == "completed" else ((), None)
    # counted from what this process wrote: a model that moved host redid its error rows
    samples, errors, kept = store.invocation_counts(plan.run_id, {r.key for r in plan.requests})
    return RunResult(plan.run_id, store.out, store.path, status, tuple(infos), samples,
                     errors, kept, written, stopped, reason, write_error, terminated)


def _run_models(plan: _Plan, backend: Backend, store: Store, events: RunEvents,
                infos: list[ModelInfo], pool: ThreadPoolExecutor | None) -> None:
    """Every model in turn, or, on several hosts, every host in parallel (`scheduler`)."""
    if plan.assignment is not None and len(plan.assignment.hosts) > 1:
        from moebench.scheduler import run_hosts  # one thread per host, this one writes

        run_hosts(plan, backend, _backend_config(plan.options), store, events, _run_model,
                  lambda: _pool(plan.options.concurrency), infos)
        return
    check_models(backend, plan.options.models)
    for position, model in enumerate(plan.options.models):
        raise_if_interrupted()
        infos.append(_run_model(plan, backend, store, events, position, model, pool))


def _finish(store: Store, run_id: str, status: str) -> None:
    """Record the machine and the final status; on a full disk the status may not fit, and a
    reader then sees a `running` run whose process is gone, shown as interrupted."""
    try:
        if status != "interrupted":  # after the backend imported torch; an interrupted run
            # leaves now (platform.platform() may fork `uname -p`, which can hang beside
            # threads stuck on a dead server); its resume records the machine
            store.update_run(run_id, machine=machine_info())
        store.set_status(run_id, status)
    except StoreFull:
        if status != "interrupted":
            raise


# ---- planning ---------------------------------------------------------------------------


def _new_plan(options: RunOptions, store: Store, events: RunEvents) -> _Plan:
    from moebench.suites.loader import load_suites

    host = normalize_host(options.host)
    backend, models, suites, server_version = _choose(options, host, events)
    hosts = unique_hosts(options.hosts) or [host]
    assignment = plan_hosts(backend, models, hosts, server_version) if (
        backend in SERVER_BACKENDS) else None
    models = [p.model for p in assignment.placements] if assignment else models
    loaded = load_suites(suites)
    resolved = options.model_copy(update={
        "backend": backend, "models": models, "suites": suites, "host": host, "resume": None,
        "hosts": hosts if len(hosts) > 1 else []})
    planned = check_size(loaded, resolved, len(models))
    requests = _requests(loaded, resolved)
    run_id = store.create_run({
        **liveness.this_process(), "planned": planned,
        "suites": [{"name": s.name, "path": str(s.path), "sha256": s.sha256} for s in loaded],
        "models": models, "backend": backend, "host": host,
        "options": resolved.model_dump(mode="json"), "moebench_version": __version__,
        "server_version": server_version,
        "assignment": assignment.to_json() if assignment else None,
    })
    return _Plan(run_id, resolved, requests, assignment=assignment)


def _resume_plan(options: RunOptions, store: Store, events: RunEvents) -> _Plan:
    from moebench.suites.loader import load_suites

    run = store.run(str(options.resume))
    if run["stored_status"] == "running" and liveness.process_alive(
            run.get("pid"), run.get("pid_started"), run.get("host_name")):
        raise MoebenchError(f"run {run['id']} is still running (process {run['pid']}) — wait "
                            "for it to finish or stop it (Ctrl-C) before resuming")
    stored = RunOptions.model_validate(run["options"])
    # What defines the run comes from the store; timeouts, concurrency and outputs may change.
    resolved, changed = resume_options(stored, options)
    check_outputs(resolved)
    loaded = load_suites(resolved.suites)
    before = {s["path"]: s["sha256"] for s in run["suites"]}
    for suite in loaded:
        if before.get(str(suite.path)) not in (None, suite.sha256):
            events.on_note(f"suite {suite.name} ({suite.path}) changed since run {run['id']} "
                           "started; the missing samples use the current file")
    planned = check_size(loaded, resolved, len(resolved.models))
    requests = _requests(loaded, resolved)
    store.update_run(run["id"], status="running", finished_at=None, planned=planned,
                     options=resolved.model_dump(mode="json"), **liveness.this_process())
    events.on_note(f"resuming run {run['id']}" + (" with " + ", ".join(changed)
                                                   if changed else ""))
    return _Plan(run["id"], resolved, requests, assignment=resumed_assignment(run, resolved))


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
                         api_key_env=options.api_key_env, ray=options.ray,
                         compile=options.compile, native=options.native)


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
    models = list(options.models) or _default_models(backend, options.hosts or [host])
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


def _default_models(backend: str, hosts: list[str]) -> list[str]:
    """Every MoE model the hosts have (each once: several hosts share the work)."""
    if backend != "ollama":
        raise MoebenchError(f"no model given for the {backend} backend — pass -m NAME")
    from moebench.backends.ollama_api import list_models

    models = list(dict.fromkeys(m.name for h in hosts for m in list_models(h) if m.experts))
    if not models:
        raise ModelNotFound(f"no MoE model on the Ollama server at {', '.join(hosts)} — pull "
                            "one (e.g. moebench pull granite3-moe:1b) or pass -m NAME")
    return models


# ---- executing --------------------------------------------------------------------------


def _pool(concurrency: int) -> ThreadPoolExecutor | None:
    """The run's request workers; None at concurrency 1 (requests run inline)."""
    if concurrency == 1:  # inline: Ctrl-C lands in the request itself
        return None
    return ThreadPoolExecutor(concurrency, thread_name_prefix="moebench",
                              initializer=block_signals)


def _run_model(plan: _Plan, backend: Backend, store: Store, events: RunEvents,
               position: int, model: str,
               pool: ThreadPoolExecutor | None = None) -> ModelInfo:
    """Prepare `model`, run its missing requests, unload it; returns its final info."""
    stored = store.model_info(plan.run_id, position)
    if stored and {r.key for r in plan.requests} <= store.done_keys(
            plan.run_id, stored.name, stored.digest):  # a finished model is not loaded again
        events.on_note(f"{stored.name}: all {len(plan.requests)} samples already stored")
        return stored
    try:
        info = prepare_model(backend, model, plan.requests, events.on_note)
    except (ServerGone, BackendUnavailable) as error:
        raise Stopped(f"{error} — the server stopped answering") from None
    except (ModelNotFound, AuthError):
        raise
    except BackendError as error:  # the load failed: the model's samples become errors
        return _load_failed(plan, backend, store, events, position, model, stored, error)
    raw, info = info, keep_measured(stored, _placed(plan, position, info))
    store.add_model(plan.run_id, info, position)
    todo = _todo(plan, store, info, events)
    events.on_model_start(info, len(todo))
    deferred: list[tuple[int, Record]] = []
    records = held_back(_generate(plan, backend, model, info, todo, pool), deferred)
    _store_all(plan, store, events, info, todo, records)
    stopped = plan.stop.is_set()  # the server is gone: nothing to unload
    unloaded = None if stopped else unload_quietly(backend, model, events.on_note)
    final = keep_measured(stored, _placed(plan, position, unloaded or raw))
    # judge-style scorers run now: never beside a timed request or in the judged model's memory
    _store_all(plan, store, events, info, todo, score_deferred(deferred))
    if stopped:
        raise Stopped(plan.stop.reason)
    store.add_model(plan.run_id, final, position)
    events.on_model_end(final)
    return final


def _load_failed(plan: _Plan, backend: Backend, store: Store, events: RunEvents, position: int,
                 model: str, stored: ModelInfo | None, error: BackendError) -> ModelInfo:
    """Store the model as `failed` with the server's reason; its missing samples as errors."""
    info, reason, note = failed_model(error, model, backend.name, stored, plan.run_id)
    info = _placed(plan, position, info)
    events.on_note(note)
    done = store.done_keys(plan.run_id, info.name, info.digest)
    todo = [(seq, r) for seq, r in enumerate(plan.requests) if r.key not in done]
    store.add_model(plan.run_id, info, position)
    failure = RequestFailed(f"load failed: {reason}")
    errors = ((i, _error(plan, backend, info, r, failure)) for i, (_, r) in enumerate(todo))
    _store_all(plan, store, events, info, todo, errors)
    return info


def _placed(plan: _Plan, position: int, info: ModelInfo) -> ModelInfo:
    """`info` with its host (and, on several hosts, its stored name `model@host`)."""
    return plan.assignment.place(position, info) if plan.assignment else info


def _todo(plan: _Plan, store: Store, info: ModelInfo,
          events: RunEvents) -> list[tuple[int, Request]]:
    """(seq, request) pairs still to run for this model: missing, errored, or older digest."""
    digests = store.stored_digests(plan.run_id, info.name)
    if digests and digests != {info.digest}:
        dropped = store.forget_model(plan.run_id, info.name)
        events.on_note(f"{info.name} changed since this run started (new digest): redoing its "
                       f"{dropped} stored samples")
    done = store.done_keys(plan.run_id, info.name, info.digest)
    todo = [(seq, r) for seq, r in enumerate(plan.requests) if r.key not in done]
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
        for future in completed_interruptibly(futures):
            yield futures[future], future.result()
    finally:
        for future in futures:  # an early exit drops this model's queued requests
            future.cancel()


def _store_all(plan: _Plan, store: Store, events: RunEvents, info: ModelInfo,
               todo: list[tuple[int, Request]],
               records: Iterable[tuple[int, Record]]) -> None:
    """Write each record as it arrives; the first request of the model is marked cold."""
    counted = False
    for index, record in records:
        store.add_record(record, seq=todo[index][0], cold=index == 0, digest=info.digest)
        source = record.completion.timing_source if record.completion else None
        if source == "client-chunks" and not counted:
            counted = True
            events.on_note(f"{info.name}: the server sends no token usage; output tokens are "
                           "counted from streamed chunks (one token each on llama.cpp-family "
                           "servers), timing source client-chunks")
        events.on_sample(record)
        raise_if_interrupted()  # an interrupt a library swallowed still stops the run


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
    return record if request.scorer.name in DEFERRED else scored(record)


def _error(plan: _Plan, backend: Backend, info: ModelInfo, request: Request,
           error: Exception) -> Record:
    return Record(plan.run_id, info.name, backend.name, request, None, None,
                  error=str(error) or type(error).__name__)


def _write_outputs(store: Store, plan: _Plan) -> tuple[tuple[Path, ...], str | None]:
    """Write the files asked for; a failure is reported (the samples are all stored)."""
    from moebench.report.summary import write_reports

    options = plan.options
    try:
        return tuple(write_reports(store, [plan.run_id], csv=options.csv,
                                   samples_csv=options.samples_csv, html=options.html)), None
    except (OSError, MoebenchError) as error:
        return (), (f"could not write the run's files ({error}) — every sample is in the "
                    f"store; write them again with: {rewrite_hint(plan.run_id, options)}")


__all__ = ["NullEvents", "RunEvents", "RunOptions", "RunResult", "run"]
