"""Executing a multi-host run: one worker thread per host, one writer (the driver thread).

Each host runs its models one at a time (warm-up, cases, unload — the runner's own per-model
code), so no host ever holds two models and no load lands in another model's latency; the
hosts work in parallel. The store and the events stay single-threaded: a worker never touches
them itself but hands each call (a scored sample, a model row, a progress event) to the driver
thread, which performs it — still one transaction per sample — and hands the result back.
Ctrl-C, a full disk or an error reaches the driver, which stops handing anything back: every
worker's next call ends it.

A host that stops answering (`Stopped` from the runner) gives up its unfinished models: each
unpinned model that another live host has moves there (the stored assignment is updated, so
`--resume` finds it), the others get error rows for their missing samples and the run ends
`interrupted` once the other hosts are done (`--resume` tries them again).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from moebench.backends import Backend, BackendConfig, create_backend
from moebench.errors import ModelNotFound, RequestFailed
from moebench.hosts import Assignment, host_label
from moebench.run_control import block_signals
from moebench.run_faults import ServerStop, Stopped, check_models
from moebench.types import ModelInfo, Record

#: run_model(plan, backend, store, events, position, model, pool) → the model's info
RunModel = Callable[..., ModelInfo]


class _Cancelled(BaseException):
    """The driver stopped serving: the worker that gets this leaves quietly."""


class Driver:
    """Performs the workers' store and event calls on the thread that runs `serve`."""

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[Future[Any] | None, Any, tuple[Any, ...]]] = queue.Queue()
        self.closed = threading.Event()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """From a worker: run `fn` on the driver thread, return its result (or raise)."""
        if self.closed.is_set():
            raise _Cancelled()
        future: Future[Any] = Future()
        self.calls.put((future, lambda: fn(*args, **kwargs), ()))
        return future.result()

    def fail(self, error: BaseException) -> None:
        """From a worker: end the run with `error` (raised on the driver thread)."""
        self.calls.put((None, error, ()))

    def ended(self) -> None:
        """From a worker that is done: wake the driver now rather than at its next poll."""
        self.calls.put((None, None, ()))

    def serve(self, workers: int) -> None:
        """Perform calls until every worker ended; a failing call ends the run here."""
        try:
            while workers:
                try:
                    future, work, _ = self.calls.get(timeout=0.25)  # wakes for signals
                except queue.Empty:
                    continue
                if future is None:
                    if work is None:  # a worker ended
                        workers -= 1
                        continue
                    raise work
                self._perform(future, work)
        finally:
            self.close()

    def _perform(self, future: Future[Any], work: Callable[[], Any]) -> None:
        try:
            future.set_result(work())
        except BaseException:
            future.set_exception(_Cancelled())
            raise

    def close(self) -> None:
        """Stop serving; queued and later calls end their workers."""
        self.closed.set()
        while True:
            try:
                future, _, _ = self.calls.get_nowait()
            except queue.Empty:
                return
            if future is not None:
                future.set_exception(_Cancelled())


class Forward:
    """`target`'s methods, called through the driver (a store or the run's events)."""

    def __init__(self, driver: Driver, target: Any) -> None:
        self._driver, self._target = driver, target

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        return lambda *args, **kwargs: self._driver.call(method, *args, **kwargs)


@dataclass
class _Board:
    """Which models (by position) each host has still to run, and which hosts went away."""

    assignment: Assignment
    #: the driver's: once set, no host takes another model
    closed: threading.Event = field(default_factory=threading.Event)
    queues: dict[str, deque[int]] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    dead: dict[str, str] = field(default_factory=dict)
    lost: list[int] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.queues = {h: deque() for h in self.assignment.hosts}
        for position, placement in enumerate(self.assignment.placements):
            self.queues[placement.host].append(position)

    def take(self, host: str) -> int | None:
        """The host's next model; None once it has none and no host could still move one."""
        with self.cond:
            while not self.closed.is_set():
                if self.queues[host]:
                    self.busy.add(host)
                    return self.queues[host].popleft()
                if not self.busy:
                    self.cond.notify_all()
                    return None
                self.cond.wait(0.25)
            return None

    def release(self, host: str) -> None:
        """The host finished a model."""
        with self.cond:
            self.busy.discard(host)
            self.cond.notify_all()

    def lose(self, host: str, current: int, reason: str) -> tuple[list[tuple[int, str]],
                                                                   list[int]]:
        """The host went away: ((position, new host) moved, positions lost)."""
        with self.cond:
            self.dead[host] = reason
            pending = [current, *self.queues[host]]
            self.queues[host].clear()
            moved, lost = [], []
            for position in pending:
                target = self._target(position)
                if target is None:
                    lost.append(position)
                    continue
                self.queues[target].append(position)
                self.assignment = self.assignment.moved(position, target)
                moved.append((position, target))
            self.lost += lost
            self.busy.discard(host)
            self.cond.notify_all()
            return moved, lost

    def _target(self, position: int) -> str | None:
        """A live host that has the model (unpinned, single-copy models only)."""
        placement = self.assignment.placements[position]
        if placement.pinned or placement.suffix:
            return None
        from moebench.backends.ollama_api import normalize_name

        names = {placement.model, normalize_name(placement.model)}
        live = [h for h in self.assignment.hosts if h not in self.dead
                and names & (self.assignment.present.get(h) or frozenset())]
        return min(live, key=lambda h: (len(self.queues[h]) + (h in self.busy),
                                        self.assignment.hosts.index(h)), default=None)


@dataclass
class _Run:
    """What every worker of one run shares."""

    plan: Any
    backends: Mapping[str | None, Any]
    driver: Driver
    store: Forward
    events: Forward
    board: _Board
    run_model: RunModel
    make_pool: Callable[[], Any]
    infos: dict[int, ModelInfo] = field(default_factory=dict)


def run_hosts(plan: Any, first: Backend, config: BackendConfig, store: Any, events: Any,
              run_model: RunModel, make_pool: Callable[[], Any],
              infos: list[ModelInfo]) -> None:
    """Run `plan.assignment` on its hosts in parallel; the calling thread writes the store.

    `first` serves `config.host`; the other hosts get their own backend. `infos` gets each
    finished model's info (position order). Raises Stopped when some models could not run
    because their host stopped answering and no other host has them.
    """
    backends = {config.host: first}
    try:
        for host in plan.assignment.hosts:
            if host not in backends:
                backends[host] = create_backend(first.name, replace(config, host=host))
        _run_all(plan, backends, store, events, run_model, make_pool, infos)
    finally:
        for backend in backends.values():
            if backend is not first:
                backend.close()


def _run_all(plan: Any, backends: Mapping[str | None, Any], store: Any, events: Any,
             run_model: RunModel, make_pool: Callable[[], Any],
             infos: list[ModelInfo]) -> None:
    assignment: Assignment = plan.assignment
    for host in assignment.hosts:  # every model exists before the first request
        try:
            check_models(backends[host], [p.model for p in assignment.placements
                                          if p.host == host])
        except ModelNotFound as error:  # name the host: the others may well have it
            raise ModelNotFound(f"{error}" if host in str(error) else
                                f"{error} --host {host}") from None
    on_hosts = getattr(events, "on_hosts", None)
    if on_hosts is not None:
        on_hosts([host_label(h) for h in assignment.hosts])
    driver = Driver()
    run = _Run(plan, backends, driver, Forward(driver, store), Forward(driver, events),
               _Board(assignment, driver.closed), run_model, make_pool)
    threads = [threading.Thread(target=_work, args=(run, host), daemon=True,
                                name=f"moebench-host-{i}")
               for i, host in enumerate(assignment.hosts)]
    try:
        for thread in threads:
            thread.start()
        driver.serve(len(threads))
    finally:
        infos.extend(run.infos[p] for p in sorted(run.infos))
    if run.board.lost:
        raise Stopped(_lost_text(run.board))


def _work(run: _Run, host: str) -> None:
    """One host's worker: its models one after another, until none is left for it."""
    block_signals()
    plan = replace(run.plan, stop=ServerStop())
    pool = run.make_pool()
    try:
        while (position := run.board.take(host)) is not None:
            if not _run_one(run, host, replace(plan, assignment=run.board.assignment),
                            position, pool):
                return
    except _Cancelled:
        return
    except BaseException as error:  # noqa: BLE001 - the driver decides what it means
        run.driver.fail(error)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        run.board.release(host)  # hosts waiting for moved models stop waiting on this one
        run.driver.ended()


def _run_one(run: _Run, host: str, plan: Any, position: int, pool: Any) -> bool:
    """Run one model on `host`; False when the host stopped answering (the worker ends)."""
    placement = plan.assignment.placements[position]
    try:
        run.infos[position] = run.run_model(plan, run.backends[host], run.store, run.events,
                                            position, placement.model, pool)
    except Stopped as stop:
        _host_lost(run, host, position, str(stop))
        return False
    run.board.release(host)
    return True


def _host_lost(run: _Run, host: str, position: int, reason: str) -> None:
    """Move the host's unfinished models, or store their missing samples as errors."""
    reason = reason.removesuffix(" — the server stopped answering")
    moved, lost = run.board.lose(host, position, reason)
    label = host_label(host)
    run.store.update_run(run.plan.run_id, assignment=run.board.assignment.to_json())
    for pos, target in moved:
        run.events.on_note(f"host {label} stopped answering: "
                           f"{run.plan.assignment.placements[pos].model} moves to "
                           f"{host_label(target)}")
    for pos in lost:
        _error_rows(run, host, pos, f"not run: host {label} stopped answering ({reason})")


def _error_rows(run: _Run, host: str, position: int, reason: str) -> None:
    """The model's row (status failed) and an error row per sample not yet stored."""
    plan, placement = run.plan, run.plan.assignment.placements[position]
    stored = run.store.model_info(plan.run_id, position)
    info = stored or plan.assignment.place(position, ModelInfo(
        name=placement.model, backend=str(plan.options.backend)))
    info = replace(info, extra={**info.extra, "status": "failed", "load_error": reason})
    run.store.add_model(plan.run_id, info, position)
    done = run.store.done_keys(plan.run_id, info.name, info.digest)
    failure = str(RequestFailed(reason))
    for seq, request in enumerate(plan.requests):
        if request.key in done:
            continue
        record = Record(plan.run_id, info.name, info.backend, request, None, None,
                        error=failure)
        run.store.add_record(record, seq=seq, cold=False, digest=info.digest)
        run.events.on_sample(record)


def _lost_text(board: _Board) -> str:
    hosts = ", ".join(f"host {host_label(h)} ({why})" for h, why in board.dead.items())
    models = ", ".join(board.assignment.placements[p].model for p in board.lost)
    return f"{hosts} stopped answering; not finished: {models}"
