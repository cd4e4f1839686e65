"""Shared pieces for the LangChain and OpenAI backend tests: a request, a configured backend."""

from __future__ import annotations

from typing import TypeVar

from moebench.backends import BackendConfig, create_backend
from moebench.testing import OllamaStandin
from moebench.types import Request, ScorerSpec

B = TypeVar("B")


def chat_request(prompt: str = "What is 2 + 2?", **options: object) -> Request:
    """A number-scored request with a system prompt, temperature 0 plus `options`."""
    return Request("s", "t", "c", prompt, ScorerSpec("number"), system="Be brief.",
                   options={"temperature": 0, **options})


def backend_at(server: OllamaStandin, kind: str, cls: type[B], **config: object) -> B:
    """Backend `kind` from the registry, pointed at `server` with fast retries; must be a `cls`."""
    settings: dict[str, object] = {"host": server.url, "retries": 2, "backoff_s": 0.01,
                                   "timeout": 10.0, **config}
    backend = create_backend(kind, BackendConfig(**settings))  # type: ignore[arg-type]
    assert isinstance(backend, cls)
    return backend
