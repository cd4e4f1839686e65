"""The machine a run ran on (OS, CPU, cores, RAM, Python, torch/GPU), stored with the run."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    """OS, CPU, cores, RAM, Python, and torch/GPU when torch is already in use."""
    import psutil

    info: dict[str, Any] = {
        "os": platform.platform(), "cpu": _cpu_name(), "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_bytes": psutil.virtual_memory().total, "python": platform.python_version(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:  # only report torch when a backend actually imported it
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
