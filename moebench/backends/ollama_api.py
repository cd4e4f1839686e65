"""Ollama server facts through the official client: names, hosts, errors, models, pull.

Owns what `moebench pull/models/ps` and the Ollama backend share: `normalize_name`
(`dbrx` → `dbrx:latest`), `normalize_host`, `ping` (server version or None, fast when nothing
listens), translation of client/httpx exceptions into `MoebenchError`s with one-line fixes,
`model_info` (MoE facts from `/api/show` `model_info`: `{arch}.expert_count`,
`.expert_used_count`, `.expert_shared_count`, `general.parameter_count`, ...),
`list_models`, `running_models` and `pull_model` (streamed progress).
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import ollama

from moebench.errors import BackendError, BackendUnavailable, ModelNotFound
from moebench.paths import normalize_host
from moebench.types import ModelInfo

BACKEND = "ollama"
#: what a pull of a name the registry does not know ends with (notes §2.5)
_UNKNOWN_MANIFEST = "file does not exist"


@dataclass(frozen=True)
class PullProgress:
    """One line of `/api/pull` progress: a status, and for layers a digest with byte counts."""

    model: str
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


def normalize_name(name: str) -> str:
    """`dbrx` → `dbrx:latest` (the tag of the last path segment defaults to `latest`)."""
    name = name.strip()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def unreachable(host: str, hint: str = "") -> BackendUnavailable:
    """The one error for an Ollama server that does not answer (`hint` adds a way out)."""
    return BackendUnavailable(
        f"Ollama is not reachable at {host} — start it with: ollama serve{hint}")


def ping(host: str | None = None, timeout: float = 0.3) -> str | None:
    """The server's version, or None when nothing (or not Ollama) answers at `host`."""
    try:
        reply = httpx.get(f"{normalize_host(host)}/api/version", timeout=timeout)
        reply.raise_for_status()
        return str(reply.json()["version"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once: httpx would otherwise load the CA
    bundle for every client (~20–30 ms each, even for plain-http hosts)."""
    return httpx.create_ssl_context()


def make_client(host: str, timeout: float | None,
                on_response: Callable[[httpx.Response], None] | None = None) -> ollama.Client:
    """An official client with a connect timeout short enough to fail fast; `on_response`
    sees each response as its headers arrive (the backends' wall-clock deadlines use it)."""
    limit = None if timeout is None else httpx.Timeout(timeout, connect=min(timeout, 10.0))
    hooks = {"response": [on_response]} if on_response is not None else {}
    return ollama.Client(host, timeout=limit, verify=_tls_context(), event_hooks=hooks)


@contextlib.contextmanager
def translated(host: str, model: str | None = None) -> Iterator[None]:
    """Turn client/httpx exceptions of a non-generation call into MoebenchErrors."""
    try:
        yield
    except (ConnectionError, httpx.ConnectError):
        raise unreachable(host) from None
    except httpx.TimeoutException:
        raise BackendError(f"Ollama at {host} did not answer in time — check the server "
                           "(ollama ps) or raise --timeout") from None
    except httpx.TransportError as error:
        raise BackendError(f"connection to Ollama at {host} failed: {error}") from None
    except ollama.ResponseError as error:
        if error.status_code == 404 and model:
            raise not_found(model) from None
        raise BackendError(f"Ollama error ({error.status_code}): {error.error}") from None


def not_found(model: str) -> ModelNotFound:
    """The missing-model error, naming the command that fixes it."""
    return ModelNotFound(f"model '{model}' not found — run: moebench pull {model}")


def _num(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def model_info(name: str, show: ollama.ShowResponse | None, digest: str | None = None,
               ps_row: Any = None) -> ModelInfo:
    """A ModelInfo from `/api/show` (MoE facts), a `/api/tags` digest and an `/api/ps` row."""
    info: Mapping[str, Any] = (show.modelinfo if show is not None else None) or {}
    details = (show.details if show is not None else None) or (
        ps_row.details if ps_row is not None else None)
    arch = str(info.get("general.architecture") or "")
    extra: dict[str, Any] = {"architecture": arch or None}
    if show is not None and show.capabilities:
        extra["capabilities"] = list(show.capabilities)
    if ps_row is not None:
        extra["expires_at"] = ps_row.expires_at.isoformat() if ps_row.expires_at else None
        extra["loaded_context_length"] = ps_row.context_length
    return ModelInfo(
        name=name, backend=BACKEND, digest=digest,
        family=details.family if details else None,
        parameter_size=details.parameter_size if details else None,
        quantization=details.quantization_level if details else None,
        context_length=_num(info.get(f"{arch}.context_length")),
        experts=_num(info.get(f"{arch}.expert_count")) or None,
        top_k=_num(info.get(f"{arch}.expert_used_count")),
        shared_experts=_num(info.get(f"{arch}.expert_shared_count")),
        total_params=_num(info.get("general.parameter_count")),
        size_bytes=_num(ps_row.size) if ps_row is not None else None,
        vram_bytes=_num(ps_row.size_vram) if ps_row is not None else None,
        extra=extra,
    )


def digests(client: ollama.Client) -> dict[str, str]:
    """Installed model name → manifest digest, from `/api/tags`."""
    return {m.model: m.digest for m in client.list().models if m.model and m.digest}


def ps_rows(client: ollama.Client) -> dict[str, Any]:
    """Loaded model name → its `/api/ps` row."""
    return {m.model: m for m in client.ps().models if m.model}


def list_models(host: str | None = None, timeout: float = 30.0) -> list[ModelInfo]:
    """Installed models with size, family, quantization and MoE facts (`/api/tags` + show)."""
    base = normalize_host(host)
    client = make_client(base, timeout)
    with client, translated(base):
        listed = client.list().models
        out = []
        for entry in listed:
            name = str(entry.model)
            with translated(base, name):
                show = client.show(name)
            info = model_info(name, show, entry.digest)
            out.append(_with(info, size_bytes=_num(entry.size)))
    return out


def running_models(host: str | None = None, timeout: float = 30.0) -> list[ModelInfo]:
    """Loaded models with resident size, VRAM share, context and keep-alive expiry (`/api/ps`)."""
    base = normalize_host(host)
    client = make_client(base, timeout)
    with client, translated(base):
        return [model_info(str(row.model), None, row.digest, row) for row in client.ps().models]


def pull_model(host: str | None, name: str,
               on_progress: Callable[[PullProgress], None] | None = None) -> None:
    """Pull `name`, reporting each streamed progress line; ModelNotFound when unknown."""
    base, model = normalize_host(host), normalize_name(name)
    client = make_client(base, None)  # downloads take as long as they take
    try:
        with client, translated(base):
            for line in client.pull(model, stream=True):
                if on_progress is not None:
                    on_progress(PullProgress(model, str(line.status or ""), line.digest,
                                             line.total, line.completed))
    except BackendUnavailable:
        raise
    except BackendError as error:
        if _UNKNOWN_MANIFEST in str(error) or "not found" in str(error):
            raise ModelNotFound(f"cannot pull '{name}': the registry has no such model — "
                                "check the name at https://ollama.com/library") from None
        raise BackendError(f"cannot pull '{name}': {error}") from None


def _with(info: ModelInfo, **changes: Any) -> ModelInfo:
    from dataclasses import replace

    return replace(info, **changes)
