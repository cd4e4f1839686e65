"""The `judge` scorer end to end against the Ollama stand-in: structured verdicts, the judge's
calls kept out of the timed requests, an unparsable verdict as an error row, the cache."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from moebench.rescore import rescore
from moebench.runner import RunOptions, run
from moebench.scorers import score_text
from moebench.scorers.judge import parse_verdict
from moebench.store import Store
from moebench.suites.loader import validate_paths
from moebench.errors import ScorerFailed
from moebench.testing.ollama_standin import OllamaStandin
from moebench.types import ScorerSpec

JUDGED, JUDGE = "mixtral:8x7b", "granite3-moe:1b"
ANSWERS = {"capital of France": "It is Paris.", "capital of Italy": "It is Paris.",
           "garble": "GARBLE please"}


def responder(model: str, messages: Sequence[Mapping[str, Any]],
              options: Mapping[str, Any]) -> str:
    """The judged model answers from ANSWERS; the judge passes answers that say "Rome" for
    Italy and "Paris" for France — deterministic, so the test controls every verdict."""
    prompt = str(messages[-1]["content"])
    if model.startswith(JUDGE.split(":")[0]):
        answer = re.search(r"<<<\n(.*)\n>>>", prompt, re.S)
        graded = answer.group(1) if answer else ""
        if "GARBLE" in graded:
            return "Sure! I think it passes."  # not JSON: must become an error row
        right = ("France" in prompt and "Paris" in graded) or (
            "Italy" in prompt and "Rome" in graded)
        return json.dumps({"verdict": "pass" if right else "fail", "score": float(right),
                           "reason": "names the capital" if right else "wrong city"})
    return next((a for q, a in ANSWERS.items() if q in prompt), "hi")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OllamaStandin]:
    monkeypatch.setenv("MOEBENCH_JUDGE_CACHE", str(tmp_path / "judge.sqlite"))
    with OllamaStandin(models=[JUDGED, JUDGE], responder=responder, token_delay=0) as s:
        yield s


def _suite(tmp_path: Path, server: OllamaStandin) -> Path:
    path = tmp_path / "judged.yaml"
    path.write_text(f"""\
suite: judged
options: {{temperature: 0, seed: 7}}
tasks:
  - name: capitals
    scorer: {{type: judge, model: "{JUDGE}", backend: ollama, host: "{server.url}",
              rubric: "Pass when the answer names the capital of the country asked about."}}
    prompt: "What is the {{question}}?"
    cases:
      - {{id: france, question: capital of France}}
      - {{id: italy, question: capital of Italy}}
      - {{id: garbled, question: garble}}
""")
    return path


def _chat_models(server: OllamaStandin) -> list[str]:
    return [str(body["model"]) for _, path, body in server.stats.log
            if path == "/api/chat" and body]


def test_judge_grades_after_the_judged_model_with_a_schema(server: OllamaStandin,
                                                           tmp_path: Path) -> None:
    suite = _suite(tmp_path, server)
    assert validate_paths([suite]) == []
    out = tmp_path / "out"
    result = run(RunOptions(models=[JUDGED], suites=[suite], host=server.url, out=out,
                            retries=0))
    store = Store.open(out)
    try:
        samples = store.samples_frame([result.run_id]).set_index("case_id")
    finally:
        store.close()
    assert bool(samples.loc["france", "passed"]) and not bool(samples.loc["italy", "passed"])
    # unparsable verdict: an error row, neither pass nor fail
    assert samples.loc["garbled", "error"].startswith("scorer judge: judge reply is not a")
    assert samples.loc["garbled", "output"] == "GARBLE please"
    # every judge call came after the judged model's last request (none while timed)
    models = _chat_models(server)
    first_judge = next(i for i, m in enumerate(models) if m.startswith("granite"))
    assert all(m.startswith("mixtral") for m in models[:first_judge])
    assert not any(m.startswith("mixtral") for m in models[first_judge:])
    judge_bodies = [b for _, p, b in server.stats.log if p == "/api/chat" and b
                    and b["model"].startswith("granite") and "Rubric:" in str(b["messages"])]
    assert judge_bodies and all(b["format"]["properties"]["verdict"]["enum"] == ["pass", "fail"]
                                for b in judge_bodies)
    assert all(b["options"]["temperature"] == 0 for b in judge_bodies)
    record = json.loads(samples.loc["france", "explanation"].split("\n", 1)[1])
    assert record["judge"] == JUDGE and record["digest"] and "Rubric:" in record["prompt"]
    assert json.loads(record["reply"])["verdict"] == "pass"


def test_rescore_reuses_cached_verdicts(server: OllamaStandin, tmp_path: Path) -> None:
    suite = _suite(tmp_path, server)
    out = tmp_path / "out"
    result = run(RunOptions(models=[JUDGED], suites=[suite], host=server.url, out=out,
                            retries=0, limit=2))
    asked = len(_chat_models(server))
    again = rescore(out, result.run_id)
    assert again.checked == 2 and again.changed == ()
    assert len(_chat_models(server)) == asked  # no judge call paid twice


def test_cached_verdict_is_marked_and_same(server: OllamaStandin) -> None:
    spec = ScorerSpec("judge", {"model": JUDGE, "backend": "ollama", "host": server.url,
                                "rubric": "Pass when it names the capital."})
    case = {"id": "x", "question": "capital of France"}
    first = score_text(spec, "Paris", case)
    second = score_text(spec, "Paris", case)
    assert first.passed and second.passed and first.score == second.score == 1.0
    assert '"cached": false' in first.explanation and '"cached": true' in second.explanation
    other = score_text(spec, "Lyon", case)  # a different output is a new question
    assert not other.passed


def test_parse_verdict_is_strict() -> None:
    assert parse_verdict('{"verdict": "pass", "score": 1, "reason": "ok"}').verdict == "pass"
    for raw in ('{"verdict": "yes", "score": 1, "reason": "ok"}',
                '{"verdict": "pass", "score": 2, "reason": "ok"}',
                '{"verdict": "pass", "score": 1, "reason": "ok", "extra": 1}',
                'PASS', ''):
        with pytest.raises(ScorerFailed):
            parse_verdict(raw)


def test_judge_needs_model_and_rubric(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("tasks:\n  - name: t\n    scorer: {type: judge, model: m}\n"
                    "    prompt: hi\n    cases: [{id: a}]\n")
    errors = validate_paths([path])
    assert len(errors) == 1 and "needs `model:` and `rubric:`" in errors[0]
