"""How the runner's nouns become store rows: a `Record` → one `samples` row (the upsert
`SAMPLE_SQL`) and its `router_load` rows, the JSON encoding every JSON column uses, and the
texts `runs_frame` shows for stored columns (name lists, a run's status).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from moebench import liveness
from moebench.scorers import describe_expected
from moebench.types import MODEL_COLUMNS, Record


def utc_now() -> str:
    """Current UTC time as ISO-8601 with seconds precision and a `Z`."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def to_json(value: Any) -> str:
    """JSON as the store keeps it: sorted keys, unicode kept, anything else as str."""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


MODEL_FIELDS = MODEL_COLUMNS[3:-1]  # digest … loads (run_id, model, backend and extra apart)

SAMPLE_SQL = """
INSERT INTO samples (run_id, model, backend, suite, task, case_id, repeat, seq, digest, prompt,
    system, options, output, stripped, answer, score, passed, explanation, expected, latency_s,
    ttft_s, prompt_tokens, output_tokens, decode_s, prompt_eval_s, server_load_s,
    server_total_s, done_reason, timing_source, queue_s, cold, error, attempts, created_at,
    expected_detail, router)
VALUES (:run_id, :model, :backend, :suite, :task, :case_id, :repeat, :seq, :digest, :prompt,
    :system, :options, :output, :stripped, :answer, :score, :passed, :explanation, :expected,
    :latency_s, :ttft_s, :prompt_tokens, :output_tokens, :decode_s, :prompt_eval_s,
    :server_load_s, :server_total_s, :done_reason, :timing_source, :queue_s, :cold, :error,
    :attempts, :created_at, :expected_detail, :router)
ON CONFLICT (run_id, model, suite, task, case_id, repeat) DO UPDATE SET
    seq=excluded.seq, digest=excluded.digest, prompt=excluded.prompt, system=excluded.system,
    options=excluded.options, output=excluded.output, stripped=excluded.stripped,
    answer=excluded.answer, score=excluded.score, passed=excluded.passed,
    explanation=excluded.explanation, expected=excluded.expected, latency_s=excluded.latency_s,
    ttft_s=excluded.ttft_s, prompt_tokens=excluded.prompt_tokens,
    output_tokens=excluded.output_tokens, decode_s=excluded.decode_s,
    prompt_eval_s=excluded.prompt_eval_s, server_load_s=excluded.server_load_s,
    server_total_s=excluded.server_total_s, done_reason=excluded.done_reason,
    timing_source=excluded.timing_source, queue_s=excluded.queue_s, cold=excluded.cold,
    error=excluded.error, attempts=excluded.attempts, created_at=excluded.created_at,
    expected_detail=excluded.expected_detail, router=excluded.router
"""


def sample_row(record: Record, *, seq: int, cold: bool, digest: str | None) -> dict[str, Any]:
    """Flatten a Record into the samples table's columns."""
    req, comp, score = record.request, record.completion, record.score
    row: dict[str, Any] = {
        "run_id": record.run_id, "model": record.model, "backend": record.backend,
        "suite": req.suite, "task": req.task, "case_id": req.case_id, "repeat": req.repeat,
        "seq": seq, "digest": digest, "prompt": req.prompt, "system": req.system,
        "options": to_json(dict(req.options)), "expected": to_json(req.expected),
        "stripped": record.stripped, "error": record.error, "cold": int(cold),
        "created_at": utc_now(), "answer": None, "score": None, "passed": None,
        "explanation": None, "output": None, "attempts": None,
        "expected_detail": describe_expected(req.scorer, req.case),
        "router": to_json(comp.router) if comp is not None and comp.router else None,
    }
    if score is not None:
        row.update(answer=score.answer, score=score.score, passed=int(score.passed),
                   explanation=score.explanation)
    fields = ("latency_s", "ttft_s", "prompt_tokens", "output_tokens", "decode_s",
              "prompt_eval_s", "server_total_s", "done_reason", "timing_source", "queue_s")
    row.update({name: getattr(comp, name, None) for name in fields})
    row["server_load_s"] = comp.load_s if comp else None
    if comp is not None:
        row.update(output=comp.text, attempts=comp.attempts)
    return row


def router_rows(record: Record) -> Iterable[tuple[Any, ...]]:
    """(run, model, suite, task, phase, layer, expert, tokens) for each nonzero router count."""
    router = record.completion.router if record.completion else None
    req = record.request
    for count in count_rows(router):
        yield (record.run_id, record.model, req.suite, req.task, *count)


def count_rows(router: Mapping[str, Any] | None) -> Iterable[tuple[str, int, int, int]]:
    """(phase, layer, expert, tokens) for each nonzero count of `{"prefill": [[...]], ...}`."""
    for phase, layers in (router or {}).items():
        for layer, counts in enumerate(layers or []):
            for expert, tokens in enumerate(counts):
                if tokens:
                    yield phase, layer, expert, int(tokens)


def names_text(value: str | None, name: Callable[[Any], str]) -> str:
    """A JSON list column as `a, b`; a damaged value is shown as-is rather than raising."""
    try:
        return ", ".join(name(item) for item in json.loads(value or "[]"))
    except (TypeError, ValueError, KeyError):
        return f"? ({value!r:.40})"


def status_text(row: dict[str, Any], stored: int) -> str:
    """`completed`, or e.g. `interrupted (process gone) · incomplete: 23/120`."""
    status = liveness.effective_status(row)
    if liveness.is_dead(row):
        status += " (process gone)"
    planned = row.get("planned")
    if planned is not None and planned == planned and stored < int(planned):
        status += f" · incomplete: {stored}/{int(planned)}"
    return status
