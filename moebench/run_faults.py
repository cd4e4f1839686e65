"""How a run survives what servers do to it: failed loads, a server that goes away, unloads.

The runner (`moebench.runner`) uses these pieces: `check_models` finds a misspelt model before
the first request; `failed_model` turns a load failure into the model's stored info (status
`failed`, the server's reason and a hint) and the note shown to the user; `ServerStop` is set
once the server refuses connections, so queued samples become error rows without a request and
the run ends as `interrupted` (`Stopped`); `unload_quietly` keeps a failed unload from ending
the run; `prepare_model` warms a model up and turns a `--compile` that fell back to eager into
a note.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

from moebench.backends._compile import compile_note
from moebench.backends._native import native_note
from moebench.errors import BackendError
from moebench.types import ModelInfo, Request


class ServerStop:
    """Set once the server is gone: queued samples then become error rows without a request."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        """Remember the first reason; later ones are the same outage."""
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def is_set(self) -> bool:
        """True once the server went away."""
        return self.event.is_set()


class Stopped(Exception):
    """Ends the model loop: the run is `interrupted` because the server went away."""


def check_models(backend: Any, models: Sequence[str]) -> None:
    """Every model exists (ModelNotFound otherwise), before the first request of the run."""
    check = getattr(backend, "check", None)
    if check is not None:
        for model in models:
            check(model)


def failed_model(error: BackendError, model: str, backend: str, stored: ModelInfo | None,
                 run_id: str) -> tuple[ModelInfo, str, str]:
    """(the model's info marked failed, the reason for its error rows, the note to show)."""
    reason = getattr(error, "reason", None) or str(error)
    hint = getattr(error, "hint", "")
    known = getattr(error, "info", None)
    base = known if isinstance(known, ModelInfo) else stored or ModelInfo(
        name=model, backend=backend)
    info = dataclasses.replace(base, extra={**base.extra, "status": "failed",
                                            "load_error": reason, "load_hint": hint})
    note = (f"{info.name}: load failed: {reason}" + (f" — {hint}" if hint else "")
            + f"; its samples are stored as errors (moebench run --resume {run_id} tries it "
            "again)")
    return info, reason, note


def unload_quietly(backend: Any, model: str, notes: Any) -> ModelInfo | None:
    """Free the model; a failure to do so is a note (`notes(message)`), not the end of the run."""
    try:
        result: ModelInfo | None = backend.unload(model)
        return result
    except BackendError as error:
        notes(f"{model}: could not unload it ({error})")
        return None


def prepare_model(backend: Any, model: str, requests: Sequence[Request],
                  notes: Callable[[str], None]) -> ModelInfo:
    """Warm `model` up, handing over what the backend's `prepare` takes: the run's generation
    options (Ollama pins runner options such as num_ctx at warm-up, so the first request does
    not reload) and its requests (the torch backend sizes `--compile`'s cache from them). A
    model `--compile` could not compile runs eager, and `notes(message)` says why."""
    params = inspect.signature(backend.prepare).parameters
    given: dict[str, Any] = {}
    if requests and "options" in params:
        given["options"] = requests[0].options
    if requests and "requests" in params:
        given["requests"] = requests
    info: ModelInfo = backend.prepare(model, **given)
    for note in (native_note(info), compile_note(info)):
        if note:
            notes(note)
    return info
