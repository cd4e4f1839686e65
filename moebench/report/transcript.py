"""Rich rendering for `moebench show`: the case × model matrix and per-sample transcripts.

The matrix follows promptfoo's view (one row per case, one column per model, each cell the
verdict, score and answer); a transcript follows inspect-ai's sample view (prompt, output,
answer, what was expected, the scorer's explanation, timings), so a failed case can be read
without opening the store. Only drawing happens here; `moebench.transcripts` selects.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, Group
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from moebench.transcripts import Transcript

_STYLE = {"pass": "green", "fail": "red", "error": "bold red"}
_MARK = {"pass": "✓", "fail": "✗", "error": "!"}
#: answer characters shown in a matrix cell
_CELL_ANSWER = 24


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _rate(tokens: int | None, seconds: float | None) -> str:
    return f" ({tokens / seconds:.1f} tok/s)" if tokens and seconds and seconds > 0 else ""


def timing_line(t: Transcript) -> str:
    """`latency 1.20 s · TTFT 0.20 s · prompt 30 tok (300.0 tok/s) · output 40 tok (40.0 tok/s)`."""
    parts = [f"latency {_secs(t.latency_s)}", f"TTFT {_secs(t.ttft_s)}"]
    if t.prompt_tokens is not None:
        parts.append(f"prompt {t.prompt_tokens} tok{_rate(t.prompt_tokens, t.prompt_eval_s)}")
    if t.output_tokens is not None:
        parts.append(f"output {t.output_tokens} tok{_rate(t.output_tokens, t.decode_s)}")
    return " · ".join(parts)


def _think(t: Transcript) -> str:
    """The reasoning trace the scorer did not read (output minus its stripped text)."""
    raw, kept = (t.output or "").strip(), (t.stripped or "").strip()
    if not raw or raw == kept or kept not in raw:
        return ""
    return raw.replace(kept, "", 1).strip()


def transcript(t: Transcript) -> Group:
    """One sample: a header rule with the verdict, then labelled fields."""
    score = "" if t.score is None else f" · score {t.score:.2f}"
    title = Text.assemble((f"{t.model}", "bold"), f" · {t.key} #{t.repeat} · ",
                          (t.verdict.upper(), _STYLE[t.verdict]), score)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold dim", no_wrap=True)
    grid.add_column(overflow="fold")
    fields: list[tuple[str, str, str]] = [
        ("system", t.system or "", ""), ("prompt", t.prompt, ""),
        ("thinking", _think(t), "dim"),
        ("output", (t.stripped if _think(t) else t.output) or "", ""),
        ("answer", t.answer or "", "bold"), ("expected", t.expected_detail, ""),
        ("why", t.explanation or "", _STYLE[t.verdict]), ("error", t.error or "", "bold red"),
        ("timing", timing_line(t) if not t.error else "", "dim")]
    for label, value, style in fields:
        if value or label in ("prompt", "output", "expected"):
            grid.add_row(label, Text(value or "–", style=style))
    return Group(Rule(title, align="left", style=_STYLE[t.verdict]), grid, Text(""))


def _cell(samples: Sequence[Transcript]) -> Text:
    """A matrix cell: `✓ 1.00 answer` (one repeat) or `✗ 1/3 0.67` (repeats)."""
    if not samples:
        return Text("–", style="dim")
    passed = sum(s.verdict == "pass" for s in samples)
    worst = "error" if any(s.error for s in samples) else (
        "pass" if passed == len(samples) else "fail")
    scores = [s.score for s in samples if s.score is not None]
    mean = f" {sum(scores) / len(scores):.2f}" if scores else ""
    if len(samples) > 1:
        return Text(f"{_MARK[worst]} {passed}/{len(samples)}{mean}", style=_STYLE[worst])
    answer = (samples[0].answer or samples[0].error or "").replace("\n", " ")
    if len(answer) > _CELL_ANSWER:
        answer = answer[: _CELL_ANSWER - 1] + "…"
    return Text.assemble((f"{_MARK[worst]}{mean}", _STYLE[worst]), f" {answer}".rstrip())


def case_matrix(transcripts: Sequence[Transcript], title: str | None = None) -> Table:
    """One row per case, one column per model (promptfoo's matrix)."""
    models = list(dict.fromkeys(t.model for t in transcripts))
    cells: dict[str, dict[str, list[Transcript]]] = {}
    for t in transcripts:
        cells.setdefault(t.key, {}).setdefault(t.model, []).append(t)
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  show_edge=False, padding=(0, 1, 0, 0))
    table.add_column("case", no_wrap=True)
    for model in models:
        table.add_column(model, overflow="ellipsis", no_wrap=True)
    for key, by_model in cells.items():
        table.add_row(key, *(_cell(by_model.get(m, [])) for m in models))
    return table


def print_show(console: Console, run_id: str, transcripts: Sequence[Transcript], *,
               matrix: bool) -> None:
    """The matrix (with a hint) or the transcripts, then a one-line tally."""
    if matrix:
        console.print(case_matrix(transcripts, title=f"run {run_id}: case × model"))
        console.print(Text(f"moebench show {run_id} --case ID for a case's transcripts, "
                           "--failed for every failed one", style="dim"), soft_wrap=True)
        return
    for t in transcripts:
        console.print(transcript(t))
    failed = sum(t.verdict != "pass" for t in transcripts)
    console.print(Text(f"{len(transcripts)} samples shown, {failed} not passed", style="dim"))
