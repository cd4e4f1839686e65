"""The visual HTML report: one self-contained, offline file built from stored frames.

`render_html(samples, models, router, runs)` is pure (frames in, HTML string out);
`write_html(store, run_ids, path)` reads the frames from a `Store` and writes the file.
The page embeds its CSS, its small sorting/filtering script and static SVG charts
(`moebench.report.svg_charts`); a Content-Security-Policy forbids any network request. All user
text (model output may contain `<script>`) goes through Jinja2 autoescaping.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from moebench.report import svg_charts as charts
from moebench.report.cells import (  # the fmt_* names stay importable from here
    DASH,
    fmt_mdd,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_points,
    fmt_secs,
    latency_delta_text,
)
from moebench.report.cells import finite as _finite
from moebench.report.compare import (
    compare_runs,
    label_runs,
    multi_run_models,
    paired_matrix,
    power_note,
)
from moebench.report.metrics import (
    load_balance_cv,
    model_table,
    ok_mask,
    passed_bool,
    task_table,
)
from moebench.report.specialisation import specialisation_blocks, specialisation_title
from moebench.types import ModelInfo
from moebench.units import human_bytes

if TYPE_CHECKING:
    import jinja2
    import pandas as pd

ASSETS = Path(__file__).resolve().parent / "assets"
#: characters of each output kept in the page (the store keeps everything)
MAX_OUTPUT_CHARS = 4000


def _cibar(row: dict[str, Any]) -> Markup:
    """A tiny inline bar: accuracy as fill, Wilson interval as a black whisker."""
    acc, low, high = row.get("accuracy"), row.get("accuracy_low"), row.get("accuracy_high")
    if not (_finite(acc) and _finite(low) and _finite(high)):
        return Markup("")
    return Markup(f'<span class="ci"><span class="fill" style="width:{acc * 100:.1f}%"></span>'
                  f'<span class="whisker" style="left:{low * 100:.1f}%;'
                  f'width:{max(high - low, 0) * 100:.1f}%"></span></span>')


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ASSETS), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(pct=fmt_pct, num=fmt_num, secs=fmt_secs, cibar=_cibar,
                       pval=lambda p: fmt_p(p).lstrip("= "),
                       int_or_dash=lambda v: f"{int(v)}" if _finite(v) else DASH)
    return env


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Frame rows as dicts with NaN/NA turned into None (so templates print dashes)."""
    out = []
    for rec in frame.to_dict("records"):
        out.append({k: (None if _missing(v) else v) for k, v in rec.items()})
    return out


def _missing(v: Any) -> bool:
    """None, NaN, pd.NA or NaT (not containers such as the models frame's `extra` dict)."""
    if v is None:
        return True
    if isinstance(v, float):
        return v != v  # NaN; the common cases skip pandas' slower checks (30k cells a report)
    if isinstance(v, (str, int, dict, list, tuple)):
        return False
    import pandas as pd

    return bool(pd.api.types.is_scalar(v) and pd.isna(v))


def render_html(samples: pd.DataFrame, models: pd.DataFrame | None = None,
                router: pd.DataFrame | None = None, runs: pd.DataFrame | None = None,
                *, compare: Sequence[tuple[str, str]] | None = None,
                settings: Sequence[dict[str, Any]] | None = None,
                generation: Sequence[dict[str, Any]] | None = None,
                router_samples: pd.DataFrame | None = None,
                specialisation: Sequence[dict[str, Any]] | None = None,
                title: str = "moebench report") -> str:
    """The whole report as one HTML string.

    Args:
        samples: `Store.samples_frame()` rows (one per model × case × repeat).
        models: `Store.models_frame()` rows (MoE facts, memory, load time), optional.
        router: `Store.router_frame()` rows (engine runs), optional.
        runs: `Store.runs_frame()` rows, shown as the header table, optional.
        compare: (run A, run B) pairs to line up; default: the first run (in sample order)
            against each later one.
        settings: `Store.run()` rows (machine, backend, host, options), shown as the
            hardware and run settings, optional.
        generation: `Store.generation_options()` rows, optional.
        router_samples: `Store.router_frame(by_sample=True)` rows, optional: the expert
            specialisation baseline then shuffles samples rather than tokens.
        specialisation: `specialisation_blocks(router, router_samples)` when the caller
            already has them (the permutation test is the costly part); computed if None.
        title: page title.
    """
    from moebench import __version__

    multi = multi_run_models(samples)
    labelled = label_runs(samples, multi)
    assert labelled is not None
    models_l, router_l = label_runs(models, multi), label_runs(router, multi)
    colors = charts.model_colors(dict.fromkeys(labelled["model"]))
    colors = {m: colors[m] for m in dict.fromkeys(labelled["model"])}  # legend in run order
    per_task, per_model = task_table(labelled, models_l), model_table(labelled, models_l)
    context = {
        "title": title, "version": __version__, "n_samples": len(samples),
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "css": Markup(_asset("report.css")), "js": Markup(_asset("report.js")),
        "legend": [{"label": m, "color": c} for m, c in colors.items()],
        **_runs_context(runs),
        **_summary_context(per_task, per_model, colors),
        **_charts_context(labelled, per_task, per_model, colors),
        "paired": _paired_context(labelled),
        "run_comparisons": _run_comparisons(samples, runs, compare),
        "moe": _moe_rows(models_l, colors),
        "heatmaps": _heatmaps(router_l, _expert_counts(models_l)),
        "specialisation": [{**b, "title": specialisation_title(b)} for b in (
            specialisation if specialisation is not None
            else specialisation_blocks(router, router_samples))],
        **_samples_context(labelled),
        "settings": [settings_row(r) for r in settings or ()],
        "generation": _generation_rows(generation or ()),
    }
    return _environment().get_template("report.html.j2").render(**context)


@cache
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _runs_context(runs: pd.DataFrame | None) -> dict[str, Any]:
    """The header table of runs: whatever simple columns the store gives."""
    if runs is None or runs.empty:
        return {"runs": [], "run_columns": []}
    columns = [c for c in runs.columns
               if runs[c].map(lambda v: isinstance(v, (str, int, float)) or v is None).all()]
    rows = [{c: ("" if r.get(c) is None else r[c]) for c in columns} for r in _records(runs)]
    return {"runs": rows, "run_columns": columns[:10]}


def _summary_context(per_task: pd.DataFrame, per_model: pd.DataFrame,
                     colors: dict[str, str]) -> dict[str, Any]:
    summary = [{**r, "color": colors.get(r["model"], "#999")} for r in _records(per_task)]
    pooled = [{**r, "color": colors.get(r["model"], "#999")} for r in _records(per_model)]
    repeats = per_task["repeats"].max() if len(per_task) else 1
    # Mean score only says something beyond accuracy for partial-credit scorers.
    partial = bool(((per_task["mean_score"] - per_task["accuracy"]).abs() > 1e-9).any())
    return {"summary": summary, "per_model": pooled, "show_score": partial,
            "show_suite": per_task["suite"].nunique() > 1,
            "has_repeats": bool(_finite(float(repeats)) and repeats > 1)}


def _charts_context(samples: pd.DataFrame, per_task: pd.DataFrame, per_model: pd.DataFrame,
                    colors: dict[str, str]) -> dict[str, Any]:
    """The scatter, the latency box plots and the per-task bars, as inline SVG."""
    points, no_speed = [], []
    for r in _records(per_model):
        if r["tokens_per_s"] is None:
            no_speed.append(r["model"])
            continue
        points.append(charts.Point(r["model"], r["tokens_per_s"], r["accuracy"],
                                   _nan(r["accuracy_low"]), _nan(r["accuracy_high"]),
                                   r["tokens_per_s_low"], r["tokens_per_s_high"],
                                   colors[r["model"]]))
    ok = samples[ok_mask(samples)] if len(samples) else samples
    dists = [charts.Dist(m, g["latency_s"].astype(float).tolist(),
                         g["cold"].fillna(False).astype(bool).tolist() if "cold" in g else [],
                         colors[m]) for m, g in ok.groupby("model", sort=False)]
    groups = [(f"{s} / {t}" if per_task["suite"].nunique() > 1 else str(t),
               [charts.Bar(r["model"], _nan(r["accuracy"]), _nan(r["accuracy_low"]),
                           _nan(r["accuracy_high"]), colors[r["model"]])
                for r in _records(g)])
              for (s, t), g in per_task.groupby(["suite", "task"], sort=False)]
    return {
        "scatter_svg": Markup(charts.scatter(points, "decode tok/s (median)", "accuracy")),
        "no_speed": no_speed,
        "latency_svg": Markup(charts.box_strip(dists, "latency (s)")),
        "bars_svg": Markup(charts.grouped_bars(groups, "accuracy")),
    }


def _nan(v: Any) -> float:
    return float(v) if _finite(v) else float("nan")


def _paired_cells(row: dict[str, Any], flip: bool) -> dict[str, Any]:
    """One matrix cell; `flip` shows B − A for the mirrored cell."""
    sign = -1.0 if flip else 1.0
    low, high = (row["diff_high"], row["diff_low"]) if flip else (row["diff_low"], row["diff_high"])
    verdict = row["verdict"]
    winner = {"A better": "row", "B better": "col"}.get(verdict)
    if flip and winner:
        winner = "col" if winner == "row" else "row"
    return {"diff": fmt_points(_scale(row["diff"], sign)), "low": fmt_points(_scale(low, sign)),
            "high": fmt_points(_scale(high, sign)), "p": fmt_p(row["p_value"]), "n": row["n"],
            "a_only": row["b_only" if flip else "a_only"],
            "b_only": row["a_only" if flip else "b_only"], "mdd": fmt_mdd(row.get("mdd")),
            "css": {"row": "better", "col": "worse"}.get(winner or "", "same")}


def _scale(v: Any, sign: float) -> float:
    return v * sign if _finite(v) else float("nan")


def _verdict_row(r: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    """Formatted paired-test fields shared by the per-task and run tables."""
    text = {"A better": f"{a} better", "B better": f"{b} better"}.get(r["verdict"], r["verdict"])
    css = {"A better": "better", "B better": "worse"}.get(r["verdict"], "same")
    return {**r, "diff": fmt_points(r["diff"]), "diff_v": r["diff"],
            "low": fmt_points(r["diff_low"]),
            "high": fmt_points(r["diff_high"]), "p": fmt_p(r["p_value"]),
            "verdict_text": text, "css": css, "mdd_text": fmt_mdd(r.get("mdd")),
            "power_note": power_note(r) if "mdd" in r else ""}


def _paired_context(samples: pd.DataFrame) -> dict[str, Any]:
    """Model × model matrix (pooled) and the per-task pair rows."""
    models = list(dict.fromkeys(samples["model"])) if len(samples) else []
    if len(models) < 2:
        return {"models": models, "cells": {}, "rows": []}
    frame = paired_matrix(samples, by_task=True)
    cells: dict[str, dict[str, Any]] = {a: {} for a in models}
    rows = []
    for r in _records(frame):
        if r["task"] == "all":
            cells[r["model_a"]][r["model_b"]] = _paired_cells(r, flip=False)
            cells[r["model_b"]][r["model_a"]] = _paired_cells(r, flip=True)
        else:
            rows.append(_verdict_row(r, r["model_a"], r["model_b"]))
    for a in models:
        cells[a].setdefault(a, {})
    return {"models": models, "cells": cells, "rows": rows}


def run_pairs(run_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The default run comparisons: the first run (the baseline) against each later one."""
    return [(run_ids[0], r) for r in run_ids[1:]] if run_ids else []


def _run_comparisons(samples: pd.DataFrame, runs: pd.DataFrame | None,
                     compare: Sequence[tuple[str, str]] | None) -> list[dict[str, Any]]:
    """Rows of `compare_runs` for the requested pairs, or first run vs each later run."""
    import pandas as pd

    run_ids = list(dict.fromkeys(samples["run_id"].astype(str))) if len(samples) else []
    pairs = list(compare) if compare is not None else run_pairs(run_ids)
    frames = [compare_runs(samples, a, b) for a, b in pairs]
    frame = pd.concat(frames) if frames else pd.DataFrame()

    return [{**_verdict_row(r, r["run_a"], r["run_b"]),
             "latency_delta_text": latency_delta_text(r.get("latency_delta"),
                                                      r.get("latency_delta_pct"))}
            for r in _records(frame)]


def _human(n: Any) -> str:
    """46700000000 → 46.7B (parameter counts)."""
    if not _finite(n):
        return DASH
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{n:.0f}"


def _moe_rows(models: pd.DataFrame | None, colors: dict[str, str]) -> list[dict[str, Any]]:
    """One row of MoE facts per model (first run's facts when a model repeats)."""
    if models is None or models.empty:
        return []
    rows = []
    for r in _records(models.drop_duplicates("model")):
        info = ModelInfo.from_row(r)
        total, active, size = r.get("total_params"), r.get("active_params"), r.get("size_bytes")
        rows.append({
            "model": r["model"], "backend": r.get("backend") or DASH,
            "family": r.get("family") or DASH, "color": colors.get(r["model"], "#999"),
            "experts": info.experts_line() or DASH, "total": _human(total), "total_v": total,
            "active": _human(active), "active_v": active,
            "active_share": fmt_pct(active / total) if _finite(total) and total
            and _finite(active) else DASH,
            "quantization": r.get("quantization") or DASH, "size": human_bytes(size, DASH),
            "size_v": size, "split": info.memory_split() or DASH, "load": fmt_num(r.get("load_s"), 1),
            "load_v": r.get("load_s"),
            "loads": r.get("loads") if r.get("loads") is not None else DASH,
        })
    return rows


def _expert_counts(models: pd.DataFrame | None) -> dict[str, int]:
    """Model → number of routed experts, where the model facts know it."""
    if models is None or models.empty:
        return {}
    return {str(m): int(e) for m, e in zip(models["model"], models["experts"], strict=True)
            if _finite(e)}


def _heatmaps(router: pd.DataFrame | None,
              experts: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Per model × task: layer × expert token counts (phases summed) and load-balance CV.

    The store keeps nonzero counts only, so the grid is re-filled with zeros up to the
    model's expert count: an idle expert is the imbalance the CV must see.
    """
    if router is None or router.empty:
        return []
    out = []
    for (model, task), g in router.groupby(["model", "task"], sort=False):
        grid = g.pivot_table(index="layer", columns="expert", values="tokens", aggfunc="sum",
                             fill_value=0)
        n_experts = max((experts or {}).get(str(model), 0), int(g["expert"].max()) + 1)
        grid = grid.reindex(index=range(int(g["layer"].max()) + 1),
                            columns=range(n_experts), fill_value=0)
        matrix = grid.to_numpy(dtype=float).tolist()
        cvs = [load_balance_cv(row) for row in matrix]
        notes = [f"CV {fmt_num(cv)}" for cv in cvs]
        labels = [f"layer {int(layer)}" for layer in grid.index]
        finite = [cv for cv in cvs if _finite(cv)]
        out.append({"model": model, "task": task,
                    "cv": fmt_num(sum(finite) / len(finite)) if finite else DASH,
                    "svg": Markup(charts.heatmap(matrix, labels, "expert", notes))})
    return out


_RUN_OPTIONS = ("repeats", "limit", "concurrency", "timeout", "retries", "dtype", "device")


def settings_row(run: dict[str, Any]) -> dict[str, Any]:
    """One run's hardware and settings, as short display strings."""
    machine = run.get("machine") or {}
    options = run.get("options") or {}
    hardware = [machine.get("cpu"), machine.get("cores") and f"{machine['cores']} cores",
                machine.get("ram_bytes") and f"{human_bytes(machine['ram_bytes'])} RAM",
                machine.get("gpu"), machine.get("os"),
                machine.get("python") and f"Python {machine['python']}",
                machine.get("torch") and f"torch {machine['torch']}"]
    shown = [f"{k} {options[k]}" for k in _RUN_OPTIONS if options.get(k) is not None]
    if options.get("compile"):  # shown only when on: most runs decode eagerly
        shown.append("compiled decode")
    if options.get("native"):
        shown.append("native decode")
    return {"run_id": run.get("id") or DASH, "backend": run.get("backend") or DASH,
            "host": run.get("host") or DASH, "server": run.get("server_version") or DASH,
            "version": run.get("moebench_version") or DASH,
            "hardware": " · ".join(str(h) for h in hardware if h) or DASH,
            "options": " · ".join(shown) or DASH}


def _generation_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Distinct generation option sets, each with the suite/task pairs that used it."""
    groups: dict[str, list[str]] = {}
    for r in rows:
        text = " · ".join(f"{k} {v}" for k, v in sorted(r["options"].items())) or "defaults"
        where = f"{r['suite']}/{r['task']}"
        if where not in groups.setdefault(text, []):
            groups[text].append(where)
    return [{"options": k, "tasks": ", ".join(v)} for k, v in groups.items()]


def _samples_context(samples: pd.DataFrame) -> dict[str, Any]:
    """Rows of the per-sample table (outputs capped at MAX_OUTPUT_CHARS)."""
    passed = passed_bool(samples) if len(samples) else []
    rows = []
    for r, ok in zip(_records(samples), passed, strict=True):
        output = str(r.get("output") or "")
        if len(output) > MAX_OUTPUT_CHARS:
            cut = len(output) - MAX_OUTPUT_CHARS
            output = output[:MAX_OUTPUT_CHARS] + f"\n… ({cut} more chars in the store)"
        error = r.get("error")
        verdict = "error" if error else ("pass" if ok else "fail")
        rows.append({
            "model": r["model"], "task": r["task"], "case_id": r["case_id"],
            "repeat": r.get("repeat") or "", "passed_attr": "true" if ok else "false",
            "verdict": verdict, "verdict_css": "pass" if verdict == "pass" else "fail",
            "score": fmt_num(r.get("score")), "score_v": r.get("score"),
            "answer": r.get("answer") or "", "expected": _expected_cell(r),
            "why": r.get("explanation") or "", "prompt": _capped(r.get("prompt")),
            "system": r.get("system") or "",
            "latency": fmt_secs(r.get("latency_s")),
            "latency_v": r.get("latency_s"), "tps": fmt_num(r.get("tokens_per_s"), 1),
            "tps_v": r.get("tokens_per_s"), "error": error or "", "output": output,
            "preview": " ".join(output.split())[:90],
        })
    return {"samples": rows,
            "sample_models": list(dict.fromkeys(samples["model"])) if len(samples) else [],
            "sample_tasks": list(dict.fromkeys(samples["task"])) if len(samples) else []}


def _capped(text: Any) -> str:
    text = str(text or "")
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"\n… ({len(text) - MAX_OUTPUT_CHARS} more chars in the store)"


def _expected_cell(row: dict[str, Any]) -> str:
    """What the scorer expected in words (`6 words × 9 letters`), else the case's value."""
    return str(row.get("expected_detail") or "") or _expected_text(row.get("expected"))


def _expected_text(value: Any) -> str:
    """The store keeps `expected` as JSON text: show strings bare, the rest as compact JSON."""
    if value is None:
        return ""
    try:
        decoded = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)  # frames built by hand may hold plain text
    if decoded is None:
        return ""
    return decoded if isinstance(decoded, str) else json.dumps(decoded, ensure_ascii=False)


def write_html(store: Any, run_ids: Sequence[str], path: str | Path, *,
               compare: Sequence[tuple[str, str]] | None = None,
               specialisation: Sequence[dict[str, Any]] | None = None) -> None:
    """Read the runs' frames from `store` and write the report to `path`.

    With several runs the first named is the baseline each later run is compared with
    (`moebench report BEFORE AFTER --html x.html`), unless `compare` names the pairs.
    """
    run_ids = [str(r) for r in run_ids]
    frames = (store.samples_frame(run_ids), store.models_frame(run_ids),
              store.router_frame(run_ids), store.runs_frame(),
              store.router_frame(run_ids, by_sample=True))
    runs = frames[3]
    if runs is not None and "run_id" in runs:
        runs = runs[runs["run_id"].astype(str).isin([str(r) for r in run_ids])]
    pairs = list(compare) if compare is not None else run_pairs(run_ids)
    html = render_html(frames[0], frames[1], frames[2], runs, compare=pairs,
                       settings=[store.run(r) for r in run_ids],
                       generation=store.generation_options(run_ids), router_samples=frames[4],
                       specialisation=specialisation)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
