"""The `judge` scorer: a judge model grades the answer against a rubric (model-graded).

`scorer: {type: judge, model: NAME, backend: ollama, rubric: "...", host: URL}` asks NAME,
through any moebench backend, for a structured verdict — Ollama's `format` JSON schema, the
OpenAI `response_format` json_schema — and parses it strictly (`Verdict`, no extra keys):
an unparsable reply raises `ScorerFailed`, which the runner stores as an error row, never a
pass. Judge calls are deterministic requests (temperature 0, fixed seed).

The judge's model name, digest, prompt and raw reply are stored with the sample (the
explanation's second line, JSON). Verdicts are cached on disk by (judge digest, judge
prompt) — the prompt holds the rubric, the case and the output — so `rescore` and reruns
do not pay twice. Cache file: $MOEBENCH_JUDGE_CACHE, else ~/.cache/moebench/judge.sqlite.

Timing: `DEFERRED` scorers are not run inside the timed request loop; the runner scores
them after the judged model's requests are done and it is unloaded, so a judge call never
shares the server (or its memory) with a request being timed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moebench.errors import MoebenchError, ScorerFailed
from moebench.scorers import describes, scorer
from moebench.types import ModelInfo, Request, Score, ScorerSpec

#: scorers the runner applies after the judged model's timed requests
DEFERRED = frozenset({"judge"})
SEED = 0
PROMPT = """You are grading one answer for a benchmark. Apply the rubric strictly.

Rubric: {rubric}

Task fields:
{fields}

Answer to grade:
<<<
{output}
>>>

Reply with JSON only: {{"verdict": "pass" or "fail", "score": a number from 0 to 1, \
"reason": one short sentence}}."""


class Verdict(BaseModel):
    """What the judge must answer; anything else is a scorer error."""

    model_config = ConfigDict(extra="forbid", strict=True)

    verdict: Literal["pass", "fail"]
    score: float = Field(ge=0, le=1)
    reason: str


SCHEMA = Verdict.model_json_schema()
_LOCK = threading.Lock()


def judge_prompt(rubric: str, case: Mapping[str, Any], output: str) -> str:
    """The prompt the judge sees: rubric, the case's fields (not its id), the answer."""
    fields = "\n".join(f"- {k}: {json.dumps(v, ensure_ascii=False, default=str)}"
                       for k, v in case.items() if k != "id") or "- (none)"
    return PROMPT.format(rubric=rubric.strip(), fields=fields, output=output)


def parse_verdict(raw: str) -> Verdict:
    """The judge's reply as a Verdict; raises ScorerFailed for anything else."""
    try:
        return Verdict.model_validate_json(raw.strip())
    except ValidationError as error:
        first = error.errors()[0]
        raise ScorerFailed(f"judge reply is not a verdict ({first['msg']}): {raw[:80]!r}") from None


def structured_options(backend: str) -> dict[str, Any]:
    """Deterministic generation, with the backend's structured-output field."""
    options: dict[str, Any] = {"temperature": 0, "seed": SEED, "max_tokens": 256}
    if backend == "ollama":
        options["format"] = SCHEMA
    elif backend == "openai":
        options["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "verdict", "schema": SCHEMA, "strict": True}}
    return options


@cache
def _judge_backend(backend: str, host: str | None, model: str) -> tuple[Any, ModelInfo]:
    """One backend (and the judge's ModelInfo) per judge for the whole process."""
    from moebench.backends import BackendConfig, create_backend

    created = create_backend(backend, BackendConfig(host=host))
    return created, created.prepare(model)


def cache_path() -> Path:
    """Where verdicts are cached ($MOEBENCH_JUDGE_CACHE or ~/.cache/moebench/judge.sqlite)."""
    env = os.environ.get("MOEBENCH_JUDGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "moebench" / "judge.sqlite"


def _cache(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, raw TEXT NOT NULL)")
    return db


def _cached(key: str) -> str | None:
    with _LOCK:
        db = _cache(cache_path())
        try:
            row = db.execute("SELECT raw FROM verdicts WHERE key = ?", (key,)).fetchone()
        finally:
            db.close()
    return None if row is None else str(row[0])


def _remember(key: str, raw: str) -> None:
    with _LOCK:
        db = _cache(cache_path())
        try:
            with db:
                db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, raw))
        finally:
            db.close()


def _ask(params: Mapping[str, Any], prompt: str) -> tuple[str, ModelInfo, bool]:
    """(raw reply, judge info, from cache) for one judge prompt."""
    from moebench.errors import RequestFailed

    name, model = str(params.get("backend", "ollama")), str(params["model"])
    backend, info = _judge_backend(name, params.get("host"), model)
    key = hashlib.sha256(json.dumps([info.digest or info.name, prompt]).encode()).hexdigest()
    raw = _cached(key)
    if raw is not None:
        return raw, info, True
    request = Request(suite="judge", task="judge", case_id=key[:12], prompt=prompt,
                      scorer=ScorerSpec("exact"), options=structured_options(name))
    try:
        raw = backend.generate(model, request).text
    except RequestFailed as error:
        raise ScorerFailed(f"judge {model} failed: {error}") from None
    parse_verdict(raw)  # only well-formed verdicts are cached
    _remember(key, raw)
    return raw, info, False


@describes("judge")
def describe_judge(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """`judged by qwen3:4b: <rubric, first 60 characters>`."""
    rubric = " ".join(str(params.get("rubric") or "").split())
    short = rubric if len(rubric) <= 60 else rubric[:59] + "…"
    return f"judged by {params.get('model') or '?'}: {short}"


@scorer("judge", params=("model", "backend", "rubric", "host"),
        reads=("question", "expected", "reference"),
        description="a judge model grades the answer against `rubric` (structured verdict)")
def judge(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Passed iff the judge's verdict is pass; score is the judge's score."""
    if not params.get("model") or not params.get("rubric"):
        raise MoebenchError("scorer 'judge' needs `model:` and `rubric:` — e.g. "
                            "{type: judge, model: qwen3:4b, backend: ollama, rubric: ...}")
    prompt = judge_prompt(str(params["rubric"]), case, text)
    raw, info, cached = _ask(params, prompt)
    verdict = parse_verdict(raw)
    record = {"judge": info.name, "digest": info.digest, "cached": cached, "prompt": prompt,
              "reply": raw}
    line = f"{verdict.verdict} ({verdict.score:.2f}): {verdict.reason} · judge {info.name}"
    return Score(verdict.score, verdict.verdict == "pass", verdict.verdict,
                 line + "\n" + json.dumps(record, ensure_ascii=False))
