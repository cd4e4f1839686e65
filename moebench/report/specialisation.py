"""The expert-specialisation view of engine runs, for the terminal and the HTML report.

`specialisation_blocks` turns router frames into one plain block per model (per layer: JS
between the tasks, the shuffled-task baseline, p, and each task's most over-used experts);
`specialisation_table` renders a block with rich. The statistics live in `expert_divergence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

TOP_EXPERTS = 3


def specialisation_blocks(router: pd.DataFrame | None, by_sample: pd.DataFrame | None = None,
                          *, permutations: int | None = None) -> list[dict[str, Any]]:
    """One block per model with two or more tasks routed: `model`, `unit`, `permutations`,
    `above` (layers over the baseline's 95th percentile), `n_layers`, and `layers` rows."""
    from moebench.report.expert_divergence import (
        PERMUTATIONS,
        combined_router,
        expert_divergence,
        overused_experts,
    )

    frame = combined_router(router, by_sample)
    if frame is None or frame.empty:
        return []
    n = permutations or PERMUTATIONS
    divergence = expert_divergence(frame, permutations=n)
    top = overused_experts(frame, top=TOP_EXPERTS)
    blocks = []
    for model, rows in divergence.groupby("model", sort=False):
        layers = [{"layer": int(r.layer), "js": r.js_bits, "mean": r.baseline_mean,
                   "p95": r.baseline_p95, "p": r.p_value, "above": bool(r.above_p95),
                   "top": _top_text(top, str(model), int(r.layer))}
                  for r in rows.itertuples(index=False)]
        blocks.append({"model": str(model), "unit": str(rows["unit"].iloc[0]),
                       "permutations": n, "above": sum(r["above"] for r in layers),
                       "n_layers": len(layers), "layers": layers})
    return blocks


def _top_text(top: pd.DataFrame, model: str, layer: int) -> str:
    """`task: e5 ×2.1, e3 ×1.8 · task2: …` for one model and layer: each task's two most
    over-used experts, so that four tasks still fit a terminal line (router_frame has all)."""
    rows = top[(top["model"] == model) & (top["layer"] == layer)]
    parts = []
    for task, g in rows.groupby("task", sort=False):
        g = g.head(2)
        experts = ", ".join(f"e{int(e)} ×{o:.1f}" for e, o in zip(g["expert"], g["overuse"]))
        parts.append(f"{str(task).split('/', 1)[-1]}: {experts}")
    return " · ".join(parts)


def specialisation_title(block: dict[str, Any]) -> str:
    """The one-line reading of a block (also the HTML caption)."""
    return (f"{block['model']}: {block['above']}/{block['n_layers']} layers route the tasks "
            f"more differently than {block['permutations']} shuffles of the task labels over "
            f"{block['unit']}s do (JS above the shuffled 95th percentile)")


def specialisation_table(block: dict[str, Any]) -> Table:
    """Per layer: JS (bits), shuffled mean and 95th percentile, p, most over-used experts."""
    table = Table(title=escape(specialisation_title(block)), title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                  padding=(0, 1, 0, 0))
    for name in ("layer", "JS bits", "shuffled", "p95", "p"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("most over-used experts (load / mean load)", overflow="fold")
    for r in block["layers"]:
        js = f"[bold]{r['js']:.4f}[/]" if r["above"] else f"{r['js']:.4f}"
        table.add_row(str(r["layer"]), js, f"{r['mean']:.4f}", f"{r['p95']:.4f}",
                      f"{r['p']:.3f}", escape(r["top"]))
    return table


def print_specialisation(console: Any, blocks: Sequence[dict[str, Any]]) -> None:
    """Each block's table (nothing when no engine run routed two tasks)."""
    from moebench.report.terminal import print_table

    for block in blocks:
        print_table(console, specialisation_table(block))
