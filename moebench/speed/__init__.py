"""`moebench speed`: controlled throughput sweeps that say when a number cannot be trusted.

For each model × prompt length × concurrency: a warm-up, then `--repeats` measured requests
with prompts built to the asked token count (a nonce first, so no prompt cache helps) and
generation forced to `--gen-tokens`. Cells carry prompt and generation tok/s, TTFT, aggregate
tok/s, load time, trust flags and the MoE roofline. Modules: `options` (what was asked),
`prompts` (nonce + filler, calibrated to the server's token counts), `cells` (samples, stats,
flags), `roofline` (active bytes per token, bandwidth), `targets` (placement facts per
backend), `sweep` (the loop), `rows` (store rows and CSV).

Names are imported lazily so `moebench --help` does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "SpeedOptions": "moebench.speed.options",
    "parse_counts": "moebench.speed.options",
    "run_speed": "moebench.speed.sweep",
    "SpeedResult": "moebench.speed.sweep",
    "Cell": "moebench.speed.cells",
    "fastest": "moebench.speed.cells",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'moebench.speed' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
