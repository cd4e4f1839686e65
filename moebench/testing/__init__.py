"""Test and benchmark helpers shipped with moebench: a loopback Ollama stand-in server.

`OllamaStandin` speaks Ollama's real HTTP shapes with fake MoE models, configurable delays,
parallelism, fault injection and counters, so tests and benchmarks need no Ollama binary
and no weights. See `moebench.testing.ollama_standin` for the constructor.

Names are imported lazily so `python -m moebench.testing.ollama_standin` runs cleanly.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "OllamaStandin": "moebench.testing.ollama_standin",
    "StandinRequest": "moebench.testing.standin_http",
    "register_route": "moebench.testing.ollama_standin",
    "StandinConfig": "moebench.testing.standin_engine",
    "canned_responder": "moebench.testing.standin_engine",
    "DEFAULT_INSTALLED": "moebench.testing.standin_models",
    "LIBRARY": "moebench.testing.standin_models",
    "FakeModel": "moebench.testing.standin_models",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'moebench.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
