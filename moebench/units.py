"""Human-readable sizes shared by the backends, the terminal tables and the HTML report."""

from __future__ import annotations

import math
from typing import Any


def human_number(count: int) -> str:
    """Ollama's `format.HumanNumber`: 46702792704 → `46.7B`, 8e9 → `8B`, 1.3e6 → `1.30M`."""
    if count >= 1_000_000_000:
        value = count / 1e9
        return f"{value:.0f}B" if value == int(value) else f"{value:.1f}B"
    if count >= 1_000_000:
        return f"{count / 1e6:.2f}M"
    return str(count)


def human_bytes(n: Any, unknown: str = "?") -> str:
    """Resident memory: `29.09 GB` from 100 MB up, else `14.5 MB`; `unknown` when missing."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return unknown
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
