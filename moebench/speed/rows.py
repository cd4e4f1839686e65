"""Cells as flat rows: the store's `speed_results` table, the CSV (contract §6), and back.

`SPEED_CSV_COLUMNS` starts with the contract's columns in its order; the extras follow
(`more may follow`). Booleans are written `true` / `false`; the per-request samples and the
rounds ride along in the store as JSON so `moebench report` can redraw a stored sweep.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from moebench.speed.cells import FLAGS, Cell, Placement, Round, Sample

#: contract §6, in order
CONTRACT_COLUMNS = (
    "model", "backend", "prompt_tokens", "gen_tokens", "concurrency", "repeats", "pp_tok_s",
    "pp_tok_s_sd", "tg_tok_s", "tg_tok_s_sd", "ttft_s", "load_s", "gpu_share",
    "partial_offload", "other_models_resident", "early_stop", "roofline_tok_s", "roofline_pct",
    "run_id",
)
EXTRA_COLUMNS = (
    "pp_tok_s_median", "tg_tok_s_median", "ttft_s_sd", "ttft_s_median", "agg_tok_s",
    "agg_tok_s_sd", "high_variance", "cpu_only", "prompt_tokens_measured",
    "gen_tokens_measured", "early_stops", "errors", "timing_source", "resident_models",
    "notes",
)
SPEED_CSV_COLUMNS = CONTRACT_COLUMNS + EXTRA_COLUMNS
_BOOLS = set(FLAGS)


def cell_row(cell: Cell, run_id: str) -> dict[str, Any]:
    """The CSV / store columns of one cell (booleans as bool, lists joined)."""
    pp, tg, ttft, agg = (cell.stat("pp_tok_s"), cell.stat("tg_tok_s"), cell.stat("ttft_s"),
                         cell.aggregate)
    row: dict[str, Any] = {
        "model": cell.model, "backend": cell.backend, "prompt_tokens": cell.prompt_tokens,
        "gen_tokens": cell.gen_tokens, "concurrency": cell.concurrency,
        "repeats": cell.repeats, "pp_tok_s": pp.mean, "pp_tok_s_sd": pp.sd,
        "tg_tok_s": tg.mean, "tg_tok_s_sd": tg.sd, "ttft_s": ttft.mean, "load_s": cell.load_s,
        "gpu_share": cell.placement.gpu_share, **cell.flags(),
        "roofline_tok_s": cell.roofline_tok_s, "roofline_pct": cell.roofline_pct,
        "run_id": run_id, "pp_tok_s_median": pp.median, "tg_tok_s_median": tg.median,
        "ttft_s_sd": ttft.sd, "ttft_s_median": ttft.median, "agg_tok_s": agg.mean,
        "agg_tok_s_sd": agg.sd, "prompt_tokens_measured": cell.stat("prompt_tokens").mean,
        "gen_tokens_measured": cell.stat("output_tokens").mean,
        "early_stops": cell.early_stops, "errors": cell.errors,
        "timing_source": cell.timing_source,
        "resident_models": " ".join(cell.placement.other_models),
        "notes": "; ".join(cell.notes),
    }
    return row


def store_row(cell: Cell, run_id: str) -> dict[str, Any]:
    """`cell_row` plus what the store keeps to rebuild the cell (samples, rounds, placement)."""
    row = cell_row(cell, run_id)
    row.update({k: int(row[k]) for k in _BOOLS})
    row["detail"] = json.dumps({
        "samples": [s.as_dict() for s in cell.samples],
        "rounds": [[r.wall_s, r.output_tokens] for r in cell.rounds],
        "server_placed": cell.placement.server_placed,
        "other_models": list(cell.placement.other_models), "notes": list(cell.notes)})
    return row


def cell_from_row(row: Mapping[str, Any]) -> Cell:
    """Rebuild a stored cell (the inverse of `store_row`)."""
    detail = json.loads(row["detail"] or "{}")
    share = row.get("gpu_share")
    placement = Placement(None if share is None else float(share),
                          bool(detail.get("server_placed")), tuple(detail.get("other_models", ())))
    return Cell(
        model=row["model"], backend=row["backend"], prompt_tokens=int(row["prompt_tokens"]),
        gen_tokens=int(row["gen_tokens"]), concurrency=int(row["concurrency"]),
        repeats=int(row["repeats"]), samples=tuple(Sample(**s) for s in detail["samples"]),
        rounds=tuple(Round(float(w), int(n)) for w, n in detail["rounds"]),
        placement=placement, load_s=row.get("load_s"), roofline_tok_s=row.get("roofline_tok_s"),
        notes=tuple(detail.get("notes", ())))


def write_csv(path: Path, cells: Iterable[tuple[Cell, str]]) -> Path:
    """One row per (cell, run id), columns SPEED_CSV_COLUMNS, booleans `true`/`false`."""
    import pandas as pd

    from moebench.report.summary import write_csv as write_frame

    frame = pd.DataFrame([cell_row(c, run_id) for c, run_id in cells],
                         columns=list(SPEED_CSV_COLUMNS))
    for column in _BOOLS:
        frame[column] = frame[column].map({True: "true", False: "false"})
    return write_frame(frame, path)


def csv_rows(path: Path) -> Sequence[dict[str, str]]:
    """Read a speed CSV back (for tests and scripts)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
