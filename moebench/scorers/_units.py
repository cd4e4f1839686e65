"""Canonical unit names, so "km", "kilometres" and "kilometers" compare equal.

Physical units go through pint's registry (plural, British spelling and abbreviations
included: "kilometres" → "kilometer", "mph" → "mile_per_hour"); currencies and percent use a
small table (pint has no money); any other word is a counted noun, reduced to its lemma by
lemminflect ("packages" → "package", "persons" → "person"), with people ≡ person. Answers are
kept between processes (`_memo.DiskMemo`), so a unit already seen needs neither pint nor
lemminflect loaded. A new one-word unit needs no pint either: pint's names, prefixes and plural
suffixes come from a prebuilt table (`_tables.units()`) and are combined here as pint combines
them; lemminflect's dictionary answers come from `_tables.lemmas()`. The libraries load only for
what the tables cannot answer (several words, symbols, a word lemminflect does not know) or when
an installed version differs from the tables'.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import Any

from moebench.scorers import _tables
from moebench.scorers._memo import DiskMemo

_ALIASES = {
    "$": "USD", "us$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "buck": "USD",
    "bucks": "USD", "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "£": "GBP",
    "gbp": "GBP", "sterling": "GBP", "¥": "JPY", "jpy": "JPY", "yen": "JPY", "cad": "CAD",
    "aud": "AUD", "inr": "INR", "rupee": "INR", "rupees": "INR", "chf": "CHF", "cny": "CNY",
    "yuan": "CNY", "%": "percent", "percent": "percent", "per cent": "percent", "pct": "percent",
    "percentage": "percent", "people": "person", "persons": "person", "person": "person",
    "kilo": "kilogram", "kilos": "kilogram",  # pint reads "kilos" as kiloseconds
}
#: what the units table resolves alone: one identifier, which pint's parser reads as one name
_ONE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: words after a number that are not its unit ("5 of them", "42 in total", "3 is odd")
_STOPWORDS = frozenset(
    "a an the of and or in on at to for from by with as is are was were be been it its this "
    "that these those than then so but if per each which who what when where times x".split())


@cache
def _registry() -> Any:
    import pint

    try:  # pint's parsed-definitions cache (user cache dir): 10x faster set-up after the first
        return pint.UnitRegistry(cache_folder=":auto:")
    except (OSError, ValueError, TypeError):  # read-only home or no platformdirs: parse afresh
        return pint.UnitRegistry()


def is_stopword(word: str) -> bool:
    """True for function words that follow numbers without being their unit."""
    return word.lower() in _STOPWORDS


def _pint_unit(text: str) -> str | None:
    if len(text) > 40:  # no unit name is this long; pint's parser is not made for prose
        return None
    table = _tables.units()
    for candidate in dict.fromkeys((text, text.lower())):
        if unit := candidate_unit(table, candidate):
            return unit
    return None


def candidate_unit(table: dict[str, Any] | None, candidate: str) -> str | None:
    """The canonical unit pint reads in `candidate` as written (None: none): from the table's
    phrases ("km/h", "square feet") or its one-word resolution when it can, else from pint."""
    if table is not None and candidate in table["phrases"]:
        return table["phrases"][candidate]  # pint's answer, compacted, stored by the build
    if table is not None and _ONE_WORD.fullmatch(candidate):
        name = _table_unit(table, candidate)
    else:
        name = _parsed_unit(candidate)
    return _compact(name) if name and name != "dimensionless" else None


def _parsed_unit(candidate: str) -> str | None:
    """What pint's parser makes of `candidate` (None when it is no unit expression)."""
    try:
        unit = _registry().parse_units(candidate.replace("²", "**2").replace("³", "**3"))
    except Exception:  # noqa: BLE001 - pint's parser raises many types ("1/0": ZeroDivision-
        return None  # Error, "km/": tokenize.TokenError, AssertionError): all mean "not a unit"
    return str(unit)


def _table_unit(table: dict[str, Any], word: str) -> str | None:
    """pint's canonical name for the one-word unit `word`, from the table, the way
    `UnitRegistry.parse_units` finds it: a name, symbol or alias as written, else the
    first (prefix, unit, plural suffix) split, a prefixed split winning over an unprefixed
    one of the same name; a prefix on an offset unit (°C) is an error."""
    units = table["units"]
    if word == "dimensionless" or word.lower() == "nan":  # pint: no unit / a NaN scale
        return None
    if word in units:
        return units[word][0]
    splits = dict.fromkeys(_splits(table, word))
    for prefix, unit in list(splits):
        if prefix:
            splits.pop(("", prefix + unit), None)
    if not splits:
        return None
    prefix, unit = next(iter(splits))
    return None if prefix and not units[unit][1] else prefix + unit


def _splits(table: dict[str, Any], word: str) -> Iterator[tuple[str, str]]:
    """(prefix name, unit name) for each way `word` is prefix + unit + suffix, in pint's order."""
    units = table["units"]
    for suffix, _ in table["suffixes"]:
        for prefix, prefix_name in table["prefixes"]:
            if word.startswith(prefix) and word.endswith(suffix):
                name = word[len(prefix):len(word) - len(suffix)]
                if suffix and len(name) == 1:
                    continue
                if name in units:
                    yield prefix_name, units[name][0]


def _compact(name: str) -> str:
    # "miles per hour" parses to "mile / hour" but "mph" to "mile_per_hour": use the latter.
    joined = name.replace(" / ", "_per_")
    if joined != name and " " not in joined:
        try:
            if str(_registry().parse_units(joined)) == joined:
                return joined
        except Exception:  # noqa: BLE001 - any pint failure means "keep the plain name"
            pass
    return name


_MEMO = DiskMemo("units", [__file__, _tables.__file__, *_tables.FILES], ("pint", "lemminflect"))


@lru_cache(maxsize=8192)
def is_noun(word: str) -> bool:
    """True when `word` can be a noun (lemminflect's lexicon; unknown words count as nouns)."""
    return _MEMO.get(f"noun:{word}", lambda: _is_noun(word))


def _is_noun(word: str) -> bool:
    table = _tables.lemmas()
    if table is not None:
        known = table.noun(word.lower())
        return word.isalpha() if known is None else known[0]
    from lemminflect import getAllLemmas

    lemmas = getAllLemmas(word.lower())
    return "NOUN" in lemmas or "PROPN" in lemmas or (not lemmas and word.isalpha())


def _lemma(word: str) -> str:
    table = _tables.lemmas()
    known = table.noun(word.lower()) if table is not None else None
    if known is not None and known[1] is not None:
        return known[1]
    if table is not None:  # not in lemminflect's dictionary as a noun: its rules decide
        from lemminflect import getAllLemmasOOV

        lemmas = next(iter(getAllLemmasOOV(word.lower(), "NOUN").values()), ())
    else:
        from lemminflect import getLemma

        lemmas = getLemma(word.lower(), upos="NOUN")
    return lemmas[0] if lemmas else word.lower()


@lru_cache(maxsize=8192)
def canonical_unit(text: str, nouns: bool = True) -> str | None:
    """Canonical form of a unit; None when `nouns` is False and it is not a known unit."""
    return _MEMO.get(f"unit:{int(nouns)}:{text}", lambda: _canonical_unit(text, nouns))


def _canonical_unit(text: str, nouns: bool) -> str | None:
    text = re.sub(r"\s+", " ", text.strip(" .,;:*_`\"'()")).strip()
    if not text:
        return ""
    alias = _ALIASES.get(text.lower())
    if alias:
        return alias
    if not is_stopword(text) and (unit := _pint_unit(text)):
        return unit
    if not nouns:
        return None
    lemma = _lemma(text.split(" ")[-1])
    return _ALIASES.get(lemma, lemma)
