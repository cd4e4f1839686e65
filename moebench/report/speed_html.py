"""The `moebench speed --html` report: one self-contained page (no scripts, no network).

Charts of generation and prompt-processing tok/s against prompt length, one line per
model × concurrency, with ± sd whiskers; flagged cells are drawn as hollow markers with a red
`!` (their flags in the tooltip) so an untrustworthy point never passes for a clean one. Then the
sweep table with every flag spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from moebench.report import svg_charts as charts
from moebench.report.speed_terminal import fastest_lines, flag_text
from moebench.speed.cells import Cell

_FLAGGED = "#d62728"
_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #ddd;
text-align:right}th:first-child,td:first-child,th:last-child{text-align:left}td.flags{color:#b35900;
text-align:left}.note{color:#555}.legend span{margin-right:1.2em}"""


def _series(cells: Sequence[Cell]) -> dict[tuple[str, int], list[Cell]]:
    out: dict[tuple[str, int], list[Cell]] = {}
    for cell in cells:
        out.setdefault((cell.model, cell.concurrency), []).append(cell)
    return {k: sorted(v, key=lambda c: c.prompt_tokens) for k, v in out.items()}


def line_chart(cells: Sequence[Cell], measure: str, y_title: str, width: int = 680,
               height: int = 360) -> str:
    """tok/s (`measure`) against prompt tokens, a line per model × concurrency."""
    series = _series(cells)
    points = [(c.prompt_tokens, c.stat(measure)) for c in cells if c.stat(measure).mean]
    if not points:
        return ""
    left, right, top, bottom = 64, 24, 16, 48
    xt = charts.nice_ticks(0.0, max(p for p, _ in points) * 1.05)
    yt = charts.nice_ticks(0.0, max((s.mean or 0) + (s.sd or 0) for _, s in points) * 1.1)
    x = charts._Axis(0.0, xt[-1], left, width - right)
    y = charts._Axis(0.0, yt[-1], height - bottom, top)
    body = charts._x_axis(x, xt, top, height - bottom, "prompt tokens")
    body += charts._y_axis(y, yt, left, width - right, y_title)
    for i, ((model, conc), run) in enumerate(series.items()):
        body += _line(run, measure, x, y, charts.color(i), f"{model} ×{conc}")
    return charts._svg(width, height, body, f"{y_title} against prompt tokens")


def _line(run: list[Cell], measure: str, x: charts._Axis, y: charts._Axis, colour: str,
          label: str) -> list[str]:
    pts = [(c, c.stat(measure)) for c in run if c.stat(measure).mean is not None]
    path = " ".join(f"{x(c.prompt_tokens):.1f},{y(s.mean or 0):.1f}" for c, s in pts)
    out = [f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>']
    for c, s in pts:
        px, py, sd = x(c.prompt_tokens), y(s.mean or 0), s.sd or 0
        flags = flag_text(c)
        tip = f"{label}: {c.prompt_tokens} tokens, {s.mean:.1f} ± {sd:.1f} tok/s" + (
            f" — flagged: {flags}" if flags else "")
        out.append(f'<g><title>{escape(tip)}</title><line x1="{px:.1f}" x2="{px:.1f}" '
                   f'y1="{y((s.mean or 0) - sd):.1f}" y2="{y((s.mean or 0) + sd):.1f}" '
                   f'stroke="{colour}"/>')
        if c.trusted:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{colour}"/></g>')
        else:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="7" fill="#fff" '
                       f'stroke="{colour}" stroke-width="2.5"/><text x="{px + 9:.1f}" '
                       f'y="{py - 8:.1f}" fill="{_FLAGGED}">!</text></g>')
    return out


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(cells: Sequence[Cell]) -> str:
    head = ("model", "prompt", "conc", "pp tok/s", "± sd", "tg tok/s", "± sd", "TTFT s",
            "agg tok/s", "roofline tok/s", "% roofline", "load s", "GPU share", "timing",
            "flags")
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for c in cells:
        pp, tg, ttft = c.stat("pp_tok_s"), c.stat("tg_tok_s"), c.stat("ttft_s")
        share = c.placement.gpu_share
        values = (c.model, str(c.prompt_tokens), str(c.concurrency), _num(pp.mean),
                  _num(pp.sd), _num(tg.mean), _num(tg.sd), _num(ttft.mean, 3),
                  _num(c.aggregate.mean), _num(c.roofline_tok_s, 0), _num(c.roofline_pct, 0),
                  _num(c.load_s, 2), "–" if share is None else f"{share:.0%}",
                  c.timing_source or "–")
        rows.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in values) +
                    f'<td class="flags">{escape(flag_text(c))}</td></tr>')
    return "<table>" + "".join(rows) + "</table>"


def _legend(cells: Sequence[Cell]) -> str:
    items = [f'<span style="color:{charts.color(i)}">● {escape(m)} ×{conc}</span>'
             for i, (m, conc) in enumerate(_series(cells))]
    items.append(f'<span>○<b style="color:{_FLAGGED}">!</b> hollow: flagged, not trusted '
                 '(hover for the flags)</span>')
    return '<p class="legend">' + "".join(items) + "</p>"


def render_speed_html(cells: Sequence[Cell], title: str) -> str:
    """The whole page as a string."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>moebench speed — {escape(title)}</h1><p class='note'>generated {when}. "
             "Roofline = memory bandwidth / active weight bytes per token: an upper bound on "
             "generation tok/s, not a forecast.</p>", _legend(cells),
             "<h2>Generation tok/s</h2>", line_chart(cells, "tg_tok_s", "generation tok/s"),
             "<h2>Prompt processing tok/s</h2>",
             line_chart(cells, "pp_tok_s", "prompt tok/s"), "<h2>All cells</h2>",
             _table(cells)]
    parts += [f"<p>{escape(line)}</p>" for line in fastest_lines(cells)]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_speed_html(path: Path, cells: Sequence[Cell], title: str) -> Path:
    """Write the page; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_speed_html(cells, title), encoding="utf-8")
    return path
