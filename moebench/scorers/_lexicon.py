"""Is this string a real English word? Three bundled sources, loaded lazily once.

1. Hunspell's en_US dictionary (the LibreOffice/SCOWL one that `spylls` ships): stems plus
   affix rules, so plurals, -ed, -ing and most current vocabulary (website, smartphone).
2. British spellings (colour, centre, organise, travelling) mapped to that dictionary.
3. Words attested in real text (wordfreq, zipf ≥ 2) or in Webster's list (`english-words`
   web2, lower-case entries only) for newer or rarer words (chatbot, livestream) — unless they
   look like a misspelling: a dictionary word one edit away (or one doubled letter away) is
   far more frequent, as with "recieve", "untill", "occured". Proper nouns and acronyms
   (capitalised-only entries) and keyboard mashes ("asdfgh", "hmmmm") are rejected.
`benchmarks/word_coverage.py` measures how well this accepts and rejects. Answers are kept
between processes (`_memo.DiskMemo`): a word already judged needs no dictionary loaded. A new
word needs no spylls either: Hunspell's verdicts come from a prebuilt table (`_tables`, the
library itself only when its version differs), and wordfreq's and Webster's data (for words
Hunspell lacks) are read straight from the files those packages ship.
"""

from __future__ import annotations

import math
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from moebench.scorers import _tables
from moebench.scorers._memo import DiskMemo

#: zipf frequency (log10 per billion words) from which a word counts as attested
MIN_ZIPF = 2.0
#: a nearby dictionary word this much more frequent (zipf) marks a misspelling
MISSPELLING_MARGIN = 1.5
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_TRIPLE = re.compile(r"(.)\1\1")
#: British → American spelling rewrites, each tried on its own and all together
_BRITISH: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"our(?=(s|ed|ing|ite|ites|able|ably|ful|less|hood|hoods|er|ers|ist|ism)?$)"),
     "or"),
    (re.compile(r"(?<=[a-z]{2})is(?=(e|ed|es|ing|ation|ations|er|ers)$)"), "iz"),
    (re.compile(r"ys(?=(e|ed|es|ing)$)"), "yz"),
    (re.compile(r"(?<=[a-z]{2})re(?=s?$)"), "er"),
    (re.compile(r"ll(?=(ed|ing|er|ers)$)"), "l"),
    (re.compile(r"ogue(?=s?$)"), "og"),
    (re.compile(r"ence(?=s?$)"), "ense"),
    (re.compile(r"(?<=[a-z])(ae|oe)(?=[a-z])"), "e"),
    (re.compile(r"mme(?=s?$)"), "m"),
    (re.compile(r"(?<=g)ement(?=s?$)"), "ment"),
)


@cache
def _hunspell() -> Any:
    from spylls.hunspell import Dictionary

    return Dictionary.from_files("en_US")  # bundled with spylls


@cache
def _frequencies() -> dict[str, float]:
    """wordfreq's `get_frequency_dict("en", wordlist="large")`, read from its data file.

    `import wordfreq` (0.2 s) and its per-word dict loop (0.3 s) would cost more than the rest
    of a cold `rescore`; the file is a gzipped msgpack list of frequency buckets (wordfreq's
    "cBpack": bucket i holds the words of frequency 10 ** (-i / 100)), read in 0.05 s. Any
    other layout is left to wordfreq itself.
    """
    buckets = _cbpack()
    if buckets is None:
        import wordfreq

        return wordfreq.get_frequency_dict("en", wordlist="large")
    freqs: dict[str, float] = {}
    for index, bucket in enumerate(buckets):
        freqs.update(dict.fromkeys(bucket, 10 ** (-index / 100)))  # wordfreq's cB_to_freq
    return freqs


def _cbpack() -> list[list[str]] | None:
    """The buckets of wordfreq's large English list, None when the file is not as expected."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("wordfreq")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "large_en.msgpack.gz"
    try:
        import msgpack

        with gzip.open(path, "rb") as infile:
            data = msgpack.load(infile, raw=False)
    except (ImportError, OSError, EOFError, ValueError):
        return None
    if not data or data[0] != {"format": "cB", "version": 1}:
        return None
    return data[1:]


@cache
def _webster() -> frozenset[str]:
    """Webster's web2 words as `english-words` lists them (alphabetic entries).

    Only lower-case words are ever looked up here, and a lower-case word equals an entry only
    if that entry is lower-case too: the capitalised entries (names) can never match, so they
    need not be filtered out (which took as long as loading the list).
    """
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2"], lower=False, alpha=True))


def zipf(word: str) -> float:
    """wordfreq's zipf frequency of `word` (0 when never seen)."""
    freq = _frequencies().get(word)
    return math.log10(freq) + 9 if freq else 0.0


def _in_dictionary(word: str) -> bool:
    """Hunspell accepts the lower-case `word` as written."""
    table = _tables.hunspell()
    if table is not None:
        return table.hunspell_mark(word) == "h"
    return bool(_hunspell().lookup(word))


def _american(word: str) -> set[str]:
    variants = set()
    combined = word
    for pattern, repl in _BRITISH:
        variants.add(pattern.sub(repl, word))
        combined = pattern.sub(repl, combined)
    variants.add(combined)
    variants.discard(word)
    return variants


def _neighbours(word: str) -> set[str]:
    """Words one edit away (delete, transpose, replace, insert) or one doubling away."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in _ALPHABET}
    out |= {a + c + b for a, b in splits for c in _ALPHABET}
    # "tommorow", "reccomend": a doubled letter moved, which is two single edits
    undoubled = {a + b[1:] for a, b in splits if len(b) > 1 and b[0] == b[1]}
    doubled = {a + b[0] + b for a, b in splits if b}
    out |= {a + b[0] + b for w in undoubled for a, b in
            ((w[:i], w[i:]) for i in range(len(w))) if b}
    out |= {w[:i] + w[i + 1:] for w in doubled for i in range(len(w) - 1) if w[i] == w[i + 1]}
    out.discard(word)
    return out


def _looks_misspelt(word: str) -> bool:
    bar = zipf(word) + MISSPELLING_MARGIN
    freqs = _frequencies()
    floor = 10 ** (bar - 9)
    return any(freqs.get(n, 0.0) >= floor and _in_dictionary(n) for n in _neighbours(word))


def _proper_or_acronym(word: str) -> bool:
    """Hunspell accepts the lower-case `word` capitalised or in capitals (asked only about
    words it does not accept as written)."""
    table = _tables.hunspell()
    if table is not None:
        return table.hunspell_mark(word) != "-"
    dictionary = _hunspell()
    return bool(dictionary.lookup(word.capitalize()) or dictionary.lookup(word.upper()))


_MEMO = DiskMemo("lexicon", [__file__, _tables.__file__, *_tables.FILES],
                 ("spylls", "wordfreq", "english-words"))


@lru_cache(maxsize=65536)
def why_not_word(word: str) -> str | None:
    """None when `word` (any case) is a real English word, else a short reason."""
    return _MEMO.get(word, lambda: _why_not_word(word))


def _why_not_word(word: str) -> str | None:
    word = word.lower()
    if not re.fullmatch(r"[a-z]+(?:['’][a-z]+)?", word):
        return "not a single word"
    word = word.replace("’", "'")
    if _in_dictionary(word) or any(_in_dictionary(v) for v in _american(word)):
        return None
    if _TRIPLE.search(word):
        return "not a word"
    if zipf(word) < MIN_ZIPF and word not in _webster():
        return "proper noun" if _proper_or_acronym(word) else "not a word"
    if _proper_or_acronym(word):
        return "proper noun"
    return "misspelling" if _looks_misspelt(word) else None


def is_word(word: str) -> bool:
    """True when `word` is a real English word (case-insensitive)."""
    return why_not_word(word) is None
