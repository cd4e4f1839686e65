"""Numbers as table cells (percentages, points, p-values, seconds; an en dash when missing),
shared by the terminal, HTML and Markdown reports; no rendering library is imported here."""

from __future__ import annotations

import math
from typing import Any

DASH = "–"


def finite(v: Any) -> bool:
    """A real, finite number (not bool, None, NaN or inf)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt_num(v: Any, digits: int = 2) -> str:
    """A number with `digits` decimals, or an en dash when missing."""
    return f"{v:.{digits}f}" if finite(v) else DASH


def fmt_secs(v: Any) -> str:
    """Seconds with three significant digits (0.0123, 7.41, 12.3), or an en dash."""
    return f"{v:.3g}" if finite(v) else DASH


def fmt_pct(v: Any) -> str:
    """A share as a percentage with one decimal (0.8 → 80.0%)."""
    return f"{v * 100:.1f}%" if finite(v) else DASH


def fmt_points(v: Any) -> str:
    """A difference of shares in signed percentage points (+12.5; 0.0 has no sign)."""
    if not finite(v):
        return DASH
    text = f"{v * 100:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def fmt_mdd(v: Any) -> str:
    """A minimum detectable difference in points (±9.4), or an en dash."""
    return f"±{v * 100:.1f}" if finite(v) else DASH


def latency_delta_text(delta: Any, share: Any) -> str:
    """`+0.12 s (+10%)`: how much slower (+) or faster (−) run B is than run A."""
    if delta is None or delta != delta:
        return "–"
    pct = f" ({share * 100:+.0f}%)" if share is not None and share == share else ""
    return f"{delta:+.2f} s{pct}".replace("-", "−")


def fmt_p(p: Any) -> str:
    """A p-value with its relation sign: `= 0.035`, `< 0.001`."""
    if not finite(p):
        return DASH
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"
