"""Summary and samples frames built from the store, and the CSV files written from them.

`summarize()` turns stored samples into one row per model × suite × task with the columns
`types.SUMMARY_COLUMNS` fixes (then a few more); the figures are `metrics.summary_stats`, the
ones the HTML/Markdown reports' `task_table` starts from. `samples_csv_frame()` shapes the
per-sample CSV. `run` and `report` both write through `write_csv()`, so their files are
byte-identical. Failed requests count as samples that did not pass (accuracy = passed / n)
and are counted in `errors`; latency and TTFT come from warm samples (the first request of a
model is cold).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moebench.errors import MoebenchError
from moebench.report.metrics import ok_mask, quantile, summary_stats, warm_samples
from moebench.types import SAMPLE_COLUMNS, SUMMARY_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from moebench.store import Store

#: Columns after SAMPLE_COLUMNS in the samples CSV: why a case passed or failed.
SAMPLE_CSV_EXTRA = ("prompt", "expected_detail", "explanation")
#: Columns after SUMMARY_COLUMNS (the contract allows more to follow).
SUMMARY_EXTRA = ("ttft_p95_s", "queue_p50_s", "loads", "timing_source", "run_id",
                 "prompt_tokens_p50", "output_tokens_p50", "prefill_tokens_per_s")

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GROUP = ["run_id", "model", "backend", "suite", "task"]


def summarize(samples: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """One row per run × model × suite × task, in run order (columns SUMMARY_COLUMNS + extra)."""
    import pandas as pd

    facts = {(r.run_id, r.model): r for r in models.itertuples(index=False)}
    rows = [_summary_row(key, group, facts.get((key[0], key[1])))
            for key, group in samples.groupby(_GROUP, sort=False)]
    return pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, *SUMMARY_EXTRA])


def _summary_row(key: tuple[Any, ...], g: pd.DataFrame, model: Any) -> dict[str, Any]:
    run_id, name, backend, suite, task = key
    ok = g[ok_mask(g)]
    warm = warm_samples(ok)
    sources = sorted({str(s) for s in ok["timing_source"].dropna()})
    return {
        "model": name, "backend": backend, "suite": suite, "task": task, **summary_stats(g),
        "load_s": getattr(model, "load_s", None),
        "ttft_p95_s": quantile(warm["ttft_s"], 0.95), "queue_p50_s": quantile(warm["queue_s"], 0.5),
        "loads": getattr(model, "loads", None), "timing_source": "+".join(sources) or None,
        "run_id": run_id, **token_stats(ok),
    }


def token_stats(ok: pd.DataFrame) -> dict[str, float]:
    """Median prompt and output tokens, and median prefill speed (as `ollama run --verbose`).

    Prefill tok/s = prompt tokens / server prompt-eval time, per sample, where both are known.
    """
    prefill = ok["prompt_tokens"].astype(float) / ok["prompt_eval_s"].astype(float).where(
        ok["prompt_eval_s"] > 0)
    return {"prompt_tokens_p50": quantile(ok["prompt_tokens"].astype(float), 0.5),
            "output_tokens_p50": quantile(ok["output_tokens"].astype(float), 0.5),
            "prefill_tokens_per_s": quantile(prefill, 0.5)}


def summary_frame(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """The summary of stored runs (what `--csv` writes)."""
    return summarize(store.samples_frame(run_ids), store.models_frame(run_ids))


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
    decoded = json.loads(value)
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
    out.to_csv(path, index=False, lineterminator="\n")
    return path


def write_reports(store: Store, run_ids: Sequence[str], *, csv: Path | None = None,
                  samples_csv: Path | None = None, html: Path | None = None,
                  summary: pd.DataFrame | None = None) -> list[Path]:
    """Write the summary / samples CSVs and the HTML report of stored runs; return the paths.

    `summary`: the runs' summary frame when the caller has already built it.
    """
    written: list[Path] = []
    if csv is not None:
        frame = summary if summary is not None else summary_frame(store, run_ids)
        written.append(write_csv(frame, csv))
    if samples_csv is not None:
        written.append(write_csv(samples_csv_frame(store.samples_frame(run_ids)), samples_csv))
    if html is not None:
        written.append(write_html(store, run_ids, html))
    return written


def write_html(store: Store, run_ids: Sequence[str], path: Path) -> Path:
    """Write the HTML report through `moebench.report.html_report` (absent in older installs)."""
    try:
        from moebench.report import html_report
    except ImportError:
        raise MoebenchError("the HTML report is not available in this install — "
                            "drop --html (CSV and tables still work)") from None
    html_report.write_html(store, list(run_ids), Path(path))
    return Path(path)


@dataclass(frozen=True)
class Report:
    """Stored runs ready to print: their rows, summary and model frames, files written."""

    run_ids: tuple[str, ...]
    runs: tuple[dict[str, Any], ...]
    summary: pd.DataFrame
    models: pd.DataFrame
    db_path: Path
    written: tuple[Path, ...]


def build_report(out: Path, run_ids: Sequence[str] = (), *, csv: Path | None = None,
                 samples_csv: Path | None = None, html: Path | None = None) -> Report:
    """Summaries of stored runs (`last` when none named), writing the files asked for."""
    from moebench.store import Store

    store = Store.open(out)
    try:
        ids = tuple(dict.fromkeys(store.resolve(r) for r in (run_ids or ["last"])))
        summary = summary_frame(store, ids)
        written = write_reports(store, ids, csv=csv, samples_csv=samples_csv, html=html,
                                summary=summary)
        return Report(ids, tuple(store.run(i) for i in ids), summary, store.models_frame(ids),
                      store.path, tuple(written))
    finally:
        store.close()
