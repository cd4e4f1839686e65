"""Build the scorers' prebuilt tables (`moebench/data/scorers/`) from the libraries they replace.

Run: `python scripts/build_scorer_tables.py [--check N]` after upgrading spylls, lemminflect or
pint (tests/scorers/test_scorer_tables.py fails when the installed libraries no longer match).

A fresh process would otherwise pay about 2 s before its first new verdict: spylls parsing the
Hunspell en_US dictionary (0.6-0.8 s), lemminflect parsing its lemma table (0.45 s) and pint's
import (0.45 s). The tables hold the very answers those libraries give, in a form that loads in
milliseconds (`moebench.scorers._tables`):

  words.txt.xz  a JSON header line, then every word (sorted, front-coded), then its fields:
                - Hunspell (spylls en_US), one letter: `h` the lower-case word is accepted as
                  written, `p` only capitalised or in capitals (a proper noun or acronym:
                  "paris", "nasa"), `-` neither; the forms come from expanding every stem with
                  its affix rules, each kept only if spylls' own lookup accepts it.
                - lemminflect, for the words its dictionary knows: `N`/`n` (a noun or not, as
                  `getAllLemmas` says), then the dictionary's NOUN lemma as an edit of the word
                  (`=` the same, `-2` drop two letters, `-3y` drop three and add "y", `!lemma`
                  spelled out), absent when the dictionary has none.
  units.json.xz pint's unit names, symbols and aliases, its prefixes and plural suffixes: what
                `moebench.scorers._units` needs to resolve a one-word unit exactly as pint does;
                and pint's answers for a few thousand compound units answers write ("km/h",
                "miles per hour", "square feet", "m²", "°C"), anything else goes to pint.

Each file records the versions of the libraries it came from; with any other version installed
the scorers use the library itself. `--check N` also compares spylls on every one-edit neighbour
of N random words (a slow, thorough completeness check of the expansion).
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import re
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moebench.scorers import _tables  # noqa: E402

#: words per front-coded block (`_tables.WordTable`): a look-up decodes at most this many
BLOCK = 32
#: word shapes the lexicon ever asks Hunspell about (letters, apostrophes)
_WORDISH = re.compile(r"[A-Za-z']+")


def _apply_suffix(stem: str, suffix: Any) -> str | None:
    if not suffix.cond_regexp.search(stem) or not stem.endswith(suffix.strip):
        return None
    return stem[:len(stem) - len(suffix.strip)] + suffix.add


def _apply_prefix(stem: str, prefix: Any) -> str | None:
    if not prefix.cond_regexp.search(stem) or not stem.startswith(prefix.strip):
        return None
    return prefix.add + stem[len(prefix.strip):]


def _stem_forms(aff: Any, stem: str, flags: Iterable[str]) -> Iterator[str]:
    """Every form one dictionary stem can take: bare, suffixed, prefixed and both (cross)."""
    suffixes = [s for f in flags for s in aff.SFX.get(f, ())]
    prefixes = [p for f in flags for p in aff.PFX.get(f, ())]
    yield stem
    for suffix in suffixes:
        if (form := _apply_suffix(stem, suffix)) is not None:
            yield form
    for prefix in prefixes:
        if (pre := _apply_prefix(stem, prefix)) is None:
            continue
        yield pre
        for suffix in (s for s in suffixes if s.crossproduct and prefix.crossproduct):
            for base in (pre, stem):  # the condition is Hunspell's on the stem; try both
                if (form := _apply_suffix(base, suffix)) is not None:
                    yield prefix.add + form[len(prefix.strip):] if base is stem else form


def _one_letter_stem_forms(aff: Any) -> Iterator[str]:
    """Every affix combination on a one-letter stem, whatever the rules allow.

    spylls (0.1.7) indexes its lower-cased stems letter by letter, so for a word in capitals
    whose split has a one-letter stem ("XINGS" = x + ings) it tries every dictionary word that
    contains the letter ("fix/...J" has the -ings flag) and accepts "XINGS". These are the only
    words it accepts that the stems' own expansions miss: generate them all and let `lookup`
    decide which.
    """
    suffixes = [None, *(s for entries in aff.SFX.values() for s in entries)]
    prefixes = [None, *(p for entries in aff.PFX.values() for p in entries)]
    for letter in "abcdefghijklmnopqrstuvwxyz'":
        for suffix in suffixes:
            if suffix is not None and suffix.strip not in ("", letter):
                continue
            base = letter if suffix is None else letter[:len(letter) - len(suffix.strip)] + \
                suffix.add
            for prefix in prefixes:
                if prefix is None:
                    yield base
                elif base.startswith(prefix.strip):
                    yield prefix.add + base[len(prefix.strip):]


def hunspell_tables(dictionary: Any) -> tuple[set[str], set[str]]:
    """(lower-case words spylls accepts as written, lower-case words it accepts only
    capitalised or in capitals), each checked with spylls' own `lookup`."""
    forms = {f for w in dictionary.dic.words for f in _stem_forms(dictionary.aff, w.stem, w.flags)
             if _WORDISH.fullmatch(f)}
    lower = {f for f in forms if f.islower() and dictionary.lookup(f)}
    proper = {f.lower() for f in forms if not f.islower()}
    proper |= {f for f in _one_letter_stem_forms(dictionary.aff) if _WORDISH.fullmatch(f)}
    proper -= lower
    proper = {w for w in proper
              if dictionary.lookup(w.capitalize()) or dictionary.lookup(w.upper())}
    return lower, proper


def _lemma_edit(word: str, lemma: str) -> str:
    """`lemma` written as an edit of `word` (see the module docstring)."""
    if lemma == word:
        return "="
    keep = next((i for i, (a, b) in enumerate(zip(word, lemma)) if a != b), min(len(word),
                                                                                 len(lemma)))
    edit = f"-{len(word) - keep}{lemma[keep:]}"
    if keep and not any(c.isdigit() for c in lemma[keep:]) and _tables.apply_edit(word, edit) \
            == lemma:
        return edit
    return "!" + lemma


def lemma_fields() -> dict[str, str]:
    """lemminflect's answers per lower-case dictionary word: `N`/`n` plus the NOUN lemma edit."""
    from lemminflect import Lemmatizer, getAllLemmas, getLemma

    lemmatizer = Lemmatizer()
    keys = {k.lower() for k in (*lemmatizer._getLemmaDict(), *lemmatizer._getOverridesDict())}
    fields = {}
    for key in sorted(keys):
        lemmas = getAllLemmas(key)
        if not lemmas:
            continue  # answered like an unknown word
        flag = "N" if "NOUN" in lemmas or "PROPN" in lemmas else "n"
        nouns = getLemma(key, upos="NOUN", lemmatize_oov=False)
        fields[key] = flag + (_lemma_edit(key, nouns[0]) if nouns else "")
    return fields


def _front_coded(words: list[str], block: int) -> list[str]:
    """`chr(48 + k) + rest` per word, k the prefix shared with the word before (0 at each
    block start); see `_tables.WordTable`."""
    codes, previous = [], ""
    for i, word in enumerate(words):
        shared = 0
        if i % block:
            limit = min(len(word), len(previous), 70)
            while shared < limit and word[shared] == previous[shared]:
                shared += 1
        codes.append(chr(48 + shared) + word[shared:])
        previous = word
    return codes


def words_file(lower: set[str], proper: set[str], lemmas: dict[str, str]) -> bytes:
    """The xz-compressed words table: a JSON header line, the front-coded words, their fields."""
    words = sorted(lower | proper | set(lemmas))
    if any(c in w for w in words for c in "\t\n"):
        raise SystemExit("a word holds a tab or newline: the table layout cannot store it")
    fields = [("h" if w in lower else "p" if w in proper else "-") + lemmas.get(w, "")
              for w in words]
    header = {"format": _tables.FORMAT, "spylls": metadata.version("spylls"),
              "lemminflect": metadata.version("lemminflect"), "words": len(words),
              "block": BLOCK}
    text = "\n".join([json.dumps(header), *_front_coded(words, BLOCK), *fields])
    return lzma.compress(text.encode(), preset=9 | lzma.PRESET_EXTREME)


#: unit words that compound units are made of, as answers write them
_NUMERATORS = """km m cm mm mi mile miles ft foot feet in inch inches yd yard yards kg g mg lb
    lbs pound pounds oz ounce ounces t ton tons tonne tonnes l L liter liters litre litres ml mL
    gal gallon gallons kWh Wh W kW MW GW J kJ MJ cal kcal N Pa kPa V A mA Hz kHz MHz GHz B kB KB
    MB GB TB bit bits byte bytes meter meters metre metres kilometer kilometers kilometre
    kilometres gram grams kilogram kilograms""".split()
_DENOMINATORS = """s sec second seconds min minute minutes h hr hrs hour hours d day days wk
    week weeks month months yr year years km m mi mile ft l L kg g gal""".split()
_MODIFIED = """meter meters metre metres m km kilometer kilometers mile miles mi foot feet ft
    inch inches in yard yards yd centimeter centimeters cm millimeter millimeters mm ton tons
    tonne tonnes ounce ounces oz gallon gallons year years mile pint pints quart quarts cup
    cups""".split()
_SYMBOLS = [s.strip() for s in """°C, °F, °K, ° C, ° F, ºC, ºF, degC, degF, deg C, deg F,
    degrees C, degrees F, degree Celsius, degrees Celsius, degree Fahrenheit, degrees Fahrenheit,
    degrees celsius, degrees fahrenheit, Celsius, Fahrenheit, Kelvin, kelvin, µm, μm, µg, μg,
    µs, μs, Ω, kΩ, light year, light years, nautical mile, nautical miles, fluid ounce,
    fluid ounces, fl oz, metric ton, metric tons, short tons, long tons, US gallons""".split(",")]


def _phrases() -> list[str]:
    """Compound units an answer may write ("km/h", "miles per hour", "square feet", "m²")."""
    from moebench.scorers.entities import _MODIFIERS

    out = [f"{a}{sep}{b}" for a in _NUMERATORS for b in _DENOMINATORS
           for sep in ("/", " per ", " / ")]
    out += [f"{a}{power}" for a in _NUMERATORS + _MODIFIED for power in ("²", "³", "^2", "^3")]
    out += [f"{mod} {unit}" for mod in sorted(_MODIFIERS) for unit in _MODIFIED]
    out += _SYMBOLS
    return sorted({p for p in out if len(p) <= 40})


def units_file() -> str:
    """pint's names, prefixes and suffixes as `_units` reads them, and its answers for common
    compound units (JSON, compressed by `main`)."""
    from moebench.scorers._units import _registry, candidate_unit

    registry = _registry()
    units = {key: [d.name, int(d.is_multiplicative)] for key, d in registry._units.items()}
    phrases = {p: candidate_unit(None, p) for p in _phrases()}
    return json.dumps({
        "format": _tables.FORMAT, "pint": metadata.version("pint"),
        "prefixes": [[key, d.name] for key, d in registry._prefixes.items()],
        "suffixes": [[key, value] for key, value in registry._suffixes.items()],
        "units": dict(sorted(units.items())), "phrases": phrases,
    }, ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n"


def check_neighbours(dictionary: Any, lower: set[str], proper: set[str], n: int) -> int:
    """Words spylls judges otherwise than the tables, over the one-edit neighbours of `n`
    random table words (the shapes the lexicon asks about)."""
    from moebench.scorers._lexicon import _neighbours

    rng = random.Random(7)
    sample = rng.sample(sorted(lower | proper), n)
    queries = {q for w in sample for q in _neighbours(w)} | set(sample)
    wrong = [q for q in queries if bool(dictionary.lookup(q)) != (q in lower)]
    wrong += [q for q in queries if q not in lower and (
        bool(dictionary.lookup(q.capitalize()) or dictionary.lookup(q.upper())) != (q in proper))]
    print(f"checked {len(queries):,} neighbours: {len(wrong)} differ {wrong[:10]}")
    return len(wrong)


def main() -> None:
    """Write both tables (and optionally check the expansion's completeness)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=int, default=0, metavar="N",
                        help="also compare spylls on the neighbours of N random words")
    args = parser.parse_args()
    from spylls.hunspell import Dictionary

    dictionary = Dictionary.from_files("en_US")
    lower, proper = hunspell_tables(dictionary)
    _tables.DATA_DIR.mkdir(parents=True, exist_ok=True)
    data = words_file(lower, proper, lemma_fields())
    (_tables.DATA_DIR / _tables.WORDS_FILE).write_bytes(data)
    units = lzma.compress(units_file().encode(), preset=9 | lzma.PRESET_EXTREME)
    (_tables.DATA_DIR / _tables.UNITS_FILE).write_bytes(units)
    print(f"{len(lower):,} words, {len(proper):,} proper nouns/acronyms; "
          f"{_tables.WORDS_FILE} {len(data) / 1024:.0f} KiB, {_tables.UNITS_FILE} "
          f"{len(units) / 1024:.0f} KiB")
    if args.check and check_neighbours(dictionary, lower, proper, args.check):
        sys.exit(1)


if __name__ == "__main__":
    main()
