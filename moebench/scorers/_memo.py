"""The answers of the scorers' slow lookups, kept on disk between processes.

"Is this a real word" (hunspell's dictionary: 1 s to load), "what unit is this" (pint 0.5 s,
lemminflect 0.8 s) and ROUGE-L (nltk 0.3 s) are pure functions of their input and of the
library data. `run` pays their set-up while it scores; `rescore` of the same outputs, a
second run of the same suite or a report would pay it again for answers already known. A
`DiskMemo` remembers them: one JSON file per lookup in the user cache folder
(`$MOEBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/moebench`, else `~/.cache/moebench`), named by a
fingerprint of the source files that compute the answers and of the libraries' versions, so
a change to either starts afresh. New answers are written once, at exit, atomically and merged
with what other processes wrote meanwhile; a folder that cannot be written only means nothing
is kept. `MOEBENCH_CACHE_DIR=off` turns it off.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: a file that grows past this many answers starts again from this process's answers
MAX_ENTRIES = 200_000
#: files of an older fingerprint are removed once this old
STALE_S = 7 * 86400
#: every memo made in this process (`save_all`)
_MEMOS: list[DiskMemo] = []


def cache_dir() -> Path | None:
    """The folder for the memo files; None when turned off."""
    chosen = os.environ.get("MOEBENCH_CACHE_DIR")
    if chosen:
        return None if chosen.lower() in ("off", "0", "none") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "moebench"


class DiskMemo:
    """`memo.get(key, compute)`: the stored answer for `key`, else `compute()` (kept)."""

    def __init__(self, name: str, sources: Sequence[str], libraries: Sequence[str]) -> None:
        self.name = name
        self.sources, self.libraries = tuple(sources), tuple(libraries)
        self._known: dict[str, Any] | None = None
        self._new: dict[str, Any] = {}
        self._path: Path | None = None
        self._lock = threading.Lock()
        _MEMOS.append(self)

    def get(self, key: str, compute: Callable[[], T]) -> T:
        """The answer for `key` (JSON-safe values only: str, None, bool, numbers, lists)."""
        known = self._known if self._known is not None else self._load()
        if key in known:
            return known[key]
        value = compute()
        with self._lock:
            if not self._new and self._path is not None:
                atexit.register(self.save)
            known[key] = self._new[key] = value
        return value

    def _load(self) -> dict[str, Any]:
        with self._lock:
            if self._known is None:
                self._path = self._file()
                self._known = _read(self._path) if self._path else {}
            return self._known

    def _file(self) -> Path | None:
        folder = cache_dir()
        if folder is None:
            return None
        digest = hashlib.sha256()
        for source in self.sources:
            try:
                digest.update(Path(source).read_bytes())
            except OSError:  # a data file a trimmed install lacks: its answers differ too
                digest.update(f"{source} absent;".encode())
        for library in self.libraries:
            digest.update(f"{library}={_version(library)};".encode())
        return folder / f"{self.name}-{digest.hexdigest()[:16]}.json"

    def save(self) -> None:
        """Write the new answers (merged with the file as it is now); errors are ignored."""
        with self._lock:
            new, self._new = self._new, {}
        if not new or self._path is None:
            return
        try:
            merged = _read(self._path)
            merged.update(new)
            if len(merged) > MAX_ENTRIES:
                merged = new
            self._path.parent.mkdir(parents=True, exist_ok=True)
            scratch = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
            scratch.write_text(json.dumps(merged, ensure_ascii=False), encoding="utf-8")
            os.replace(scratch, self._path)
            _remove_stale(self._path)
        except (OSError, TypeError, ValueError):
            pass  # a read-only or full cache folder: nothing is kept, nothing breaks


def save_all() -> None:
    """Write every memo's new answers now (they are also written at exit)."""
    for memo in _MEMOS:
        memo.save()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def _remove_stale(current: Path) -> None:
    """Old fingerprints of the same lookup, unused for a week (the code or a library moved)."""
    prefix = current.name.rsplit("-", 1)[0] + "-"
    now = time.time()
    for path in current.parent.glob(f"{prefix}*.json"):
        if path != current and now - path.stat().st_mtime > STALE_S:
            path.unlink(missing_ok=True)
