"""What a sweep needs to know about where a model runs, per backend.

* Ollama: `/api/ps` says which other models are resident (before the load, and again after
  every cell), how much of this one is in VRAM (`size_vram / size`), and `--evict` unloads the
  others (`keep_alive: 0`); `/api/show` gives the tensors or architecture numbers the roofline
  counts bytes from.
* torch: the engine runs in this process on `--device`; its own byte count feeds the roofline.
* openai: the API says nothing about placement or architecture (no roofline, no flags from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from moebench.speed.cells import Placement
from moebench.speed.roofline import (
    bytes_from_model_info, bytes_from_tensors, copy_bandwidth_cpu, copy_bandwidth_cuda,
)
from moebench.types import ModelInfo


@dataclass(frozen=True)
class Bandwidth:
    """Memory bandwidths in bytes/s (None: unknown) and how they were found."""

    cpu: float | None
    gpu: float | None
    source: str


class Target(Protocol):
    """Backend-specific facts for a sweep."""

    def others(self, model: str) -> tuple[str, ...]:
        """Other models resident on the server now."""
        ...

    def evict(self, names: tuple[str, ...]) -> None:
        """Unload these models."""
        ...

    def placement(self, model: str, info: ModelInfo) -> Placement:
        """Where the loaded model sits now."""
        ...

    def bytes_per_token(self, model: str, info: ModelInfo) -> int | None:
        """Active weight bytes one generated token reads, when they can be counted."""
        ...

    def bandwidth(self, placement: Placement, forced: float | None) -> Bandwidth:
        """The memory bandwidth(s) the model's weights are read at."""
        ...


def _measured(forced: float | None, gpu: bool, device: str = "cuda") -> Bandwidth:
    if forced:
        return Bandwidth(forced * 1e9, forced * 1e9, "--bandwidth")
    gpu_bw = copy_bandwidth_cuda(device) if gpu else None
    what = "host copy" + (" + device copy" if gpu_bw else "")
    return Bandwidth(copy_bandwidth_cpu(), gpu_bw, what)


class OllamaTarget:
    """Facts from an Ollama server's `/api/ps` and `/api/show`."""

    def __init__(self, host: str, timeout: float = 30.0) -> None:
        from moebench.backends.ollama_api import normalize_host

        self.host = normalize_host(host)
        self.timeout = timeout

    def _ps(self) -> list[ModelInfo]:
        from moebench.backends.ollama_api import running_models

        return running_models(self.host, self.timeout)

    def others(self, model: str) -> tuple[str, ...]:
        from moebench.backends.ollama_api import normalize_name

        name = normalize_name(model)
        return tuple(m.name for m in self._ps() if m.name != name)

    def evict(self, names: tuple[str, ...]) -> None:
        from moebench.backends.ollama_api import make_client, translated

        client = make_client(self.host, self.timeout)
        with client:
            for name in names:
                with translated(self.host, name):
                    client.generate(model=name, keep_alive=0)

    def placement(self, model: str, info: ModelInfo) -> Placement:
        from moebench.backends.ollama_api import normalize_name

        name = normalize_name(model)
        rows = self._ps()
        row = next((m for m in rows if m.name == name), None)
        share = row.gpu_share if row is not None else info.gpu_share
        return Placement(share, True, tuple(m.name for m in rows if m.name != name))

    def bytes_per_token(self, model: str, info: ModelInfo) -> int | None:
        show = self._show(model)
        tensors = show.get("tensors") or []
        found = bytes_from_tensors(tensors, info.experts, info.top_k) if tensors else None
        if found is None:
            quant = (show.get("details") or {}).get("quantization_level") or info.quantization
            found = bytes_from_model_info(show.get("model_info") or {}, quant)
        return found

    def _show(self, model: str) -> dict[str, Any]:
        """The raw `/api/show` body: the official client drops `tensors`."""
        import httpx

        from moebench.backends.ollama_api import make_client, normalize_name

        try:
            with make_client(self.host, self.timeout) as client:  # its httpx client, raw
                reply = client._client.post("/api/show", json={"model": normalize_name(model)})
                reply.raise_for_status()
                body = reply.json()
        except (httpx.HTTPError, ValueError):
            return {}
        return body if isinstance(body, dict) else {}

    def bandwidth(self, placement: Placement, forced: float | None) -> Bandwidth:
        return _measured(forced, bool(placement.gpu_share))


class EngineTarget:
    """The built-in engine: nothing else shares it, the engine counts its own bytes."""

    def __init__(self, device: str) -> None:
        self.device = device

    def others(self, model: str) -> tuple[str, ...]:
        return ()

    def evict(self, names: tuple[str, ...]) -> None:
        return None

    def placement(self, model: str, info: ModelInfo) -> Placement:
        return Placement(info.gpu_share, False, ())

    def bytes_per_token(self, model: str, info: ModelInfo) -> int | None:
        value = info.extra.get("active_bytes_per_token")
        return int(value) if value else None

    def bandwidth(self, placement: Placement, forced: float | None) -> Bandwidth:
        on_gpu = self.device.startswith("cuda")
        return _measured(forced, on_gpu, self.device if on_gpu else "cuda")


class ClientTarget:
    """An OpenAI-compatible server: placement and architecture are unknown."""

    def others(self, model: str) -> tuple[str, ...]:
        return ()

    def evict(self, names: tuple[str, ...]) -> None:
        return None

    def placement(self, model: str, info: ModelInfo) -> Placement:
        return Placement(None, False, ())

    def bytes_per_token(self, model: str, info: ModelInfo) -> int | None:
        return None

    def bandwidth(self, placement: Placement, forced: float | None) -> Bandwidth:
        return Bandwidth(None, None, "not needed")


def make_target(backend: str, host: str | None, device: str) -> Target:
    """The Target for a backend name."""
    if backend == "ollama":
        return OllamaTarget(host or "")
    if backend == "torch":
        return EngineTarget(device)
    return ClientTarget()
