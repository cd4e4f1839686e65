"""A wall-clock deadline for one HTTP attempt, enforced while the body is still arriving.

httpx's timeouts bound each socket read, so a server that trickles a byte now and then, or a
stream that goes quiet between lines, can hold a request far beyond `--timeout`. `Deadline`
arms a timer; when it fires it shuts the response's socket down, which wakes the reading
thread at once (its read ends with a protocol or read error), and the backend reports the
timeout instead of whatever the broken read said. The response is attached by an httpx
response event hook (`hook`), called in the requesting thread as soon as headers arrive.

One watchdog thread per process serves every deadline (a heap of due times): starting a timer
thread per request cost a thread start and a hand-off on every sample (~0.5-2 ms on a busy
2-core machine), and a finished request's entry is simply skipped when it comes due.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

_local = threading.local()
#: heap size at which finished deadlines are swept out (long timeouts, many fast requests)
_COMPACT_AT = 4096


class Deadline:
    """`with Deadline(seconds):` around one attempt; `fired` tells whether it cut the read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()
        self.fired = False
        self.done = False
        self._response: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> Deadline:
        self._previous = getattr(_local, "deadline", None)
        _local.deadline = self
        _WATCHDOG.watch(self, self.start + max(self.seconds, 0.0))
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:  # the watchdog drops it when it comes due
            self.done, self._response = True, None  # and holds no response meanwhile
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
            if self.done:
                return
            self.fired = True
            response = self._response
        if response is not None:
            _cut(response)


class _Watchdog:
    """One daemon thread firing due deadlines; started on first use (and again after fork)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Empty, with no thread (also in a forked child: the parent's thread is not there)."""
        self._due: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()  # ties never compare Deadlines
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline, due: float) -> None:
        with self._wake:
            if len(self._due) >= _COMPACT_AT:  # finished entries wait for their due time
                self._due = [entry for entry in self._due if not entry[2].done]
                heapq.heapify(self._due)
            heapq.heappush(self._due, (due, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="moebench-deadline",
                                                daemon=True)
                self._thread.start()
            elif self._due[0][2] is deadline:  # earlier than what the thread sleeps towards
                self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._due and self._due[0][2].done:
                    heapq.heappop(self._due)  # finished requests: nothing to cut
                wait = self._due[0][0] - time.perf_counter() if self._due else None
                if wait is None or wait > 0:
                    self._wake.wait(wait)
                    continue
                _, _, deadline = heapq.heappop(self._due)
            deadline._fire()


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._reset)


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
