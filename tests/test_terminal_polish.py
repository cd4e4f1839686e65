"""Issue 18 item 8 (terminal): the live display shows overall progress, accuracy, errors."""

from __future__ import annotations

import io

from rich.console import Console

from moebench.report.terminal import RichProgress
from moebench.types import Completion, ModelInfo, Record, Request, Score, ScorerSpec


def _record(model: str, i: int, *, passed: bool = True, error: str | None = None) -> Record:
    request = Request("s", "arith", f"c{i}", "Q", ScorerSpec("number"))
    completion = None if error else Completion("4", model, 0.1, output_tokens=8, decode_s=0.1)
    score = None if error else Score(float(passed), passed, "4")
    return Record("r1", model, "ollama", request, completion, score, error=error)


def _drive(console: Console) -> None:
    with RichProgress(console) as progress:
        progress.on_run_start(2, 3)
        for model in ("a", "b"):
            progress.on_model_start(ModelInfo(model, "ollama", load_s=0.5), 3)
            for i in range(3):
                progress.on_sample(_record(model, i, passed=i != 1,
                                           error="timeout" if (model, i) == ("b", 2) else None))
            progress.on_model_end(ModelInfo(model, "ollama"))


def test_live_display_has_overall_bar_running_accuracy_and_errors() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120, record=True,
                      color_system=None)
    _drive(console)
    text = console.export_text()
    overall = text.rsplit("all models", 1)[-1].splitlines()[0]  # the final frame
    assert "6/6" in overall and "acc 60% (3/5)" in overall and "1 error" in overall


def test_off_terminal_lines_carry_the_running_tally() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=120, record=True)
    _drive(console)
    text = console.export_text()
    assert "a: 3 samples, 0 errors" in text and "run so far: acc 67% (2/3) · 0 errors" in text
    assert "b: 3 samples, 1 errors" in text and "acc 60% (3/5) · 1 error" in text
