"""Backend protocol and registry: the one place backends are registered.

A backend turns a `Request` into a `Completion` for a named model. The runner drives it as:
`prepare(model)` (existence check, warm-up with the load time measured apart, memory and MoE
facts) → `generate(model, request)` for every case (possibly from several threads) →
`unload(model)` → `close()`. Failed requests raise `RequestFailed` after the backend's own
retries; the runner stores them as rows with `error`. Backends with heavy dependencies
import them inside their factory so `moebench --help` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from moebench.errors import MoebenchError
from moebench.types import Completion, ModelInfo, Request

@dataclass(frozen=True)
class BackendConfig:
    """Options shared by every backend (each uses the ones that apply to it)."""

    host: str | None = None
    timeout: float = 300.0
    #: allowance for the first request / model load (cold loads of big models take minutes)
    load_timeout: float = 900.0
    retries: int = 3
    backoff_s: float = 0.5
    concurrency: int = 1
    pull: bool = False
    api_key_env: str = "OPENAI_API_KEY"
    dtype: str = "float32"
    device: str = "cpu"
    #: the torch backend on a Ray cluster: `auto`, an address, or `local` (None: in-process)
    ray: str | None = None
    #: torch backend: decode with a `torch.compile`d step (`Engine.compile_decode`), compiled
    #: once per model after its load and timed apart (ModelInfo.extra["compile_s"])
    compile: bool = False
    #: the compiled step's static cache length when no requests reach `prepare` (`moebench
    #: speed`: its longest cell); None: the model's context capped at 1024
    compile_length: int | None = None
    #: torch backend: decode with the C step (`Engine.native_decode`, `--native`) where it
    #: covers the model (ModelInfo.extra["native_s"]), else as configured without it
    native: bool = False


class Backend(Protocol):
    """What the runner needs from a backend."""

    name: str

    def prepare(self, model: str) -> ModelInfo:
        """Check the model exists, warm it up (load time apart), read memory and MoE facts."""
        ...

    def generate(self, model: str, request: Request) -> Completion:
        """Run one request; raise RequestFailed after the last retry."""
        ...

    def unload(self, model: str) -> ModelInfo | None:
        """Free the model; may return updated info (e.g. the number of loads observed)."""
        ...

    def close(self) -> None:
        """Release connections / memory."""
        ...


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend: how to build it and what it measures (for `moebench backends`)."""

    name: str
    module: str
    factory: str
    description: str
    measures: tuple[str, ...]


#: name → where its factory lives; importing happens only when the backend is used.
_BACKENDS: dict[str, BackendEntry] = {
    "ollama": BackendEntry(
        "ollama", "moebench.backends.ollama", "create", "Ollama's native API (official client)",
        ("ttft", "server timings", "load time", "memory", "moe facts"),
    ),
    "torch": BackendEntry(
        "torch", "moebench.backends.torch", "create", "built-in PyTorch MoE engine (HF folders)",
        ("ttft", "engine timings", "load time", "memory", "moe facts", "router load"),
    ),
    "langchain": BackendEntry(
        "langchain", "moebench.backends.langchain", "create",
        "LangChain ChatPromptTemplate | ChatOllama chain against Ollama",
        ("ttft", "server timings", "load time", "memory", "moe facts"),
    ),
    "openai": BackendEntry(
        "openai", "moebench.backends.openai", "create",
        "OpenAI-compatible /v1/chat/completions (official openai client)",
        ("ttft", "client timings", "client load time"),
    ),
}


def register_backend(entry: BackendEntry) -> None:
    """Add or replace a backend entry (used by moebench's own modules and by plugins)."""
    _BACKENDS[entry.name] = entry


def backends() -> dict[str, BackendEntry]:
    """All registered backends by name."""
    return dict(_BACKENDS)


#: `torch` with `BackendConfig.ray` set: the same engine, one Ray actor per model
_RAY_TORCH = BackendEntry("torch", "moebench.backends.ray_actor", "create",
                          "built-in PyTorch MoE engine in Ray actors", ())


def create_backend(name: str, config: BackendConfig) -> Backend:
    """Build the backend `name`; unknown names are a MoebenchError listing the known ones."""
    entry = _RAY_TORCH if name == "torch" and config.ray else _BACKENDS.get(name)
    if entry is None:
        known = ", ".join(sorted(_BACKENDS))
        raise MoebenchError(f"unknown backend '{name}' — use one of: {known}")
    factory: Callable[[BackendConfig], Backend] = getattr(
        importlib.import_module(entry.module), entry.factory
    )
    return factory(config)
