"""Is a run's process still alive? The run row records pid, process start time and host.

A run left `running` by a process that was killed (`kill -9`, OOM killer, power loss) must
not look finished or still going: readers compare the recorded pid and start time with the
live process table (a reused pid has another start time) and show such a run as
`interrupted`. A run recorded on another host cannot be checked and keeps its stored status.
"""

from __future__ import annotations

import os
import socket
from typing import Any

#: start times are floats from the OS clock; a reused pid differs by far more than this
_START_SLACK_S = 1.0


def this_process() -> dict[str, Any]:
    """The run-row columns naming the current process."""
    import psutil

    return {"pid": os.getpid(), "pid_started": psutil.Process().create_time(),
            "host_name": socket.gethostname()}


def process_alive(pid: int | None, started: float | None, host: str | None) -> bool | None:
    """True/False when it can be told (same host, pid recorded), else None."""
    if pid is None or started is None or host != socket.gethostname():
        return None
    import psutil

    try:
        created = psutil.Process(int(pid)).create_time()
    except (psutil.Error, ValueError, OverflowError):
        return False
    return abs(created - float(started)) < _START_SLACK_S


def effective_status(row: dict[str, Any]) -> str:
    """The stored status, except `interrupted` for a `running` run whose process is gone."""
    status = str(row.get("status"))
    if status == "running" and process_alive(row.get("pid"), row.get("pid_started"),
                                             row.get("host_name")) is False:
        return "interrupted"
    return status


def is_dead(row: dict[str, Any]) -> bool:
    """Whether the row says `running` although its process is gone."""
    return row.get("status") == "running" and effective_status(row) == "interrupted"
