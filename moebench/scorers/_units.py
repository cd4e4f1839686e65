"""Canonical unit names, so "km", "kilometres" and "kilometers" compare equal.

Physical units go through pint's registry (plural, British spelling and abbreviations
included: "kilometres" → "kilometer", "mph" → "mile_per_hour"); currencies and percent use a
small table (pint has no money); any other word is a counted noun, reduced to its lemma by
lemminflect ("packages" → "package", "persons" → "person"), with people ≡ person. Answers are kept between processes (`_memo.DiskMemo`), so a unit
already seen needs neither pint nor lemminflect loaded.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

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
    registry = _registry()
    if len(text) > 40:  # no unit name is this long; pint's parser is not made for prose
        return None
    for candidate in dict.fromkeys((text, text.lower())):
        try:
            unit = registry.parse_units(candidate.replace("²", "**2").replace("³", "**3"))
        except Exception:  # noqa: BLE001 - pint's parser raises many types ("1/0": ZeroDivision-
            continue  # Error, "km/": tokenize.TokenError, AssertionError): all mean "not a unit"
        name = str(unit)
        if name and name != "dimensionless":
            return _compact(name)
    return None


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


_MEMO = DiskMemo("units", [__file__], ("pint", "lemminflect"))


@lru_cache(maxsize=8192)
def is_noun(word: str) -> bool:
    """True when `word` can be a noun (lemminflect's lexicon; unknown words count as nouns)."""
    return _MEMO.get(f"noun:{word}", lambda: _is_noun(word))


def _is_noun(word: str) -> bool:
    from lemminflect import getAllLemmas

    lemmas = getAllLemmas(word.lower())
    return "NOUN" in lemmas or "PROPN" in lemmas or (not lemmas and word.isalpha())


def _lemma(word: str) -> str:
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
