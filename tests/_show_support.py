"""A small stored run with known verdicts, written straight through the Store (no server).

Suite `why`: task `nine` (word_length, 6 words × 9 letters), task `sum` (summary, max 1
sentence, must mention Kalo and kite) and task `add` (number). Model A lists 7 valid words
(score 1.00 yet fail), writes two sentences and adds right; model B gets all three right.
"""

from __future__ import annotations

from pathlib import Path

from moebench.scorers import score_text, strip_think
from moebench.store import Store
from moebench.suites.loader import load_suites
from moebench.types import Completion, ModelInfo, Record

MODEL_A, MODEL_B = "mixtral:8x7b", "olmoe:7b"
SUITE = """suite: why
tasks:
  - name: nine
    scorer: word_length
    prompt: "List {count} English words with exactly {letters} letters."
    cases:
      - {id: w6x9, count: 6, letters: 9}
  - name: sum
    scorer: {type: summary, max_sentences: 1}
    prompt: "Summarize: {text}"
    cases:
      - {id: kite, text: "Kalo found a kite. It was red.", must_mention: [Kalo, kite]}
  - name: add
    scorer: number
    prompt: "Q: {question}"
    cases:
      - {id: a1, question: "2+2", expected: 4}
"""
NINE = ["beautiful", "adventure", "chocolate", "community", "education", "wonderful",
        "invisible"]
ANSWERS = {
    MODEL_A: {"nine": "\n".join(f"{i + 1}. {w}" for i, w in enumerate(NINE)),
              "sum": "Kalo found a kite. It was red.", "add": "<think>2 and 2</think>4"},
    MODEL_B: {"nine": ", ".join(NINE[:6]), "sum": "Kalo found a red kite.", "add": "4"},
}


def build_run(out: Path, run_id: str = "r1", started_at: str | None = None,
              models: tuple[str, ...] = (MODEL_A, MODEL_B)) -> str:
    """Write the `why` run into the store at `out`; returns its id."""
    suite_path = out.parent / f"{out.name}-why.yaml"
    suite_path.write_text(SUITE)
    suite = load_suites([suite_path])[0]
    store = Store(out)
    try:
        store.create_run({"id": run_id, "started_at": started_at,
                          "suites": [{"name": suite.name, "path": str(suite_path),
                                      "sha256": suite.sha256}],
                          "models": list(models), "backend": "ollama", "options": {}})
        for position, model in enumerate(models):
            store.add_model(run_id, ModelInfo(model, "ollama", load_s=1.0, loads=1), position)
            for seq, request in enumerate(suite.requests()):
                text = ANSWERS[model][request.task]
                completion = Completion(text, model, latency_s=1.0 + position, ttft_s=0.2,
                                        prompt_tokens=30, output_tokens=40, decode_s=1.0,
                                        prompt_eval_s=0.1)
                store.add_record(Record(run_id, model, "ollama", request, completion,
                                        score_text(request.scorer, text, request.case),
                                        stripped=strip_think(text)), seq=seq,
                                 cold=seq == 0)
        store.set_status(run_id, "completed")
    finally:
        store.close()
    return run_id
