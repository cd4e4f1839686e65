"""Guards around a run: checks before the first request, resume rules, signals, stored facts.

- `check_outputs()`: `--out`, `--csv`, `--samples-csv`, `--html` are checked before any model
  is called, so a typo in a path never costs a finished benchmark.
- `check_size()`: a run's planned sample count is bounded before any request is built.
- `resume_options()`: what `--resume` may change (timeout, retries, concurrency, outputs,
  host) takes effect; what defines the run (models, suites, repeats, ...) is refused if it
  differs from the stored run.
- `keep_measured()`: a resumed model that was not reloaded keeps its stored load time.
- `interrupt_signals()`: SIGTERM stops a run like Ctrl-C (it ends `interrupted`); a second
  Ctrl-C quits at once.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from moebench.errors import MoebenchError
from moebench.paths import DB_NAME, normalize_host
from moebench.types import ModelInfo

if TYPE_CHECKING:
    from moebench.run_types import RunOptions

T = TypeVar("T")

#: a run planning more samples than this is refused up front (each is a Request in memory)
MAX_SAMPLES = 250_000
#: options `--resume` takes from the command line (they do not change what is measured)
RESUME_MAY_CHANGE = ("timeout", "retries", "concurrency", "csv", "samples_csv", "html", "host",
                     "pull", "api_key_env", "ray")
#: options that define the run: given on `--resume`, they must equal the stored ones
#: (`compile` too: compiled and eager fp32 sum in different orders, so outputs may differ in
#: the last bits, as across dtypes)
RESUME_MUST_MATCH = ("models", "suites", "backend", "repeats", "limit", "dtype", "device",
                     "hosts", "compile", "native")


class OutputPathError(MoebenchError):
    """An output path cannot be written; found before the run starts."""


class RunTooLarge(MoebenchError):
    """The run would plan more samples than moebench keeps in memory."""


class ResumeConflict(MoebenchError):
    """`--resume` was given an option that would change what the run measures."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so the run ends `interrupted` with its samples."""


#: the signal received, once one was: an interrupt that lands inside library code (an import
#: half done, a `except BaseException` in a dependency) is not lost, the runner checks this
_received: list[int] = []


def interrupt_requested() -> bool:
    """Whether Ctrl-C / SIGTERM arrived (even if its exception was swallowed on the way)."""
    return bool(_received)


def raise_if_interrupted() -> None:
    """Re-raise an interrupt that some library caught and dropped."""
    if _received:
        raise Terminated() if _received[0] == signal.SIGTERM else KeyboardInterrupt()


def interrupted_by_sigterm() -> bool:
    """Whether the interrupt received was SIGTERM."""
    return bool(_received) and _received[0] == signal.SIGTERM


# ---- output paths -----------------------------------------------------------------------


def check_outputs(options: RunOptions) -> None:
    """Exit-1 errors for output paths that cannot be written, before any model is called."""
    _check_folder(Path(options.out))
    files = {"--csv": options.csv, "--samples-csv": options.samples_csv, "--html": options.html}
    seen: dict[Path, str] = {Path(options.out) / DB_NAME: "the store"}
    for flag, path in files.items():
        if path is None:
            continue
        _check_file(flag, Path(path))
        key = Path(os.path.abspath(path))
        other = seen.get(key) or seen.get(Path(path))
        if other:
            raise OutputPathError(f"{flag} {path} is the same file as {other} — give each "
                                  "output its own file")
        seen[key] = flag


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"--out {out} is a file, not a folder — pass a folder for the "
                              "results store")
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(f"--out {out}: {existing} is not a writable folder — pass a "
                              "folder you can write to")


def _check_file(flag: str, path: Path) -> None:
    if path.is_dir():
        raise OutputPathError(f"{flag} {path} is a folder — name a file, e.g. {path / 'x'}"
                              f"{'.html' if flag == '--html' else '.csv'}")
    parent = path.parent
    if not parent.is_dir():
        raise OutputPathError(f"{flag} {path}: the folder {parent} does not exist — create "
                              "it first or write somewhere else")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists()
                                                    and not os.access(path, os.W_OK)):
        where = path if path.exists() else parent
        raise OutputPathError(f"{flag} {path}: {where} is not writable — write somewhere else")


def rewrite_hint(run_id: str, options: RunOptions) -> str:
    """The `moebench report` command that writes a run's files again."""
    parts = [f"moebench report {run_id}"]
    if Path(options.out) != Path("results"):
        parts.append(f"--out {options.out}")
    for flag, path in (("--csv", options.csv), ("--samples-csv", options.samples_csv),
                       ("--html", options.html)):
        if path is not None:
            parts.append(f"{flag} {path}")
    return " ".join(parts)


# ---- size -------------------------------------------------------------------------------


def check_size(suites: Sequence[Any], options: RunOptions, n_models: int) -> int:
    """The run's planned sample count; RunTooLarge before anything is built when too many."""
    limit = options.limit
    cases = sum(min(len(t.cases), limit) if limit else len(t.cases)
                for s in suites for t in s.tasks)
    models = max(n_models, 1)
    planned = cases * options.repeats * models
    if planned > MAX_SAMPLES:
        raise RunTooLarge(
            f"this run would make {planned:,} samples ({cases:,} cases × {options.repeats:,} "
            f"repeats × {models} model{'s' if models > 1 else ''}); the most one run holds is "
            f"{MAX_SAMPLES:,} — lower --repeats or pass --limit N")
    return planned


# ---- resume -----------------------------------------------------------------------------


def resume_options(stored: RunOptions, given: RunOptions) -> tuple[RunOptions, list[str]]:
    """The options a resume runs with, and a note per changed option.

    Only fields the caller set explicitly (`given.model_fields_set`) count as given.
    """
    explicit = given.model_fields_set
    for name in RESUME_MUST_MATCH:
        if name in explicit and not _same(name, getattr(given, name), getattr(stored, name)):
            flag = {"models": "--model", "suites": "--suite"}.get(name, f"--{name}")
            raise ResumeConflict(
                f"--resume cannot change {flag} (the run has {_show(getattr(stored, name))}, "
                f"given {_show(getattr(given, name))}) — drop it to finish the run as it "
                "started, or start a new run without --resume")
    update: dict[str, Any] = {"out": given.out, "resume": None}
    notes = []
    for name in RESUME_MAY_CHANGE:
        new = getattr(given, name)
        if name == "host" and new is not None:
            new = normalize_host(new)
        if name in explicit and new is not None and new != getattr(stored, name):
            update[name] = new
            notes.append(f"--{name.replace('_', '-')} {new} (was {getattr(stored, name)})")
    return stored.model_copy(update=update), notes


def _same(name: str, given: Any, stored: Any) -> bool:
    if name == "models":
        return [_model_key(m) for m in given] == [_model_key(m) for m in stored]
    if name == "suites":
        return [Path(p).resolve() for p in given] == [Path(p).resolve() for p in stored]
    return bool(given == stored)


def _model_key(name: str) -> str:
    return name[: -len(":latest")] if name.endswith(":latest") else name


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def keep_measured(stored: ModelInfo | None, info: ModelInfo) -> ModelInfo:
    """`info`, but with the stored load time when this process did not load the model again
    (a resume against a server that still had it resident measures ~0 s)."""
    if stored is None or stored.load_s is None or info.loads != 0:
        return info
    return dataclasses.replace(info, load_s=stored.load_s, loads=stored.loads)


# ---- signals ----------------------------------------------------------------------------


@contextmanager
def interrupt_signals() -> Iterator[None]:
    """SIGTERM raises `Terminated`; after the first interrupt, another Ctrl-C exits at once.

    Only in the main thread (signal handlers cannot be set elsewhere); a no-op otherwise.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def first(signum: int, frame: Any) -> None:
        _received.append(signum)
        signal.signal(signal.SIGINT, _quit_now)
        signal.signal(signal.SIGTERM, _quit_now)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:  # `nohup`/background jobs keep ignoring it
            signal.signal(sig, first)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _received.clear()


def block_signals() -> None:
    """For request worker threads: leave SIGINT/SIGTERM to the main thread. The kernel may hand
    a process signal to any thread that does not block it; one taken by a worker stuck in a
    socket read never wakes the main thread, which then sleeps on in `as_completed`."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def completed_interruptibly(futures: Iterable[Future[T]], poll_s: float = 0.25
                            ) -> Iterator[Future[T]]:
    """`as_completed` that wakes every `poll_s`: a signal the kernel handed to another thread
    (rich's refresh thread, a worker) only runs its Python handler once the main thread wakes,
    and an untimed wait would sleep until a hung server answers."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
        yield from done


def _quit_now(signum: int, frame: Any) -> None:
    # The store commits each sample in its own transaction, so leaving now loses nothing
    # that was stored; only the run's status line stays whatever it was.
    sys.stderr.write("interrupted again: quitting now\n")
    sys.stderr.flush()
    os._exit(130 if signum == signal.SIGINT else 143)


def exit_now(code: int) -> None:
    """Leave the process without joining request threads still blocked on a hung server."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
