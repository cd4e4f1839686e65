"""The run's public nouns: what `moebench run` was asked (`RunOptions`, validated and stored
with the run for `--resume`), what it reports while it works (`RunEvents`), how it ended
(`RunResult`). `moebench.runner` does the work; this module imports nothing of it, so the
pieces the runner uses (`run_control`, `run_faults`) can name these types freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from moebench.paths import DEFAULT_OUT
from moebench.types import ModelInfo, Record


class RunOptions(BaseModel):
    """What the user asked `moebench run` for (validated); stored with the run for --resume."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: list[str] = Field(default_factory=list, description="model names or paths")
    suites: list[Path] = Field(default_factory=list, description="suite files or folders")
    backend: str | None = Field(None, description="ollama | torch | langchain | openai")
    host: str | None = Field(None, description="server base URL")
    #: every host of a multi-host run (base URLs; empty with one host), see moebench.hosts
    hosts: list[str] = Field(default_factory=list, description="server base URLs")
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
    #: torch backend on a Ray cluster: `auto`, an address, or `local` (None: in-process)
    ray: str | None = None
    #: torch backend: compile each model's decode step (`Engine.compile_decode`) after its load
    compile: bool = False
    #: torch backend: decode with the C step (`Engine.native_decode`) where it covers the model
    native: bool = False
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
    #: why an interrupted run stopped when it was not Ctrl-C (e.g. the disk is full)
    reason: str | None = None
    #: a late failure writing --csv/--samples-csv/--html (the samples are all stored)
    write_error: str | None = None
    #: `interrupted`: by SIGTERM rather than Ctrl-C
    terminated: bool = False
