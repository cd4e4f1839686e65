"""Retries with exponential backoff for HTTP backends (Ollama, OpenAI-compatible, ...).

A backend wraps one attempt in a function that raises `Retryable` for transient failures
(connection errors, 5xx, 429, streams that end before their final chunk) and anything else
for permanent ones. `call_with_retries` runs it up to `retries + 1` times, sleeping
`backoff_s · 2^(attempt-1)` (capped) between tries, and turns the last transient failure into
`RequestFailed`, which the runner stores as an error row; when that last failure was a refused
connection (`Retryable(refused=True)`: nothing listens any more) it is `ServerGone`, which
stops the run. Built on tenacity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential,
)

from moebench.errors import RequestFailed, ServerGone

T = TypeVar("T")

#: HTTP statuses worth another try: timeouts, rate limits and server-side failures.
RETRY_STATUSES = frozenset({408, 429})


class Retryable(Exception):
    """A transient failure of one attempt; the message says what happened.

    `retry_after` is the server's own hint (a 429/503 `Retry-After`, in seconds): the next
    try waits at least that long (capped at `MAX_RETRY_AFTER_S`) instead of the plain backoff.
    """

    def __init__(self, message: str, retry_after: float | None = None,
                 refused: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        #: the host refused the connection (the server is down, not just busy)
        self.refused = refused


#: the longest server-requested pause we honour before the next try
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `retries` extra attempts after the first, exponential backoff."""

    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    @property
    def attempts(self) -> int:
        """Total number of tries."""
        return max(0, self.retries) + 1


def is_retryable_status(status: int) -> bool:
    """5xx, 408 and 429 are retried; other 4xx are the caller's fault and are not."""
    return status >= 500 or status in RETRY_STATUSES


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    """Exponential backoff, or longer when the failed try carried a `retry_after` hint."""
    backoff = wait_exponential(multiplier=policy.backoff_s, max=policy.max_backoff_s)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hint = getattr(error, "retry_after", None) or 0.0
        return max(backoff(state), min(float(hint), MAX_RETRY_AFTER_S))

    return wait


def retry_after_header(headers: object) -> float | None:
    """Seconds from a `Retry-After` (or `retry-after-ms`) header, when one was sent."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for header, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            value = float(get(header))
        except (TypeError, ValueError):
            continue
        if value >= 0 and value == value:  # not NaN
            return value * scale
    return None


def call_with_retries(attempt: Callable[[int], T], policy: RetryPolicy, what: str) -> T:
    """Run `attempt(n)` (n counts from 1) until it succeeds; `Retryable` errors are retried.

    After the last try raises `RequestFailed("<what> failed after N attempts: <reason>")`.
    Other exceptions propagate at once. The first try runs outside tenacity (most requests
    succeed at once: no retry machinery per sample); its failure is replayed as tenacity's
    attempt 1, so the backoff and the count are the same as when tenacity ran it.
    """
    try:
        return attempt(1)
    except Retryable as error:
        first = error

    def replay(n: int) -> T:
        if n == 1:
            raise first
        return attempt(n)

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception_type(Retryable),
        reraise=True,
    )
    try:
        for state in retrying:
            with state:
                return replay(state.retry_state.attempt_number)
    except Retryable as error:
        n = policy.attempts
        failed = ServerGone if error.refused else RequestFailed
        final = failed(f"{what} failed after {n} attempt{'s' * (n > 1)}: {error}")
        final.reason, final.attempts = str(error), n  # type: ignore[attr-defined]
        raise final from None
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
