"""`moebench rescore`: re-apply the current scorers to a run's stored outputs, no model calls.

Suites are reloaded from the paths the run recorded, so a fixed scorer or a corrected
`expected` value takes effect; a suite file whose content changed since the run is named in
the result. Samples whose case no longer exists are left as they were and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moebench.errors import SuiteError
from moebench.scorers import describe_expected, score_stripped, strip_think
from moebench.store import Store
from moebench.types import Score


@dataclass(frozen=True)
class VerdictChange:
    """One sample whose verdict changed."""

    model: str
    suite: str
    task: str
    case_id: str
    repeat: int
    before: bool | None
    after: bool
    answer: str


@dataclass(frozen=True)
class RescoreResult:
    """What `rescore` did to a run."""

    run_id: str
    checked: int
    changed: tuple[VerdictChange, ...]
    #: samples left untouched because their case is no longer in the suite
    missing: int
    #: suite names whose file changed since the run
    changed_suites: tuple[str, ...]


def rescore(out: Path, run_id: str) -> RescoreResult:
    """Re-score every stored (non-error) output of run `run_id` in store `out`."""
    store = Store.open(out)
    try:
        run = store.run(run_id)
        cases, changed_suites = _cases(run)
        updates, changes, missing = [], [], 0
        memo: dict[Any, Any] = {}  # per case: its columns; per (case, answer): its Score
        for row in store.outputs(run["id"]):
            case = cases.get((row["suite"], row["task"], row["case_id"]))
            if case is None:
                missing += 1
                continue
            update, change = _rescore_row(row, case, memo)
            updates.append(update)
            if change is not None:
                changes.append(change)
        store.update_verdicts(updates)
        return RescoreResult(run["id"], len(updates), tuple(changes), missing,
                             tuple(changed_suites))
    finally:
        store.close()


def _case_columns(case: Any) -> dict[str, str]:
    """The `expected` (JSON) and `expected_detail` columns of a case."""
    return {"expected_detail": describe_expected(case.scorer, case.fields),
            "expected": json.dumps(case.fields.get("expected"), sort_keys=True, default=str,
                                   ensure_ascii=False)}


def _cases(run: dict[str, Any]) -> tuple[dict[tuple[str, str, str], Any], list[str]]:
    """(suite, task, case id) → case, from the run's suite files; and the changed suites."""
    from moebench.suites.loader import load_suites

    cases: dict[tuple[str, str, str], Any] = {}
    changed: list[str] = []
    for entry in run["suites"]:
        path = Path(entry["path"])
        if not path.exists():
            raise SuiteError(f"{path}: suite file of run {run['id']} is gone — restore it "
                             "to rescore this run")
        for suite in load_suites([path]):
            if suite.sha256 != entry["sha256"]:
                changed.append(suite.name)
            for task in suite.tasks:
                for case in task.cases:
                    cases[(suite.name, task.name, case.id)] = case
    return cases, changed


def _rescore_row(row: dict[str, Any], case: Any,
                 memo: dict[Any, Any]) -> tuple[dict[str, Any], VerdictChange | None]:
    stripped = strip_think(row["output"] or "")
    key = (id(case), stripped)  # repeats (and models) that answered alike score alike
    score: Score | None = memo.get(key)
    if score is None:
        score = memo[key] = score_stripped(case.scorer, stripped, case.fields)
    columns = memo.get(id(case))
    if columns is None:
        columns = memo[id(case)] = _case_columns(case)
    update = {"rowid": row["rowid"], "stripped": stripped, "answer": score.answer,
              "score": score.score, "passed": int(score.passed),
              "explanation": score.explanation, **columns}
    before = None if row["passed"] is None else bool(row["passed"])
    if before == score.passed:
        return update, None
    return update, VerdictChange(row["model"], row["suite"], row["task"], row["case_id"],
                                 int(row["repeat"]), before, score.passed, score.answer)
