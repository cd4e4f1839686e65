"""Summary rows and frames built from the store, and the CSV files written from them.

`summary_rows()` turns stored samples into one row per model × suite × task with the columns
`types.SUMMARY_COLUMNS` fixes (then a few more); the figures are `figures.summary_figures`,
the ones the HTML/Markdown reports' `task_table` starts from (through
`metrics.summary_stats`). It works on plain dicts, so `run` prints its table and writes its
summary CSV without importing pandas; `summarize()` is the same over frames.
`samples_csv_frame()` shapes the per-sample CSV. `run` and `report` both write through
`write_rows_csv()` / `write_csv()`, so their files are byte-identical. Failed requests count
as samples that did not pass (accuracy = passed / n) and are counted in `errors`; latency and
TTFT come from warm samples (the first request of a model is cold).
"""

from __future__ import annotations

import csv
import json
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moebench.errors import MoebenchError
from moebench.report.figures import (
    case_evidence, frame_rows, missing, passed_value, quantile, repeats_are_deterministic, summary_figures,
    token_figures, warm_index,
)
from moebench.types import SAMPLE_COLUMNS, SUMMARY_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from moebench.store import Store

#: Columns after SAMPLE_COLUMNS in the samples CSV: why a case passed or failed.
SAMPLE_CSV_EXTRA = ("prompt", "expected_detail", "explanation")
#: Columns after SUMMARY_COLUMNS (the contract allows more to follow).
SUMMARY_EXTRA = ("ttft_p95_s", "queue_p50_s", "loads", "timing_source", "run_id",
                 "prompt_tokens_p50", "output_tokens_p50", "prefill_tokens_per_s")
#: the summary CSV's columns: the run's status (`incomplete: 23/120`) comes last
SUMMARY_CSV_COLUMNS = (*SUMMARY_COLUMNS, *SUMMARY_EXTRA, "run_status")

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GROUP = ("run_id", "model", "backend", "suite", "task")
_Row = Mapping[str, Any]


def summary_rows(samples: Sequence[_Row], models: Sequence[_Row]) -> list[dict[str, Any]]:
    """One row per run × model × suite × task, in run order (keys SUMMARY_COLUMNS + extra).

    `samples` / `models`: `Store.sample_rows()` / `model_rows()` (or frames' records)."""
    facts = {(m["run_id"], m["model"]): m for m in models}
    groups: dict[tuple[Any, ...], list[_Row]] = {}
    for sample in samples:
        groups.setdefault(tuple(sample[k] for k in _GROUP), []).append(sample)
    return [_summary_row(key, group, facts.get(key[:2])) for key, group in groups.items()]


def summarize(samples: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """`summary_rows` of frames, as a frame (columns SUMMARY_COLUMNS + extra)."""
    import pandas as pd

    rows = summary_rows(frame_rows(samples), frame_rows(models))
    return pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, *SUMMARY_EXTRA])


def _summary_row(key: tuple[Any, ...], g: Sequence[_Row], model: _Row | None) -> dict[str, Any]:
    run_id, name, backend, suite, task = key
    ok = [missing(s["error"]) or s["error"] == "" for s in g]
    cold = [bool(s.get("cold")) for s in g]
    timings = {c: [s[c] for s in g] for c in ("latency_s", "ttft_s", "tokens_per_s")}
    warm = warm_index([i for i, answered in enumerate(ok) if answered], cold)
    sources = sorted({str(g[i]["timing_source"]) for i, answered in enumerate(ok)
                      if answered and not missing(g[i]["timing_source"])})
    model = model or {}
    return {
        "model": name, "backend": backend, "suite": suite, "task": task,
        **summary_figures([passed_value(s["passed"]) for s in g], [s["score"] for s in g], ok,
                          cold, timings,
                          case_evidence(g) if repeats_are_deterministic(g) else None),
        "load_s": model.get("load_s"),
        "ttft_p95_s": quantile((g[i]["ttft_s"] for i in warm), 0.95),
        "queue_p50_s": quantile((g[i]["queue_s"] for i in warm), 0.5),
        "loads": model.get("loads"), "timing_source": "+".join(sources) or None,
        "run_id": run_id,
        **token_figures([s for s, answered in zip(g, ok, strict=True) if answered]),
    }


def summary_frame(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """The summary of stored runs as a frame (the rows `--csv` writes, `run_status` last)."""
    import pandas as pd

    return pd.DataFrame(stored_summary(store, run_ids), columns=list(SUMMARY_CSV_COLUMNS))


def stored_summary(store: Store, run_ids: Sequence[str], models: Sequence[_Row] | None = None,
                   samples: Sequence[_Row] | None = None) -> list[dict[str, Any]]:
    """`summary_rows` of stored runs, each with `run_status`: `completed`, `interrupted`, ...
    or `incomplete: 23/120` when samples are missing (`models` / `samples`: the runs'
    `Store.model_rows` / `sample_rows` when the caller has them)."""
    rows = summary_rows(store.sample_rows(run_ids) if samples is None else samples,
                        store.model_rows(run_ids) if models is None else models)
    notes = {r: run_note(store, r) for r in run_ids}
    for row in rows:
        row["run_status"] = notes.get(row["run_id"])
    return rows


def run_note(store: Store, run_id: str) -> str:
    """`incomplete: 23/120` when samples are missing, else the run's (live) status."""
    return store.incomplete_note(run_id) or str(store.run(run_id)["status"])


def samples_csv_frame(samples: pd.DataFrame) -> pd.DataFrame:
    """The samples CSV: SAMPLE_COLUMNS then SAMPLE_CSV_EXTRA, `passed` as true/false.

    `expected` is the case's value as text; for scorers whose case has none (word_length)
    it is the scorer's description (`6 words × 9 letters`), also in `expected_detail`.
    """
    extra = [c for c in SAMPLE_CSV_EXTRA if c in samples]
    frame = samples[[*SAMPLE_COLUMNS, *extra]].copy()
    frame["passed"] = frame["passed"].fillna(False).astype(bool).map(
        {True: "true", False: "false"})
    frame["expected"] = frame["expected"].map(_expected_text)
    if "expected_detail" in frame:
        frame["expected"] = frame["expected"].where(frame["expected"].notna(),
                                                    frame["expected_detail"])
    return frame


def _expected_text(value: Any) -> str | None:
    """Stored JSON → a readable cell: strings as-is, numbers/lists as compact JSON."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):  # a damaged value is shown as stored, not a traceback
        return str(value)
    if decoded is None or isinstance(decoded, str):
        return decoded
    return json.dumps(decoded, ensure_ascii=False, separators=(", ", ": "))


def escape_cell(value: Any) -> Any:
    """Prefix `'` to text that a spreadsheet would run as a formula (`=cmd()`, `@SUM`, `-x`)."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
        return value  # "-3.5" is a number, not a formula
    except ValueError:
        return "'" + value


def write_csv(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write `frame` as CSV (RFC 4180 quoting, formula cells escaped, floats to 6 places)."""
    from pandas.api import types

    out = frame.copy()
    for column in out.columns:
        if types.is_object_dtype(out[column]) or types.is_string_dtype(out[column]):
            out[column] = out[column].map(escape_cell)
        elif types.is_float_dtype(out[column]):
            out[column] = out[column].round(6)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_lf_records(out.to_csv(index=False, lineterminator="\r\n")),
                    encoding="utf-8", newline="")
    return path


def write_rows_csv(rows: Sequence[_Row], columns: Sequence[str], path: Path | str) -> Path:
    """Write dict rows as CSV the way `write_csv` writes a frame, without pandas: RFC 4180
    quoting, formula cells escaped, floats to 6 places, None/NaN as empty cells."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")  # CRLF: see `_lf_records`
    writer.writerow(columns)
    writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_lf_records(text.getvalue()), encoding="utf-8", newline="")
    return path


def _cell(value: Any) -> Any:
    if missing(value):
        return ""
    if isinstance(value, float):
        return repr(round(float(value), 6)) if math.isfinite(value) else repr(float(value))
    return escape_cell(value)


def _lf_records(text: str) -> str:
    """CSV written with CRLF records (so the csv writer quotes any cell holding a bare `\r`,
    which spreadsheets split rows on) turned back into LF records; quoted cells keep theirs.

    Split on `"`: the even pieces lie outside quoted cells (an escaped `""` splits twice).
    """
    pieces = text.split('"')
    pieces[::2] = [p.replace("\r\n", "\n") for p in pieces[::2]]
    return '"'.join(pieces)


def write_reports(store: Store, run_ids: Sequence[str], *, csv: Path | None = None,
                  samples_csv: Path | None = None, html: Path | None = None,
                  summary: Sequence[_Row] | None = None,
                  specialisation: Sequence[dict[str, Any]] | None = None) -> list[Path]:
    """Write the summary / samples CSVs and the HTML report of stored runs; return the paths.

    `summary` / `specialisation`: the runs' `summary_rows` / `stored_specialisation` when the
    caller has already built them. Only the samples CSV and the HTML report import pandas.
    """
    written: list[Path] = []
    if csv is not None:
        if summary is None:
            summary = stored_summary(store, run_ids)
        written.append(write_rows_csv(summary, SUMMARY_CSV_COLUMNS, csv))
    if samples_csv is not None:
        written.append(write_csv(samples_csv_frame(store.samples_frame(run_ids)), samples_csv))
    if html is not None:
        written.append(write_html(store, run_ids, html, specialisation))
    return written


def write_html(store: Store, run_ids: Sequence[str], path: Path,
               specialisation: Sequence[dict[str, Any]] | None = None) -> Path:
    """Write the HTML report through `moebench.report.html_report` (absent in older installs)."""
    try:
        from moebench.report import html_report
    except ImportError:
        raise MoebenchError("the HTML report is not available in this install — "
                            "drop --html (CSV and tables still work)") from None
    html_report.write_html(store, list(run_ids), Path(path), specialisation=specialisation)
    return Path(path)


def stored_specialisation(store: Store, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Per engine model, how differently its tasks use the experts (empty: no router counts;
    pandas and numpy are imported only when there are some)."""
    if not store.has_router(run_ids):
        return []
    from moebench.report.specialisation import specialisation_blocks

    return specialisation_blocks(store.router_frame(run_ids),
                                 store.router_frame(run_ids, by_sample=True))


@dataclass(frozen=True)
class Report:
    """Stored runs ready to print: their rows, summary and model rows, files written."""

    run_ids: tuple[str, ...]
    runs: tuple[dict[str, Any], ...]
    #: `summary_rows` of the runs (dicts, SUMMARY_COLUMNS + SUMMARY_EXTRA)
    summary: list[dict[str, Any]]
    #: `Store.model_rows` of the runs
    models: list[dict[str, Any]]
    db_path: Path
    written: tuple[Path, ...]
    #: run id → `incomplete: 23/120` for runs with samples missing
    incomplete: dict[str, str] = field(default_factory=dict)
    #: `Store.sample_rows` of the runs (what the summary was built from)
    samples: list[dict[str, Any]] = field(default_factory=list)
    #: `specialisation_blocks` of the engine runs (how differently the tasks use the experts)
    specialisation: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        """`run ID` / `runs A, B`, each incomplete run followed by its note."""
        names = [f"{r} ({self.incomplete[r]})" if r in self.incomplete else r
                 for r in self.run_ids]
        return ("runs " if len(names) > 1 else "run ") + ", ".join(names)


def build_report(out: Path, run_ids: Sequence[str] = (), *, csv: Path | None = None,
                 samples_csv: Path | None = None, html: Path | None = None) -> Report:
    """Summaries of stored runs (`last` when none named), writing the files asked for."""
    from moebench.store import Store

    store = Store.open(out)
    try:
        ids = tuple(dict.fromkeys(store.resolve(r) for r in (run_ids or ["last"])))
        models, samples = store.model_rows(ids), store.sample_rows(ids)
        summary = stored_summary(store, ids, models, samples)
        specialisation = stored_specialisation(store, ids)  # once, for the table and the HTML
        written = write_reports(store, ids, csv=csv, samples_csv=samples_csv, html=html,
                                summary=summary, specialisation=specialisation)
        incomplete = {i: n for i in ids if (n := store.incomplete_note(i))}
        return Report(ids, tuple(store.run(i) for i in ids), summary, models, store.path,
                      tuple(written), incomplete, samples, specialisation)
    finally:
        store.close()
