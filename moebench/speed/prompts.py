"""Prompts of a chosen token length, each starting with a nonce so no prompt cache can help.

A prompt is `<nonce> <filler words> <instruction>`. The nonce (six random digits) comes first:
servers cache by prefix, so a new first token means each repeat really processes its whole
prompt (llama.cpp and Ollama report cached tokens in `prompt_eval_count` but not in the
duration, which would inflate prompt tok/s). The instruction asks for a long continuation so
models that cannot be told to ignore EOS are less likely to stop early.

Token counts are the server's own (`prompt_eval_count`, template tokens included): `Fit` is a
line through two probe prompts (tokens = base + per_word × words), and `refine` corrects the
word count from what a real request of that length reported.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: words of the filler, cycled; plain common English so every tokenizer sees ordinary text
PARAGRAPH = (
    "the old keeper of the lighthouse walked along the shore every morning and counted the "
    "boats that came back from the sea while the wind moved the grass on the hills and the "
    "children of the village ran down to the water to help their fathers carry the nets up "
    "to the houses where bread was baking and the smoke rose slowly into the grey sky"
).split()
INSTRUCTION = "Continue this story for as long as you can."
#: filler words in the second calibration probe
PROBE_WORDS = 64


@dataclass(frozen=True)
class Fit:
    """Server tokens as a line in filler words: `tokens ≈ base + per_word × words`."""

    base: float
    per_word: float

    def words_for(self, tokens: int) -> int:
        """Filler words for a prompt of `tokens` server tokens (0 when shorter than the base)."""
        return max(0, round((tokens - self.base) / self.per_word))

    def refine(self, words: int, target: int, measured: int) -> int:
        """The word count corrected by how far a request of `words` words was off target."""
        return max(0, words + round((target - measured) / self.per_word))

    @classmethod
    def through(cls, short: int, long: int, words: int = PROBE_WORDS) -> Fit:
        """The line through probes of 0 and `words` filler words."""
        return cls(float(short), max((long - short) / words, 1e-3))


def close_enough(measured: int, target: int) -> bool:
    """Within 2 tokens or 1% of the target."""
    return abs(measured - target) <= max(2, target // 100)


class PromptBuilder:
    """Makes prompts with fresh nonces (never the same nonce twice in one builder)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._used: set[int] = set()

    def nonce(self) -> str:
        """Six digits, the first never 0, unique within this builder."""
        while True:
            value = self._rng.randrange(100_000, 1_000_000)
            if value not in self._used:
                self._used.add(value)
                return str(value)

    def text(self, words: int) -> str:
        """A prompt with a new nonce and `words` filler words."""
        filler = [PARAGRAPH[i % len(PARAGRAPH)] for i in range(words)]
        body = " ".join(filler)
        return f"{self.nonce()} {body}{'.' if body else ''} {INSTRUCTION}"
