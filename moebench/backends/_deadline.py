"""A wall-clock deadline for one HTTP attempt, enforced while the body is still arriving.

httpx's timeouts bound each socket read, so a server that trickles a byte now and then, or a
stream that goes quiet between lines, can hold a request far beyond `--timeout`. `Deadline`
arms a timer; when it fires it shuts the response's socket down, which wakes the reading
thread at once (its read ends with a protocol or read error), and the backend reports the
timeout instead of whatever the broken read said. The response is attached by an httpx
response event hook (`hook`), called in the requesting thread as soon as headers arrive.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

_local = threading.local()


class Deadline:
    """`with Deadline(seconds):` around one attempt; `fired` tells whether it cut the read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()
        self.fired = False
        self._response: Any = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._previous = getattr(_local, "deadline", None)
        _local.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _local.deadline = self._previous

    @property
    def passed(self) -> bool:
        """True once the wall-clock allowance is spent (fired or not)."""
        return self.fired or time.perf_counter() - self.start > self.seconds

    def attach(self, response: Any) -> None:
        """The response whose socket to cut when the deadline passes."""
        with self._lock:
            self._response = response
            fired = self.fired
        if fired:
            _cut(response)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            response = self._response
        if response is not None:
            _cut(response)


def hook(response: Any) -> None:
    """httpx `event_hooks["response"]` entry: hand the response to this thread's deadline."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.attach(response)


def current_response() -> Any:
    """The response the active deadline of this thread watches (for its headers), or None."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    return None if deadline is None else deadline._response


def _cut(response: Any) -> None:
    """Shut the response's socket down: a blocked `recv` in another thread returns at once."""
    stream = getattr(response, "extensions", {}).get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
