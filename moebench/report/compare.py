"""Paired comparisons on the same cases: model vs model in a run, and one model across runs.

Two systems are compared only on the cases both answered (same suite, task and case id);
each case contributes its pass rate over repeats (0/1 with one repeat), so repeats never
inflate the sample size. The statistics themselves live in `moebench.report.metrics.paired_test`
(paired bootstrap interval of the accuracy difference, exact McNemar p-value).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moebench.errors import MoebenchError, RunNotFound
from moebench.report.figures import passed_value
from moebench.report.metrics import (
    PairedResult,
    cases_needed,
    min_detectable_difference,
    ok_mask,
    paired_test,
    passed_bool,
    quantile,
    warm_samples,
)

if TYPE_CHECKING:
    import pandas as pd

CASE_KEY = ["suite", "task", "case_id"]


class NoCommonCases(MoebenchError):
    """Two runs have no (model, case) in common, so a paired comparison means nothing."""
#: columns of every comparison frame, after its identifying columns
PAIRED_COLUMNS = ["n", "acc_a", "acc_b", "diff", "diff_low", "diff_high", "a_only", "b_only",
                  "p_value", "verdict", "mdd", "n_needed"]
#: latency columns `compare_runs` adds after PAIRED_COLUMNS (warm p50 seconds, B − A)
LATENCY_COLUMNS = ["latency_a", "latency_b", "latency_delta", "latency_delta_pct"]


def case_rates(samples: pd.DataFrame, unit: str = "model") -> pd.DataFrame:
    """Per-case pass rate: index (suite, task, case_id), one column per value of `unit`."""
    frame = samples.assign(_ok=passed_bool(samples).astype(float))
    rates = frame.pivot_table(index=CASE_KEY, columns=unit, values="_ok", aggfunc="mean",
                              sort=False, observed=True)
    return rates


def _pair(rates: pd.DataFrame, a: str, b: str) -> dict[str, object]:
    """The paired test of columns a and b on the cases both have, with its power figures."""
    both = rates[[a, b]].dropna()
    return _paired(both[a].to_numpy(), both[b].to_numpy())


def _paired(xa: Sequence[float], xb: Sequence[float]) -> dict[str, object]:
    """`paired_test` of aligned per-case rates, with its power figures.

    `mdd`: the minimum detectable difference at 80% power for this n (from the discordant
    rate); `n_needed`: about how many cases would detect the observed gap.
    """
    result: PairedResult = paired_test(xa, xb)
    discordant = (result.a_only + result.b_only) / result.n if result.n else 0.0
    return {**asdict(result), "mdd": min_detectable_difference(result.n, discordant),
            "n_needed": cases_needed(result.diff, discordant)}


def paired_matrix(samples: pd.DataFrame, by_task: bool = False) -> pd.DataFrame:
    """Every pair of models in `samples` (listed order), A vs B on their common cases.

    One row per pair (model_a before model_b in order of appearance), all tasks pooled;
    with `by_task` one row per pair per suite × task as well (task "all" is the pooled row).
    """
    import pandas as pd

    rows = []
    groups: list[tuple[str, str, pd.DataFrame]] = [("", "all", samples)]
    if by_task:
        groups += [(str(s), str(t), g) for (s, t), g in
                   samples.groupby(["suite", "task"], sort=False, dropna=False)]
    models = list(dict.fromkeys(samples["model"]))
    for suite, task, group in groups:
        rates = case_rates(group)
        for a, b in combinations(models, 2):
            if a in rates and b in rates:
                rows.append({"suite": suite, "task": task, "model_a": a, "model_b": b,
                             **_pair(rates, a, b)})
    return pd.DataFrame(rows, columns=["suite", "task", "model_a", "model_b", *PAIRED_COLUMNS])


def compare_runs(samples: pd.DataFrame, run_a: str, run_b: str) -> pd.DataFrame:
    """Each model present in both runs: run A vs run B on common cases, pooled and per task.

    Answers "did the quantization change / new server version / new prompt make this model
    better or worse?". Rows: model, suite, task ("all" = pooled), then `PAIRED_COLUMNS`.

    Raises:
        RunNotFound: a run id has no samples in `samples`.
    """
    import pandas as pd

    if run_a == run_b:
        raise MoebenchError(f"--compare needs two different runs, got '{run_a}' twice")
    present = set(samples["run_id"].astype(str))
    for run in (run_a, run_b):
        if run not in present:
            raise RunNotFound(f"run '{run}' has no samples — list runs with: moebench report")
    rows = []
    runs = samples["run_id"].astype(str)
    for label, model_a, model_b in run_model_pairs(samples, run_a, run_b):
        g = samples[((runs == run_a) & (samples["model"] == model_a))
                    | ((runs == run_b) & (samples["model"] == model_b))]
        groups = [("", "all", g), *(((str(s), str(t), tg) for (s, t), tg in
                                     g.groupby(["suite", "task"], sort=False)))]
        for suite, task, tg in groups:
            rates = case_rates(tg, unit="run_id")
            if run_a in rates and run_b in rates:
                rows.append({"model": label, "suite": suite, "task": task,
                             "run_a": run_a, "run_b": run_b,
                             **_pair(rates, run_a, run_b),
                             **latency_delta(tg, run_a, run_b)})
    frame = pd.DataFrame(rows, columns=["model", "suite", "task", "run_a", "run_b",
                                        *PAIRED_COLUMNS, *LATENCY_COLUMNS])
    if frame.empty or int(frame["n"].max()) == 0:
        raise NoCommonCases(f"runs {run_a} and {run_b} share no cases (same model, suite, task "
                            "and case id): nothing to compare — pick runs of the same suites")
    return frame


#: the `@host:port` a multi-host run appends to a model served by several of its hosts
_HOST_SUFFIX = re.compile(r"@[^@\s]+:\d+$")


def base_model(name: str) -> str:
    """`mixtral:8x7b@10.0.0.2:11434` → `mixtral:8x7b` (names without a host suffix unchanged)."""
    return _HOST_SUFFIX.sub("", name)


def run_model_pairs(samples: pd.DataFrame, run_a: str, run_b: str) -> list[tuple[str, str, str]]:
    """(label, model in A, model in B) to compare: equal names first, then host-qualified ones.

    A model one run served from several hosts (`mixtral@hostA:11434`, `mixtral@hostB:11434`)
    and the other run from one (`mixtral`) is the same model: each host's copy is paired with
    the plain one, labelled `mixtral@hostA:11434 ↔ mixtral`, so a run on a farm of machines
    lines up with a run on one machine.
    """
    runs = samples["run_id"].astype(str)
    in_a = list(dict.fromkeys(samples.loc[runs == run_a, "model"].astype(str)))
    in_b = list(dict.fromkeys(samples.loc[runs == run_b, "model"].astype(str)))
    pairs = [(m, m, m) for m in in_a if m in in_b]
    rest_a = [m for m in in_a if m not in in_b]
    rest_b = [m for m in in_b if m not in in_a]
    for ma in rest_a:
        for mb in rest_b:
            if base_model(ma) == base_model(mb):
                pairs.append((f"{ma} ↔ {mb}", ma, mb))
    return pairs


def latency_delta(samples: pd.DataFrame, run_a: str, run_b: str) -> dict[str, float]:
    """Warm median latency of each run's answered samples, and B − A (seconds and share of A)."""
    ok = samples[ok_mask(samples)]
    runs = ok["run_id"].astype(str)
    a = quantile(warm_samples(ok[runs == run_a])["latency_s"], 0.5)
    b = quantile(warm_samples(ok[runs == run_b])["latency_s"], 0.5)
    delta = b - a
    return {"latency_a": a, "latency_b": b, "latency_delta": delta,
            "latency_delta_pct": delta / a if a and a == a else float("nan")}


def multi_run_models(samples: pd.DataFrame) -> set[str]:
    """Models that appear in more than one run of `samples`."""
    if samples.empty:
        return set()
    spans = samples.groupby("model")["run_id"].nunique()
    return {str(m) for m in spans[spans > 1].index}


def label_runs(frame: pd.DataFrame | None, multi: set[str] | None = None) -> pd.DataFrame | None:
    """`frame` (samples, models or router rows) with run-qualified model names where needed.

    `mixtral:8x7b` in runs r1 and r2 becomes `mixtral:8x7b @ r1` and `... @ r2`, so tables
    and charts keep them apart; a model seen in one run keeps its name. `multi` defaults
    to the models of `frame` itself that span several runs (pass the samples' set when
    labelling the models or router frame of the same report).
    """
    if frame is None or frame.empty:
        return frame
    multi = multi_run_models(frame) if multi is None else multi
    if not multi:
        return frame
    label = [f"{m} @ {r}" if m in multi else m
             for m, r in zip(frame["model"], frame["run_id"], strict=True)]
    return frame.assign(model=label)


def compare_stored_runs(out: Path | str, run_a: str, run_b: str) -> pd.DataFrame:
    """`compare_runs` on two runs of the store in `out` (ids or `last`)."""
    from moebench.store import Store

    store = Store.open(out)
    try:
        a, b = store.resolve(run_a), store.resolve(run_b)
        return compare_runs(store.samples_frame([a, b]), a, b)
    finally:
        store.close()


def power_note(row: Mapping[str, Any]) -> str:
    """What the MDD says about a pair row: nothing when significant, else whether n was too
    small and about how many cases would detect the observed gap."""
    if row["verdict"] in ("A better", "B better"):
        return ""
    mdd, diff, needed = row["mdd"], row["diff"], row["n_needed"]
    if not _finite(mdd):
        if row["a_only"] + row["b_only"] == 0:
            return "identical verdicts on every case"
        return "n too small for any gap at 80% power"
    if diff == 0:
        return f"no gap observed; n detects ≥ {mdd * 100:.0f} pts"
    if abs(diff) < mdd:
        many = f"~{needed:,.0f}" if _finite(needed) else "many"
        return f"n too small: {many} cases would detect this gap"
    return "gap ≥ MDD but not significant (the MDD is approximate)"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


_Row = Mapping[str, Any]
#: the columns of `model_pairs`
PAIR_COLUMNS = ["suite", "task", "model_a", "model_b", *PAIRED_COLUMNS]


def _task_groups(samples: Sequence[_Row]) -> list[tuple[str, str, Sequence[_Row]]]:
    """(suite, task, samples) per task, then the pooled ("", "all") group when several."""
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in samples:
        groups.setdefault((str(row["suite"]), str(row["task"])), []).append(row)
    found: list[tuple[str, str, Sequence[_Row]]] = [(s, t, g) for (s, t), g in groups.items()]
    return found + ([("", "all", samples)] if len(found) > 1 else [])


def _row_rates(samples: Sequence[_Row]) -> dict[tuple[Any, ...], dict[str, float]]:
    """`case_rates` of dict rows: case (first-seen order) → model (first-seen order) → pass
    rate over its repeats."""
    tallies: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for row in samples:
        key = (row["suite"], row["task"], row["case_id"])
        tallies.setdefault(key, {}).setdefault(str(row["model"]), []).append(
            float(passed_value(row["passed"])))
    return {case: {m: sum(v) / len(v) for m, v in by.items()} for case, by in tallies.items()}


def model_pairs(samples: pd.DataFrame, pairs: str = "best") -> pd.DataFrame:
    """`model_pair_rows` of a samples frame, as a frame (columns `PAIR_COLUMNS`)."""
    import pandas as pd

    from moebench.report.figures import frame_rows

    return pd.DataFrame(model_pair_rows(frame_rows(samples), pairs), columns=PAIR_COLUMNS)


def model_pair_rows(samples: Sequence[_Row], pairs: str = "best") -> list[dict[str, Any]]:
    """Model vs model on common cases, per task (and pooled): `PAIRED_COLUMNS` per pair.

    `samples`: `Store.sample_rows()` dicts (no pandas). `pairs="best"`: per task, the most
    accurate model (A) against each other one (B); `"all"`: every pair in order of
    appearance. Empty with fewer than two models.
    """
    import numpy as np

    if pairs not in ("best", "all"):
        raise MoebenchError(f"--pairs must be 'best' or 'all', got '{pairs}'")
    rows = []
    for suite, task, group in _task_groups(samples):
        rates = _row_rates(group)
        models = list(dict.fromkeys(str(r["model"]) for r in group))
        if pairs == "best":
            means = {m: float(np.mean([r[m] for r in rates.values() if m in r]))
                     for m in models}
            best = max(models, key=lambda m: (means[m], -models.index(m)), default=None)
            chosen = [(best, m) for m in models if m != best]
        else:
            chosen = list(combinations(models, 2))
        for a, b in chosen:
            common = [(r[a], r[b]) for r in rates.values() if a in r and b in r]
            xa, xb = ([x for x, _ in common], [y for _, y in common])
            rows.append({"suite": suite, "task": task, "model_a": a, "model_b": b,
                         **_paired(xa, xb)})
    return rows
