"""Shared pieces for the run/store/CLI tests: a small suite file, a scripted responder, fixtures.

The responder answers arithmetic questions correctly except the ones listed in WRONG, and
echoes `Say X` prompts, so accuracy and formula-escaping checks have known outcomes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from moebench.errors import RequestFailed
from moebench.testing.ollama_standin import OllamaStandin
from moebench.types import ModelInfo, Record

MODELS = ("mixtral:8x7b", "granite3-moe:1b")
#: questions the responder gets wrong (case ids a3 — "3+3")
WRONG = {"3+3"}


def suite_text(n: int = 4, seed: int | None = None, name: str = "mini") -> str:
    """A suite with an `arith` task of n cases (a1..an: "k+k") and an `echo` task of 1 case."""
    cases = "\n".join(f"      - {{id: a{k}, question: \"{k}+{k}\", expected: {2 * k}}}"
                      for k in range(1, n + 1))
    options = "options: {temperature: 0" + (f", seed: {seed}" if seed is not None else "") + "}"
    return f"""suite: {name}
{options}
tasks:
  - name: arith
    scorer: number
    prompt: "Q: {{question}}"
    cases:
{cases}
  - name: echo
    scorer: contains
    prompt: "Say {{word}}"
    cases:
      - {{id: formula, word: "=cmd()", expected: "=cmd()"}}
"""


def write_suite(folder: Path, **kwargs: Any) -> Path:
    """Write `suite_text(**kwargs)` to folder/mini.yaml and return its path."""
    path = folder / "mini.yaml"
    path.write_text(suite_text(**kwargs))
    return path


def responder(model: str, messages: Sequence[Mapping[str, Any]],
              options: Mapping[str, Any]) -> str:
    """Right answers (with a think trace) except for WRONG; echoes `Say X`."""
    prompt = str(messages[-1]["content"])
    if prompt.startswith("Say "):
        return prompt[4:]
    match = re.search(r"(\d+)\+(\d+)", prompt)
    if not match:
        return "I do not know."
    a, b = int(match[1]), int(match[2])
    answer = a + b + (1 if match[0] in WRONG else 0)
    return f"<think>adding {a} and {b}</think>The answer is {answer}."


@pytest.fixture
def standin() -> Iterator[OllamaStandin]:
    """An in-process Ollama stand-in with the scripted responder and fast tokens."""
    with OllamaStandin(models=list(MODELS), responder=responder, token_delay=0.0005) as server:
        yield server


class RecordingEvents:
    """RunEvents that remember what happened; `interrupt_after` raises KeyboardInterrupt."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.started: list[tuple[str, int]] = []
        self.samples: list[Record] = []
        self.ended: list[ModelInfo] = []
        self.notes: list[str] = []
        self.interrupt_after = interrupt_after

    def on_model_start(self, info: ModelInfo, total: int) -> None:
        self.started.append((info.name, total))

    def on_sample(self, record: Record) -> None:
        self.samples.append(record)
        if self.interrupt_after is not None and len(self.samples) >= self.interrupt_after:
            raise KeyboardInterrupt

    def on_model_end(self, info: ModelInfo) -> None:
        self.ended.append(info)

    def on_note(self, message: str) -> None:
        self.notes.append(message)


class NoWarmUpBackend:
    """A backend whose warm-up always fails with RequestFailed (registered by a test)."""

    name = "no-warm-up"

    def prepare(self, model: str) -> ModelInfo:
        raise RequestFailed(f"warm-up of {model} timed out")

    def generate(self, model: str, request: Any) -> Any:
        raise AssertionError("generate must not be called after a failed warm-up")

    def unload(self, model: str) -> None:
        return None

    def close(self) -> None:
        return None


def no_warm_up_backend(config: Any) -> NoWarmUpBackend:
    """Factory for the backend registry."""
    return NoWarmUpBackend()
