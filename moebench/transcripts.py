"""Transcripts of stored samples: what was asked, what came back, and why it passed or failed.

`load_transcripts(out, run_id, case=..., failed=...)` reads one run's samples from the store
(no pandas: `moebench show` starts fast) as frozen `Transcript` values, in run order, filtered
by case id (`ID`, `task/ID` or `suite/task/ID`) and/or to the failed ones. Rendering lives in
`moebench.report.transcript`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moebench.errors import RunNotFound


@dataclass(frozen=True)
class Transcript:
    """One stored sample with everything needed to see why it scored what it did."""

    run_id: str
    model: str
    suite: str
    task: str
    case_id: str
    repeat: int
    prompt: str
    system: str | None
    output: str | None
    #: output after removing a <think> trace (what the scorer read)
    stripped: str | None
    answer: str | None
    score: float | None
    passed: bool | None
    explanation: str | None
    #: the case's `expected` value as text ('' when the case has none)
    expected: str
    #: what the scorer expected, in words ("6 words × 9 letters")
    expected_detail: str
    latency_s: float | None
    ttft_s: float | None
    prompt_tokens: int | None
    output_tokens: int | None
    decode_s: float | None
    prompt_eval_s: float | None
    error: str | None

    @property
    def verdict(self) -> str:
        """`pass`, `fail` or `error`."""
        if self.error:
            return "error"
        return "pass" if self.passed else "fail"

    @property
    def key(self) -> str:
        """`suite/task/case_id` (the suite is left out when it names the task)."""
        head = self.task if self.task == self.suite else f"{self.suite}/{self.task}"
        return f"{head}/{self.case_id}"

    def matches(self, case: str) -> bool:
        """True when `case` is this sample's `ID`, `task/ID` or `suite/task/ID`."""
        parts = tuple(case.strip("/").split("/"))
        full = (self.suite, self.task, self.case_id)
        return 1 <= len(parts) <= 3 and full[-len(parts):] == parts


def _expected_text(value: Any) -> str:
    if value is None:
        return ""
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return str(value)
    if decoded is None:
        return ""
    return decoded if isinstance(decoded, str) else json.dumps(decoded, ensure_ascii=False)


def _transcript(row: dict[str, Any]) -> Transcript:
    passed = None if row["passed"] is None else bool(row["passed"])
    expected = _expected_text(row["expected"])
    return Transcript(
        run_id=row["run_id"], model=row["model"], suite=row["suite"], task=row["task"],
        case_id=row["case_id"], repeat=int(row["repeat"]), prompt=row["prompt"] or "",
        system=row["system"], output=row["output"], stripped=row["stripped"],
        answer=row["answer"], score=row["score"], passed=passed,
        explanation=row["explanation"], expected=expected,
        expected_detail=row["expected_detail"] or expected, latency_s=row["latency_s"],
        ttft_s=row["ttft_s"], prompt_tokens=row["prompt_tokens"],
        output_tokens=row["output_tokens"], decode_s=row["decode_s"],
        prompt_eval_s=row["prompt_eval_s"], error=row["error"])


def select(transcripts: list[Transcript], run_id: str, *, case: str | None = None,
           failed: bool = False) -> list[Transcript]:
    """The transcripts of `case` (any model, any repeat) and/or the failed ones.

    Raises:
        RunNotFound: no sample of the run has that case id (the message shows some ids).
    """
    chosen = [t for t in transcripts if case is None or t.matches(case)]
    if case is not None and not chosen:
        ids = ", ".join(dict.fromkeys(t.key for t in transcripts[:200]))
        some = ids if len(ids) <= 160 else ids[:157] + "…"
        raise RunNotFound(f"run {run_id} has no case '{case}' — give ID, task/ID or "
                          f"suite/task/ID, e.g. one of: {some or 'none (the run is empty)'}")
    return [t for t in chosen if not failed or t.verdict != "pass"]


def load_transcripts(out: Path | str, run_id: str, *, case: str | None = None,
                     failed: bool = False) -> tuple[str, list[Transcript]]:
    """(resolved run id, its transcripts in run order, filtered as `select` does)."""
    from moebench.store import Store

    store = Store.open(out)
    try:
        resolved = store.resolve(run_id)
        rows = store.transcript_rows(resolved)
    finally:
        store.close()
    return resolved, select([_transcript(r) for r in rows], resolved, case=case, failed=failed)
