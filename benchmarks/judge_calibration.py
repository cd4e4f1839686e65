"""Judge calibration: how often does a `judge` model agree with hand labels?

Run: `python benchmarks/judge_calibration.py -m qwen3:4b [--backend ollama] [--host URL]`
grades the 20 hand-labelled answers of `benchmarks/data/judge_calibration.yaml` with the
`judge` scorer (the same code path as a suite's `scorer: {type: judge, ...}`) and prints
agreement, Cohen's kappa (agreement beyond chance), the confusion counts and every
disagreement. Without -m it runs against the Ollama stand-in with a keyword judge, which
only shows the benchmark works end to end (its numbers say nothing about real judges).
Verdicts are cached ($MOEBENCH_JUDGE_CACHE), so a second run is free.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from moebench.errors import ScorerFailed
from moebench.scorers import score_text
from moebench.types import ScorerSpec

DATA = Path(__file__).parent / "data" / "judge_calibration.yaml"


def kappa(pairs: Sequence[tuple[bool, bool]]) -> float:
    """Cohen's kappa of (judge, human) verdicts (sklearn is not a dependency)."""
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    judge_yes, human_yes = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    chance = judge_yes * human_yes + (1 - judge_yes) * (1 - human_yes)
    return (observed - chance) / (1 - chance) if chance < 1 else float("nan")


def grade(spec: ScorerSpec, items: Sequence[Mapping[str, Any]]) -> list[tuple[str, bool | None, bool]]:
    """(id, judge verdict or None when unparsable, human label) per item."""
    rows = []
    for item in items:
        try:
            verdict: bool | None = score_text(spec, item["answer"], {"question": item["question"]}).passed
        except ScorerFailed:
            verdict = None
        rows.append((item["id"], verdict, item["label"] == "pass"))
    return rows


def _keyword_judge(model: str, messages: Sequence[Mapping[str, Any]],
                   options: Mapping[str, Any]) -> str:
    """Stand-in judge: fails refusals and answers naming a known wrong value."""
    prompt = str(messages[-1]["content"])
    answer = re.search(r"<<<\n(.*)\n>>>", prompt, re.S)
    text = answer.group(1).lower() if answer else ""
    wrong = ("sydney", "90", "nine", "brontë", "sin", "15.", "sorry", "ag.", "atlantic", "red and green")
    ok = not any(w in text for w in wrong)
    return json.dumps({"verdict": "pass" if ok else "fail", "score": float(ok), "reason": "keywords"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model")
    parser.add_argument("--backend", default="ollama")
    parser.add_argument("--host")
    args = parser.parse_args()
    data = yaml.safe_load(DATA.read_text())
    if args.model:
        rows = _run(args.model, args.backend, args.host, data)
    else:
        from moebench.testing.ollama_standin import OllamaStandin

        with OllamaStandin(models=["granite3-moe:1b"], responder=_keyword_judge) as server:
            rows = _run("granite3-moe:1b", "ollama", server.url, data)
    _print(rows, args.model or "stand-in keyword judge")


def _run(model: str, backend: str, host: str | None, data: Mapping[str, Any]) -> list[Any]:
    params = {"model": model, "backend": backend, "rubric": data["rubric"],
              **({"host": host} if host else {})}
    return grade(ScorerSpec("judge", params), data["items"])


def _print(rows: list[tuple[str, bool | None, bool]], who: str) -> None:
    parsed = [(j, h) for _, j, h in rows if j is not None]
    agree = sum(j == h for j, h in parsed)
    table = Table(title=f"judge calibration: {who}", title_justify="left")
    for name in ("items", "unparsable", "agreement", "Cohen's kappa", "judge pass / human fail",
                 "judge fail / human pass"):
        table.add_column(name, justify="right")
    table.add_row(str(len(rows)), str(len(rows) - len(parsed)),
                  f"{agree}/{len(parsed)} ({agree / max(len(parsed), 1):.0%})",
                  f"{kappa(parsed):.2f}" if parsed else "–",
                  str(sum(j and not h for j, h in parsed)), str(sum(h and not j for j, h in parsed)))
    console = Console()
    console.print(table)
    for case_id, j, h in rows:
        if j != h:
            console.print(f"disagrees on {case_id}: judge {j}, human {h}")


if __name__ == "__main__":
    main()
