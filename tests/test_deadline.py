"""`Deadline`: one watchdog thread serves every request (no thread started per sample), a
finished attempt is never cut, an overdue one is."""

from __future__ import annotations

import threading
import time

from moebench.backends._deadline import Deadline


def _watchdogs() -> int:
    return sum(t.name == "moebench-deadline" for t in threading.enumerate())


def test_many_deadlines_share_one_thread_and_only_overdue_ones_fire() -> None:
    finished = []
    for _ in range(200):
        with Deadline(30.0) as deadline:
            pass
        finished.append(deadline)
    assert _watchdogs() == 1
    with Deadline(0.02) as late:
        time.sleep(0.3)
    assert late.fired and late.passed
    assert not any(d.fired for d in finished)
    with Deadline(0.05) as early:  # earlier than the 30 s ones the thread sleeps towards
        time.sleep(0.4)
    assert early.fired and _watchdogs() == 1
