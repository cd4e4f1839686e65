"""word_length cases: N distinct words of exactly L letters, every target satisfiable.

Targets are the (count, letters) grid COUNTS × LETTERS in a seeded order. Each length is
one for which the scorer's own lexicon (`moebench.scorers._lexicon`) holds at least
`SATISFIABLE_MARGIN` × the largest count of real words among wordfreq's common words —
`reference` builds such a list and tests check it for every target — so no case asks for
more distinct words than exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from moebench.suites.generators import Cases, Family, rng

COUNTS = tuple(range(2, 26))
LETTERS = tuple(range(3, 15))
#: the lexicon must hold this many times more words of a length than any case asks for
SATISFIABLE_MARGIN = 2
#: wordfreq's common-word list is scanned this far for reference words
_SCAN = 200_000


def _targets(seed: int) -> list[tuple[int, int]]:
    grid = [(c, n) for n in LETTERS for c in COUNTS]
    rng("word_length", seed).shuffle(grid)
    return grid


def make(n: int | None, seed: int, variants: int = 0) -> Cases:
    """The first n targets of the seeded grid order."""
    return [{"id": f"g-{count}-words-{letters}-letters", "count": count, "letters": letters}
            for count, letters in _targets(seed)[:n]]


@cache
def lexicon_words(letters: int, at_least: int) -> tuple[str, ...]:
    """The `at_least` most frequent words of `letters` letters the scorer accepts."""
    import wordfreq

    from moebench.scorers._lexicon import is_word

    found: list[str] = []
    for word in wordfreq.top_n_list("en", _SCAN):
        if len(word) == letters and word.isascii() and word.isalpha() and is_word(word):
            found.append(word)
            if len(found) == at_least:
                break
    return tuple(found)


def reference(case: Mapping[str, Any]) -> str:
    """A numbered list of `count` distinct real words of `letters` letters."""
    words = lexicon_words(int(case["letters"]), max(COUNTS) * SATISFIABLE_MARGIN)
    return "\n".join(f"{i}. {w}" for i, w in enumerate(words[: int(case["count"])], 1))


FAMILY = Family(
    name="word_length", make=make, reference=reference, scorer="word_length",
    prompt="Give me a list of {count} different English words that each have exactly "
           "{letters} letters.",
    description="Lists of N distinct English words of exactly L letters (N 2-25, L 3-14).",
    options={"temperature": 0, "seed": 7, "max_tokens": 512},
    max_n=len(COUNTS) * len(LETTERS))
