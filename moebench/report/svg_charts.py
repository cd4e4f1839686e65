"""Small static SVG charts for the HTML report: scatter, box plots, bars, heatmaps.

Hand-built inline SVG keeps the report one self-contained file that works offline (no
plotting library, no CDN, no JavaScript needed to draw). Every function returns an `<svg>`
string; every piece of user text in it (model, task names) is escaped here. Hover details
use SVG `<title>` elements, which browsers show as tooltips.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

#: Tableau 10: distinct, colour-blind friendlier than the defaults, readable on white
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'
_AXIS = "#555"
_GRID = "#e6e6e6"


def color(i: int) -> str:
    """The i-th series colour (cycles after ten)."""
    return PALETTE[i % len(PALETTE)]


def name_color(name: str) -> int:
    """The palette index a model name hashes to (stable across runs, reports, machines)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") % len(
        PALETTE)


def model_colors(names: Iterable[str]) -> dict[str, str]:
    """Model name → colour, the same in every report: the palette slot its name hashes to.

    When names of one report share a slot, the first in sorted order keeps it and the others
    take the next slot no name of the report hashes to; every other name keeps its own slot,
    so the result depends on the set of names, never on their order.
    """
    ordered = sorted(set(names))
    keeper: dict[int, str] = {}
    for name in ordered:
        keeper.setdefault(name_color(name), name)
    out = {name: PALETTE[slot] for slot, name in keeper.items()}
    taken = set(keeper)
    for name in (n for n in ordered if n not in out):
        slot = name_color(name)
        free = [(slot + step) % len(PALETTE) for step in range(1, len(PALETTE))]
        slot = next((s for s in free if s not in taken), slot)  # > 10 models: colours repeat
        taken.add(slot)
        out[name] = PALETTE[slot]
    return out


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1-2-5 steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [round(start, 10)], start
    while t < hi - step * 1e-9:  # the last tick covers hi, so nothing is drawn off-axis
        t += step
        ticks.append(round(t, 10))
    return ticks


def _fmt(v: float) -> str:
    """Tick label: no trailing zeros (0.25, 10, 1.5)."""
    return f"{v:.6g}"


def _ok(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


@dataclass(frozen=True)
class _Axis:
    """A linear mapping from data [lo, hi] to pixels [p0, p1]."""

    lo: float
    hi: float
    p0: float
    p1: float

    def __call__(self, v: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.p0 + (v - self.lo) / span * (self.p1 - self.p0)


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" '
            f'{_FONT}>' + "".join(body) + "</svg>")


def _x_axis(x: _Axis, ticks: list[float], y0: float, y1: float, title: str) -> list[str]:
    """Vertical grid lines with labels under the plot, and the axis title."""
    out = []
    for t in ticks:
        px = x(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y0:.1f}" y2="{y1:.1f}" '
                   f'stroke="{_GRID}"/><text x="{px:.1f}" y="{y1 + 15:.1f}" '
                   f'text-anchor="middle" fill="{_AXIS}">{_fmt(t)}</text>')
    mid = (x.p0 + x.p1) / 2
    out.append(f'<text x="{mid:.1f}" y="{y1 + 34:.1f}" text-anchor="middle" '
               f'fill="#222">{escape(title)}</text>')
    return out


def _y_axis(y: _Axis, ticks: list[float], x0: float, x1: float, title: str) -> list[str]:
    """Horizontal grid lines with labels left of the plot, and the rotated axis title."""
    out = []
    for t in ticks:
        py = y(t)
        out.append(f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{py:.1f}" y2="{py:.1f}" '
                   f'stroke="{_GRID}"/><text x="{x0 - 6:.1f}" y="{py + 4:.1f}" '
                   f'text-anchor="end" fill="{_AXIS}">{_fmt(t)}</text>')
    mid = (y.p0 + y.p1) / 2
    out.append(f'<text transform="translate(14 {mid:.1f}) rotate(-90)" text-anchor="middle" '
               f'fill="#222">{escape(title)}</text>')
    return out


@dataclass(frozen=True)
class Point:
    """One model in the accuracy-vs-speed scatter, with its interval whiskers."""

    label: str
    x: float
    y: float
    y_low: float
    y_high: float
    x_low: float | None = None
    x_high: float | None = None
    color: str = PALETTE[0]


def _upper(p: Point) -> float:
    """The right end of a point's horizontal whisker (or the point itself)."""
    return p.x_high if p.x_high is not None and _ok(p.x_high) else p.x


def pareto(points: Sequence[Point]) -> set[str]:
    """Labels of points no other point beats on both x (speed) and y (accuracy)."""
    best: set[str] = set()
    top = -math.inf
    for p in sorted(points, key=lambda p: (-p.x, -p.y)):
        if p.y > top:
            best.add(p.label)
            top = p.y
    return best


Box = tuple[float, float, float, float]


def scatter(points: Sequence[Point], x_title: str, y_title: str, width: int = 680,
            height: int = 400) -> str:
    """Accuracy (y, 0..1) against speed (x) with interval whiskers; Pareto points ringed."""
    pts = [p for p in points if _ok(p.x, p.y)]
    left, right, top, bottom = 64, 24, 16, 48
    x_hi = max([_upper(p) for p in pts] or [1.0]) * 1.12
    xt = nice_ticks(0.0, x_hi)
    x = _Axis(0.0, xt[-1], left, width - right)
    y = _Axis(0.0, 1.0, height - bottom, top)
    body = _x_axis(x, xt, top, height - bottom, x_title)
    body += _y_axis(y, nice_ticks(0, 1, 4), left, width - right, y_title)
    front = pareto(pts)
    # Labels must not cover any marker or whisker, nor leave the plot (tick labels lie outside).
    placed = [b for p in pts for b in _marks(p, x, y)]
    area = (left + 2, top, width - right, height - bottom - 2)
    for p in pts:
        px, py = x(p.x), y(p.y)
        tip = (f"{p.label}: accuracy {p.y:.1%} [{p.y_low:.1%}, {p.y_high:.1%}], "
               f"{x_title} {p.x:.3g}")
        g = [f'<g class="pt"><title>{escape(tip)}</title>']
        if _ok(p.y_low, p.y_high):
            g.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(p.y_low):.1f}" '
                     f'y2="{y(p.y_high):.1f}" stroke="{p.color}" stroke-width="2"/>')
        if p.x_low is not None and p.x_high is not None and _ok(p.x_low, p.x_high):
            g.append(f'<line x1="{x(p.x_low):.1f}" x2="{x(p.x_high):.1f}" y1="{py:.1f}" '
                     f'y2="{py:.1f}" stroke="{p.color}" stroke-width="2"/>')
        if p.label in front:
            g.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="10" fill="none" '
                     f'stroke="#222" stroke-dasharray="3 2"/>')
        g.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="{p.color}" stroke="#fff"/>')
        lx, ly, anchor = _label_spot(px, py, p.label, placed, area)
        g.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" fill="#222">'
                 f'{escape(p.label)}</text></g>')
        body += g
    return _svg(width, height, body, f"{y_title} against {x_title}")


def _marks(p: Point, x: _Axis, y: _Axis) -> list[Box]:
    """Boxes a label must not cover: the marker (with its Pareto ring) and both whiskers."""
    px, py = x(p.x), y(p.y)
    boxes = [(px - 11, py - 11, px + 11, py + 11)]
    if _ok(p.y_low, p.y_high):
        boxes.append((px - 2, y(p.y_high), px + 2, y(p.y_low)))
    if p.x_low is not None and p.x_high is not None and _ok(p.x_low, p.x_high):
        boxes.append((x(p.x_low), py - 2, x(p.x_high), py + 2))
    return boxes


def _overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _label_spot(px: float, py: float, label: str, placed: list[Box],
                area: Box) -> tuple[float, float, str]:
    """Where to print a point's label: the nearby spot inside `area` covering the least of
    the markers, whiskers and labels already placed (the first free one when there is one).

    Boxes are estimated (7 px per character, 13 px tall); good enough to keep a handful
    of model names legible without a layout engine.
    """
    w = 7.0 * len(label)
    spots = [(14, -6), (14, 16), (-14, -6), (-14, 16), (14, -22), (-14, -22), (14, 30),
             (-14, 30), (0, -18), (0, 30), (24, -34), (-24, -34), (24, 42), (-24, 42)]
    best: tuple[float, float, Box, int, int] | None = None
    for order, (dx, dy) in enumerate(spots):
        x0 = px + dx if dx > 0 else (px + dx - w if dx < 0 else px - w / 2)
        box = (x0, py + dy - 11, x0 + w, py + dy + 2)
        outside = max(area[0] - box[0], 0) + max(box[2] - area[2], 0) + \
            max(area[1] - box[1], 0) + max(box[3] - area[3], 0)
        cost = sum(_overlap(box, b) for b in placed) + outside * 50
        if best is None or (cost, order) < (best[0], best[1]):
            best = (cost, order, box, dx, dy)
        if cost == 0:
            break
    assert best is not None
    _, _, box, dx, dy = best
    placed.append(box)
    anchor = "start" if dx > 0 else ("end" if dx < 0 else "middle")
    return (px + dx, py + dy, anchor)


@dataclass(frozen=True)
class Dist:
    """One model's latency samples; `cold` marks first requests (drawn hollow)."""

    label: str
    values: Sequence[float]
    cold: Sequence[bool] = field(default_factory=tuple)
    color: str = PALETTE[0]


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    s = sorted(values)

    def q(f: float) -> float:
        pos = f * (len(s) - 1)
        lo = math.floor(pos)
        return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (pos - lo)

    return q(0.25), q(0.5), q(0.75)


def box_strip(dists: Sequence[Dist], x_title: str, width: int = 680) -> str:
    """Horizontal box plot per model (quartiles, median) over its jittered sample points."""
    rows = [d for d in dists if any(_ok(v) for v in d.values)]
    left, right, top, row_h = _label_margin(d.label for d in rows), 24, 10, 34
    height = top + row_h * max(len(rows), 1) + 44
    vmax = max((v for d in rows for v in d.values if _ok(v)), default=1.0)
    xt = nice_ticks(0.0, vmax * 1.05)
    x = _Axis(0.0, xt[-1], left, width - right)
    body = _x_axis(x, xt, top, height - 44, x_title)
    for i, d in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        vals = [(v, bool(d.cold[j]) if j < len(d.cold) else False)
                for j, v in enumerate(d.values) if _ok(v)]
        warm = [v for v, cold in vals if not cold] or [v for v, _ in vals]
        q1, med, q3 = _quartiles(warm)  # the box is warm latency, like the tables
        tip = f"{d.label}: warm median {med:.3g} s, quartiles {q1:.3g}–{q3:.3g} s, n={len(vals)}"
        body.append(f'<g><title>{escape(tip)}</title><text x="{left - 8}" y="{cy + 4:.1f}" '
                    f'text-anchor="end" fill="#222">{escape(_short(d.label, _LABEL_CHARS))}</text>'
                    f'<rect x="{x(q1):.1f}" y="{cy - 10:.1f}" width="{max(x(q3) - x(q1), 1):.1f}"'
                    f' height="20" fill="{d.color}" fill-opacity="0.18" stroke="{d.color}"/>'
                    f'<line x1="{x(med):.1f}" x2="{x(med):.1f}" y1="{cy - 12:.1f}" '
                    f'y2="{cy + 12:.1f}" stroke="{d.color}" stroke-width="3"/></g>')
        for j, (v, cold) in enumerate(vals):
            jitter = ((j * 7919) % 17 - 8) * 0.9  # deterministic spread, no RNG in reports
            fill = "none" if cold else d.color
            body.append(f'<circle cx="{x(v):.1f}" cy="{cy + jitter:.1f}" r="{3.5 if cold else 2}"'
                        f' fill="{fill}" stroke="{d.color}" fill-opacity="0.55"/>')
    return _svg(width, height, body, f"{x_title} per model")


#: longest row label drawn in full left of a chart (longer ones end in "…", full in the tooltip)
_LABEL_CHARS = 32


def _label_margin(labels: Iterable[str], bold: bool = False) -> float:
    """Left margin that fits the longest row label (7.2 px per char, 8 when bold), ≥ 60 px."""
    longest = max((min(len(s), _LABEL_CHARS) for s in labels), default=0)
    return max(60.0, longest * (8.0 if bold else 7.2) + 16)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Bar:
    """One model's accuracy on one task, with its interval."""

    label: str
    value: float
    low: float
    high: float
    color: str = PALETTE[0]


def grouped_bars(groups: Sequence[tuple[str, Sequence[Bar]]], x_title: str,
                 width: int = 680) -> str:
    """Horizontal bars (0..1) per group (task), one per model, with interval whiskers."""
    left = _label_margin((name for name, _ in groups), bold=True)
    right, top, bar_h, gap = 24, 10, 13, 12
    n_bars = sum(len(b) for _, b in groups)
    height = top + n_bars * bar_h + gap * len(groups) + 44
    x = _Axis(0.0, 1.0, left, width - right)
    body = _x_axis(x, nice_ticks(0, 1, 4), top, height - 44, x_title)
    cy = top
    for name, bars in groups:
        body.append(f'<text x="{left - 8}" y="{cy + len(bars) * bar_h / 2 + 4:.1f}" '
                    f'text-anchor="end" font-weight="600" fill="#222">'
                    f'{escape(_short(name, _LABEL_CHARS))}</text>')
        for b in bars:
            tip = f"{name} · {b.label}: {b.value:.1%} [{b.low:.1%}, {b.high:.1%}]"
            body.append(f'<g><title>{escape(tip)}</title><rect x="{left}" y="{cy + 1:.1f}" '
                        f'width="{max(x(b.value) - left, 0):.1f}" height="{bar_h - 2}" '
                        f'fill="{b.color}"/>')
            if _ok(b.low, b.high):
                body.append(f'<line x1="{x(b.low):.1f}" x2="{x(b.high):.1f}" '
                            f'y1="{cy + bar_h / 2:.1f}" y2="{cy + bar_h / 2:.1f}" '
                            f'stroke="#222" stroke-width="1.5"/>')
            body.append("</g>")
            cy += bar_h
        cy += gap
    return _svg(width, height, body, f"{x_title} per task and model")


def _heat_colour(share: float) -> str:
    """Pale grey (an idle expert stays visible) → deep blue for 0 → 1 (share of row max)."""
    s = min(max(share, 0.0), 1.0)
    r, g, b = (int(f + (t - f) * s) for f, t in ((240, 8), (242, 48), (245, 107)))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(matrix: Sequence[Sequence[float]], row_labels: Sequence[str],
            col_title: str, row_notes: Sequence[str] = ()) -> str:
    """Rows (layers) × columns (experts); colour = share of the row's tokens (row max = dark).

    `row_notes` (e.g. each layer's load-balance CV) are printed right of each row.
    """
    cols = max((len(r) for r in matrix), default=0)
    cell = max(4.0, min(26.0, 560.0 / max(cols, 1)))
    row_h, left, top = 18, 64, 8
    width = left + cols * cell + 90
    height = top + row_h * len(matrix) + 40
    body = []
    for i, (row, label) in enumerate(zip(matrix, row_labels, strict=True)):
        total, peak = float(sum(row)) or 1.0, float(max(row, default=0)) or 1.0
        y = top + i * row_h
        body.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" fill="#222">'
                    f'{escape(label)}</text>')
        for j, v in enumerate(row):
            tip = f"{label}, expert {j}: {v:.0f} tokens ({v / total:.1%} of the layer)"
            body.append(f'<rect x="{left + j * cell:.1f}" y="{y}" width="{cell:.1f}" '
                        f'height="{row_h - 1}" fill="{_heat_colour(v / peak)}">'
                        f'<title>{escape(tip)}</title></rect>')
        if i < len(row_notes):
            body.append(f'<text x="{left + cols * cell + 8:.1f}" y="{y + 13}" fill="{_AXIS}">'
                        f'{escape(row_notes[i])}</text>')
    step = max(1, math.ceil(cols / 16))
    for j in range(0, cols, step):
        body.append(f'<text x="{left + (j + 0.5) * cell:.1f}" y="{height - 24}" '
                    f'text-anchor="middle" fill="{_AXIS}" font-size="10">{j}</text>')
    body.append(f'<text x="{left + cols * cell / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                f'fill="#222">{escape(col_title)}</text>')
    return _svg(width, height, body, f"tokens per {col_title} and layer")
