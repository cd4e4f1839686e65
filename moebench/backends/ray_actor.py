"""The torch backend on a Ray cluster (`moebench run --backend torch --ray auto|ADDRESS|local`).

`RayTorchBackend` is the backend protocol the runner already drives (`check`, `prepare`,
`generate`, `unload`, `close`), forwarding each call to a Ray actor that holds a plain
`TorchBackend` (the same config: dtype, device, `--compile`): one actor per model, created at `prepare` (`num_gpus=1` when the cluster has
GPUs, else one CPU) and killed at `unload`, so the GPU is free for the next model. The
driver keeps the store and the scoring; what comes back is the same `ModelInfo` (plus the
worker node's facts in `extra["ray"]`) and `Completion` (engine timings, router counts) a
local torch run produces, so a Ray run and a local run of the same greedy suite store the
same outputs.

Checkpoints are read on the worker node: a path that is not there is a `ModelNotFound`
naming the node and the fix, found by a short check task before the first request and again
inside the actor. moebench must be installed on every node. Errors cross the process line as
values, not pickled exceptions (`ModelLoadFailed` carries fields a plain unpickle loses).
Ray is imported only here, and this module only when `--ray` is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from moebench.backends import BackendConfig
from moebench.backends._compile import budget_requests
from moebench.errors import (
    MissingDependencyError,
    ModelLoadFailed,
    ModelNotFound,
    MoebenchError,
    RequestFailed,
)
from moebench.types import Completion, ModelInfo, Request

#: `--ray local`: start a Ray instance on this machine (`ray.init()` without an address)
LOCAL = "local"
_FIX = ("put the checkpoint at the same path on every Ray worker node (or on a shared "
        "filesystem), or pass a path that exists there")

Outcome = tuple[str, Any]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--ray needs Ray — install it with: pip install "
                                     "'moebench[ray]'") from None
    return ray


def connect(address: str) -> bool:
    """Join the cluster at `address` (`auto`, `ray://host:10001`, `local`); returns whether
    this call started Ray (then `close` shuts it down). An initialised Ray is reused."""
    ray = _ray()
    if ray.is_initialized():
        return False
    try:
        ray.init(address=None if address == LOCAL else address, log_to_driver=False,
                 include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        text = " ".join(str(error).split())[:300]
        raise MoebenchError(f"cannot reach a Ray cluster at {address} ({text}) — start one "
                            "(`ray start --head`), pass --ray ADDRESS, or --ray local") from None
    return True


def _outcome(call: Callable[[], Any]) -> Outcome:
    """Run `call` in the worker; errors become values the driver turns back into errors."""
    try:
        return "ok", call()
    except ModelLoadFailed as error:
        return "load_failed", (error.model, error.reason, error.hint, error.info)
    except MoebenchError as error:
        return "error", (type(error), str(error))


def _unwrap(outcome: Outcome) -> Any:
    kind, value = outcome
    if kind == "load_failed":
        raise ModelLoadFailed(*value)
    if kind == "error":
        cls, message = value
        raise cls(message)
    return value


def check_paths(models: Sequence[str]) -> Outcome:
    """On a worker node: ModelNotFound naming the node for the first model not found there."""
    return _outcome(lambda: [_resolve_here(model) for model in models])


def _resolve_here(model: str) -> None:
    import socket

    from moebench.backends.torch import resolve_source

    try:
        resolve_source(model)
    except ModelNotFound as error:
        raise ModelNotFound(f"{error} — on Ray node {socket.gethostname()}: {_FIX}") from None


class TorchWorker:
    """The actor: a `TorchBackend` in a Ray worker process (torch is imported there only)."""

    def __init__(self, config: BackendConfig) -> None:
        import ray

        from moebench.backends.torch import TorchBackend

        self.gpus = [str(g) for g in ray.get_gpu_ids()]
        device = "cuda" if self.gpus and config.device == "cpu" else config.device
        self.backend = TorchBackend(dataclasses.replace(config, ray=None, device=device))

    def prepare(self, model: str, options: Mapping[str, Any] | None,
                requests: Sequence[Request] | None = None) -> Outcome:
        def load() -> ModelInfo:
            _resolve_here(model)
            return self._with_node(self.backend.prepare(model, options, requests))
        return _outcome(load)

    def generate(self, model: str, request: Request) -> Outcome:
        return _outcome(lambda: self.backend.generate(model, request))

    def unload(self, model: str) -> Outcome:
        return _outcome(lambda: self._with_node(self.backend.unload(model)))

    def _with_node(self, info: ModelInfo | None) -> ModelInfo | None:
        """The info with the worker's node facts: where the model ran, on what hardware."""
        if info is None:
            return None
        import socket

        import ray

        from moebench.machine import machine_info

        node = {"node": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
                "gpus": self.gpus, "machine": machine_info()}
        return dataclasses.replace(info, extra={**info.extra, "ray": node})


class RayTorchBackend:
    """The backend protocol over one Ray actor per model (see the module docstring)."""

    name = "torch"

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self._started = connect(str(config.ray))
        ray = _ray()
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        self._resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
        self._actors: dict[str, Any] = {}
        self._checked: set[str] = set()

    def check(self, model: str) -> None:
        """The checkpoint exists on a worker node (ModelNotFound naming the node otherwise)."""
        if model in self._checked:
            return
        ray = _ray()
        task = ray.remote(num_cpus=0)(check_paths)
        _unwrap(ray.get(task.remote([model])))
        self._checked.add(model)

    def prepare(self, model: str, options: Mapping[str, Any] | None = None,
                requests: Sequence[Request] | None = None) -> ModelInfo:
        """Start the model's actor and load the model there (load time measured there); with
        `--compile` the actor compiles for `requests` (each distinct prompt sent once)."""
        if model not in self._actors:
            ray = _ray()
            actor = ray.remote(**self._resources)(TorchWorker)
            self._actors[model] = actor.remote(self.config)
        budget = budget_requests(requests or ()) if self.config.compile else None
        info = self._call(model, "prepare", model, dict(options or {}), budget, load=True)
        assert isinstance(info, ModelInfo)
        return info

    def generate(self, model: str, request: Request) -> Completion:
        """One request in the model's actor; RequestFailed when it fails or the actor died."""
        completion = self._call(model, "generate", model, request)
        assert isinstance(completion, Completion)
        return completion

    def unload(self, model: str) -> ModelInfo | None:
        """Unload in the actor, then end the actor (its memory and GPU go back to Ray)."""
        if model not in self._actors:
            return None
        try:
            info = self._call(model, "unload", model)
        finally:
            _ray().kill(self._actors.pop(model))
        return info if isinstance(info, ModelInfo) else None

    def close(self) -> None:
        """End every actor; shut Ray down when this backend started it."""
        ray = _ray()
        for model in list(self._actors):
            ray.kill(self._actors.pop(model))
        if self._started:
            ray.shutdown()

    def _call(self, model: str, method: str, *args: Any, load: bool = False) -> Any:
        ray = _ray()
        actor = self._actors.get(model)
        if actor is None:
            raise RequestFailed(f"{model} is not loaded on the Ray cluster")
        try:
            return _unwrap(ray.get(getattr(actor, method).remote(*args)))
        except ray.exceptions.RayError as error:  # the actor died (OOM, node lost) or Ray failed
            text = " ".join(str(error).split())[:300]
            if load:
                raise ModelLoadFailed(model, f"the Ray actor failed: {text}",
                                      "check the Ray worker's log (ray logs)") from None
            raise RequestFailed(f"{model}: the Ray actor failed ({text})") from None


def create(config: BackendConfig) -> RayTorchBackend:
    """Factory `create_backend` uses for `torch` when `BackendConfig.ray` is set."""
    return RayTorchBackend(config)
