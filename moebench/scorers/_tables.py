"""The scorers' prebuilt tables: Hunspell's, lemminflect's and pint's answers without the libraries.

A fresh process (the first `rescore` after an upgrade, `MOEBENCH_CACHE_DIR=off`, a merged store)
would pay about 2 s before its first new verdict: spylls parsing the Hunspell dictionary,
lemminflect its lemma table, pint its import. `scripts/build_scorer_tables.py` writes what they
answer into `moebench/data/scorers/` (its docstring describes the files); loading them takes
milliseconds. Each file names the library versions it came from: with another version installed
`hunspell()`, `lemmas()` or `units()` returns None and the scorers ask the library itself, so a
table can be stale but never wrong. `tests/scorers/test_scorer_tables.py` checks them against the
installed libraries. `MOEBENCH_SCORER_TABLES=off` ignores them (for comparisons).
"""

from __future__ import annotations

import json
import lzma
import os
from bisect import bisect_right
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

#: bump when the files' layout changes (the build script writes it, the loaders check it)
FORMAT = 1
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "scorers"
WORDS_FILE = "words.txt.xz"
UNITS_FILE = "units.json.xz"
#: the files, for fingerprints of the answers computed from them (`_memo.DiskMemo`)
FILES = (str(DATA_DIR / WORDS_FILE), str(DATA_DIR / UNITS_FILE))


def apply_edit(word: str, edit: str) -> str:
    """The lemma an edit code stands for: `=` the word, `-2` drop 2 letters, `-3y` drop 3 and
    add "y", `!lemma` the lemma itself."""
    if edit == "=":
        return word
    if edit.startswith("!"):
        return edit[1:]
    digits = len(edit) - len(edit[1:].lstrip("0123456789"))
    drop = int(edit[1:digits])
    return word[:len(word) - drop] + edit[digits:]


class WordTable:
    """The words file's sorted words (front-coded in blocks) and their fields, by bisection.

    Line i of the words column is `chr(48 + k) + rest`: the word is the first k characters of
    the word before it followed by `rest`; every BLOCK-th word is written out in full (k = 0),
    so a look-up bisects those and decodes one block. Reading the file costs one `split`.
    """

    def __init__(self, codes: list[str], fields: list[str], block: int) -> None:
        self._codes, self._fields, self._block = codes, fields, block
        self._heads = [code[1:] for code in codes[::block]]

    def fields(self, word: str) -> str | None:
        """The fields of `word`, None when the table has no such word."""
        b = bisect_right(self._heads, word) - 1
        if b < 0:
            return None
        current = ""
        for i in range(b * self._block, min((b + 1) * self._block, len(self._codes))):
            code = self._codes[i]
            current = current[:ord(code[0]) - 48] + code[1:]
            if current >= word:
                return self._fields[i] if current == word else None
        return None

    def items(self) -> Iterator[tuple[str, str]]:
        """Every (word, fields), in order (for checks; look-ups use `fields`)."""
        current = ""
        for code, fields in zip(self._codes, self._fields):
            current = current[:ord(code[0]) - 48] + code[1:]
            yield current, fields

    def hunspell_mark(self, word: str) -> str:
        """`h` Hunspell accepts the lower-case `word`, `p` only capitalised or in capitals, `-` no."""
        fields = self.fields(word)
        return fields[0] if fields else "-"

    def noun(self, word: str) -> tuple[bool, str | None] | None:
        """For a lower-case word lemminflect's dictionary knows: (a noun?, its NOUN lemma or None
        when the dictionary has none); None for a word it does not know."""
        fields = self.fields(word)
        if fields is None or len(fields) < 2:
            return None
        return fields[1] == "N", apply_edit(word, fields[2:]) if len(fields) > 2 else None


def _enabled() -> bool:
    return os.environ.get("MOEBENCH_SCORER_TABLES", "").lower() not in ("off", "0", "none")


def _matches(header: dict[str, Any], library: str) -> bool:
    """The table part from `library` is usable: same format and the installed version."""
    try:
        return header.get("format") == FORMAT and header.get(library) == metadata.version(library)
    except metadata.PackageNotFoundError:
        return False


@cache
def _words() -> tuple[dict[str, Any], WordTable] | None:
    try:
        text = lzma.decompress((DATA_DIR / WORDS_FILE).read_bytes()).decode("utf-8")
    except (OSError, lzma.LZMAError, UnicodeDecodeError):
        return None  # a trimmed install: the libraries answer
    head, _, body = text.partition("\n")
    header = json.loads(head)
    lines, count = body.split("\n"), header["words"]
    return header, WordTable(lines[:count], lines[count:], header["block"])


def _words_from(library: str) -> WordTable | None:
    loaded = _words() if _enabled() else None
    return loaded[1] if loaded and _matches(loaded[0], library) else None


@cache
def hunspell() -> WordTable | None:
    """The words table when its Hunspell part matches the installed spylls, else None."""
    return _words_from("spylls")


@cache
def lemmas() -> WordTable | None:
    """The words table when its lemma part matches the installed lemminflect, else None."""
    return _words_from("lemminflect")


@cache
def units() -> dict[str, Any] | None:
    """pint's prefixes, suffixes and units (see `_units`) when they match the installed pint."""
    if not _enabled():
        return None
    try:
        table = json.loads(lzma.decompress((DATA_DIR / UNITS_FILE).read_bytes()))
    except (OSError, lzma.LZMAError, ValueError):
        return None
    return table if _matches(table, "pint") else None


def clear() -> None:
    """Forget the loaded tables (tests switch them on and off)."""
    for loader in (_words, hunspell, lemmas, units):
        loader.cache_clear()
