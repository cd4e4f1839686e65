"""The `word_length` scorer: distinct real English words with exactly `letters` letters.

The words are read from the answer's list — numbered, bulleted, comma-separated or one per
line — with markdown emphasis, quotes and trailing notes ("- 9 letters", "(7 letters)",
": 9 letters") removed, so chatter around the list is not counted. Validity comes from
`moebench.scorers._lexicon`. score = min(valid, count) / count; passed iff valid == count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from moebench.scorers.schema import CaseFields, ScorerParams
from moebench.scorers import describes, scorer
from moebench.scorers._lexicon import why_not_word
from moebench.types import Score

#: a list item's marker at line start: "1.", "2)", "(3)", "-", "*", "•", "a)"
_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}[.):\]]|[-*•+·–—]|\(?[a-zA-Z]\))\s+")
#: several numbered items on one line: "1. apple 2. banana"
_INLINE = re.compile(r"\s+(?=\d{1,2}[.)]\s)")
#: where a trailing note starts: " - 9 letters", " (7)", ": 9", " = 7", " – a fruit", ", 7"
_NOTE = re.compile(r"\s+[-–—=:]\s|\s*[(\[{]|[:=]\s|,\s|\s+[-–—]+\s*\d|\s+\d")
_EMPHASIS = re.compile(r"\*\*(.+?)\*\*|__(.+?)__|[\"“”](.+?)[\"“”]|`(.+?)`")
_STRIP = " \t*_`#>\"'“”‘’.,;:!?()[]{}"
_REFUSAL = re.compile(
    r"\b(?:I\s+(?:can(?:not|'t|’t)|won'?t|am\s+(?:not\s+able|unable|sorry))|I'?m\s+(?:sorry|unable|"
    r"not\s+able)|as\s+an\s+AI)\b", re.I)
_SENTENCE = re.compile(r"[.!?:]\s+")
_SPLIT_LIST = re.compile(r"\s*[,;]\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")


def _item_word(item: str) -> str:
    """The word an item names: the emphasised/quoted one, else the text before any note."""
    emphasised = _EMPHASIS.search(item)
    if emphasised:
        item = next(g for g in emphasised.groups() if g)
    item = _NOTE.split(item.strip(_STRIP), maxsplit=1)[0]
    return item.strip(_STRIP)


def _marked_items(lines: list[str]) -> list[str]:
    items = []
    for line in lines:
        inline = len(_INLINE.findall(line)) >= 2  # "Words: 1) apple 2) pear 3) plum"
        for part in _INLINE.split(line) if inline or _MARKER.match(line) else ():
            marker = _MARKER.match(part)
            if marker:
                items.append(_item_word(part[marker.end():]).split(" ")[0])
    return items


def _comma_items(lines: list[str]) -> list[str]:
    line = max(lines, key=lambda s: s.count(",") + s.count(";"), default="")
    if line.count(",") + line.count(";") == 0:
        return []
    # "Sure! Here they are: a, b, c. Enjoy!" → the sentence holding the list
    line = max(_SENTENCE.split(line), key=lambda s: s.count(",") + s.count(";"))
    words = (_item_word(p) for p in _SPLIT_LIST.split(line.strip()))
    return [w for w in words if w and " " not in w]  # "I'm sorry, but ..." is not a list


def _line_items(lines: list[str]) -> list[str]:
    words = (_item_word(line) for line in lines if not line.rstrip().endswith((":", "!", "?")))
    return [w for w in words if w and " " not in w]


def extract_words(text: str) -> list[str]:
    """The listed words in order, as written (duplicates kept)."""
    lines = [line for line in text.splitlines() if line.strip()]
    for extractor in (_marked_items, _comma_items, _line_items):
        words = [w for w in extractor(lines) if w]
        if words:
            return words
    return []


def _distinct(words: list[str]) -> tuple[list[str], list[str]]:
    seen: dict[str, str] = {}
    dupes = []
    for word in words:
        key = word.casefold()
        if key in seen:
            dupes.append(word)
        else:
            seen[key] = word
    return list(seen.values()), dupes


def _letters(word: str) -> int:
    return sum(ch.isalpha() for ch in word)


def _judge(word: str, letters: int) -> str | None:
    if _letters(word) != letters:
        return f"{_letters(word)} letters"
    parts = word.split("-")  # "well-known": every part must be a word
    reasons = [why_not_word(p) for p in parts]
    return next((r for r in reasons if r), None)


def _explain(valid: list[str], rejected: list[tuple[str, str]], dupes: list[str],
             count: int) -> str:
    text = f"{len(valid)} valid of {count} asked: {', '.join(valid) or '-'}"
    if rejected:
        text += "; rejected: " + ", ".join(f"{w} ({why})" for w, why in rejected)
    if dupes:
        text += "; duplicates: " + ", ".join(dupes)
    if len(valid) > count:  # score is capped at 1.00, yet exactly `count` were asked
        text += f"; fail: {len(valid) - count} more than asked"
    elif len(valid) < count:
        text += f"; fail: {count - len(valid)} short"
    return text


def _asked(case: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[int, int]:
    """(count, letters) the case asks for (case fields win over task parameters)."""
    return (int(case.get("count", params.get("count", 1))),
            int(case.get("letters", params.get("letters", 0))))


@describes("word_length")
def describe_expected(case: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """`6 words × 9 letters`: what a case of this scorer expects."""
    count, letters = _asked(case, params)
    return f"{count} word{'s' if count != 1 else ''} × {letters} letters"


#: a list of words is short; this many characters holds hundreds of them
WINDOW = 16_384


class WordLengthParams(ScorerParams):
    """Parameters of `word_length` (usually given per case)."""

    count: int | None = Field(default=None, ge=1, description="how many words are asked for")
    letters: int | None = Field(default=None, ge=1, description="letters in each word")


class WordLengthCase(CaseFields):
    """Case fields `word_length` reads (the case's or else the parameter's)."""

    count: int = Field(ge=1, description="how many words are asked for")
    letters: int = Field(ge=1, description="letters in each word")


def _too_many(words: list[str], count: int) -> Score:
    return Score(0.0, False, ", ".join(words)[:80],
                 f"{len(words)} distinct words listed, {count} asked for: not judged")


@scorer("word_length", params=WordLengthParams, case=WordLengthCase, window=WINDOW)
def word_length(text: str, case: Mapping[str, Any], params: Mapping[str, Any]) -> Score:
    """Score min(valid, count)/count for distinct real words with exactly `letters` letters."""
    count = int(case.get("count") or params.get("count") or 1)
    letters = int(case.get("letters") or params.get("letters") or 0)
    words, dupes = _distinct(extract_words(text))
    if len(words) > 2 * count + 10:  # judging a new word costs up to ~300 dictionary look-ups
        return _too_many(words, count)
    if not words:
        why = "refusal" if _REFUSAL.search(text) else "no list of words found"
        return Score(0.0, False, "", f"0 valid of {count} asked: {why}")
    verdicts = [(w, _judge(w, letters)) for w in words]
    valid = [w for w, why in verdicts if why is None]
    rejected = [(w, why) for w, why in verdicts if why is not None]
    score = min(len(valid), count) / count if count > 0 else 0.0
    return Score(score, len(valid) == count, ", ".join(words)[:80],
                 _explain(valid, rejected, dupes, count))
