"""The scorers' prebuilt tables (`moebench.scorers._tables`) give the libraries' very answers.

Each parity test computes the same look-ups twice, from the tables and with them switched off
(the libraries themselves: spylls, lemminflect, pint), on a fixed random sample large enough to
cover every kind of word the scorers meet. A failure after a library upgrade means: run
`python scripts/build_scorer_tables.py` (the tables name the versions they came from, and with
others installed the scorers already use the libraries, so users never see stale answers).
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import pytest

from moebench.scorers import _lexicon, _tables, _units

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
#: words a model might list, beyond the random samples: inflections, British spellings,
#: apostrophes, numbers and ordinals, case variants, hyphenated parts, mashes
HAND_PICKED = """
    garden gardens gardening gardened colour colours coloured organise organised organising
    travelling travelled centre centres theatre catalogue defence licence aeroplane
    manoeuvre paediatric foetus programme don't dog's o'clock it's children's cat’s
    123 3rd 1st 21st 4th x2 a1 NASA Nasa nasa Paris paris PARIS iPhone iphone McDonald
    mcdonald XINGS xings inv reers Xings well known mother in law x ray e mail co op
    aaa aaaa zzz hmmmm brrr ok okay emoji emojis selfie chatbot livestreaming googled
    teh recieve untill occured tommorow reccomend definately seperate wierd goverment
    asdfgh qwerty zxcvbn lol omg brb thx pls
""".split()


def _both(compute: Callable[[str], T], items: Sequence[str],
          monkeypatch: pytest.MonkeyPatch) -> tuple[list[T], list[T]]:
    """`compute` over `items` from the tables, then from the libraries (tables off)."""
    _tables.clear()
    with_tables = [compute(item) for item in items]
    monkeypatch.setenv("MOEBENCH_SCORER_TABLES", "off")
    _tables.clear()
    try:
        live = [compute(item) for item in items]
    finally:
        monkeypatch.delenv("MOEBENCH_SCORER_TABLES")
        _tables.clear()
    return with_tables, live


def _differences(items: Sequence[str], ours: list[T], theirs: list[T]) -> list[tuple[str, T, T]]:
    return [(i, a, b) for i, a, b in zip(items, ours, theirs) if a != b]


def _table_words(mark: Callable[[str], bool]) -> list[str]:
    table = _tables.hunspell()
    assert table is not None, "tables stale: run scripts/build_scorer_tables.py"
    return [w for w, fields in table.items() if mark(fields)]


def _probe_words() -> list[str]:
    """benchmarks/word_coverage.py's modern, inflected and bad words."""
    spec = importlib.util.spec_from_file_location("word_coverage",
                                                  REPO / "benchmarks" / "word_coverage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [*module.MODERN, *module.INFLECTED, *module.NEGATIVE]


def _word_sample() -> list[str]:
    """About 4,000 words of every kind `why_not_word` judges (seeded)."""
    rng = random.Random(18)
    accepted = _table_words(lambda f: f[0] == "h")
    proper = _table_words(lambda f: f[0] == "p")
    others = _table_words(lambda f: f[0] == "-")
    frequent = sorted(w for w in _lexicon._frequencies() if w.isalpha())
    webster = sorted(_lexicon._webster())
    inflected = [w for w in accepted if w.endswith(("s", "ed", "ing", "er", "est", "ly"))]
    misspelt = [rng.choice(sorted(_lexicon._neighbours(w))) for w in rng.sample(accepted, 600)]
    mashes = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
              for _ in range(200)]
    return [*HAND_PICKED, *_probe_words(), *rng.sample(accepted, 700), *rng.sample(inflected, 400),
            *rng.sample(proper, 300), *rng.sample(others, 200), *rng.sample(frequent, 600),
            *rng.sample(webster, 400), *misspelt, *mashes,
            *(w.capitalize() for w in rng.sample(accepted, 100)),
            *(w.upper() for w in rng.sample(proper, 100))]


def test_tables_come_from_the_installed_libraries() -> None:
    """The shipped tables name the installed versions (else: rebuild them)."""
    words = _tables._words()
    units = _tables.units()
    assert words is not None and units is not None, "run scripts/build_scorer_tables.py"
    header = words[0]
    for library in ("spylls", "lemminflect"):
        assert header[library] == metadata.version(library), "run scripts/build_scorer_tables.py"
    assert _tables.hunspell() is not None and _tables.lemmas() is not None


def test_why_not_word_is_the_same_with_and_without_tables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    words = _word_sample()
    assert len(words) > 4000
    ours, theirs = _both(_lexicon._why_not_word, words, monkeypatch)
    assert _differences(words, ours, theirs) == []
    verdicts = set(ours)  # the sample reaches every verdict
    assert {None, "not a word", "proper noun", "misspelling", "not a single word"} <= verdicts


def test_hunspell_marks_match_spylls_on_neighbours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dictionary look-ups of one-edit neighbours (what the misspelling check asks), as
    written, capitalised and in capitals: the shapes the lexicon passes to Hunspell."""
    rng = random.Random(8)
    seeds = rng.sample(_table_words(lambda f: f[0] != "-"), 60) + ["xing", "ax", "don't"]
    queries = sorted({q for w in seeds for q in _lexicon._neighbours(w)} | set(seeds))
    assert len(queries) > 20_000

    def verdict(word: str) -> tuple[bool, bool]:
        accepted = _lexicon._in_dictionary(word)
        return accepted, accepted or _lexicon._proper_or_acronym(word)

    ours, theirs = _both(verdict, queries, monkeypatch)
    assert _differences(queries, ours, theirs) == []


def _lemma_sample() -> list[str]:
    rng = random.Random(5)
    table = _tables.lemmas()
    assert table is not None
    known = [w for w, fields in table.items() if len(fields) > 1]
    unknown = [w for w, fields in table.items() if len(fields) == 1]
    return [*HAND_PICKED, *rng.sample(known, 3000), *rng.sample(unknown, 300),
            *(w.capitalize() for w in rng.sample(known, 200)), "km2", "m/s", "x-ray", "3d"]


def test_nouns_and_lemmas_are_the_same_with_and_without_tables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    words = _lemma_sample()
    ours, theirs = _both(lambda w: (_units._is_noun(w), _units._lemma(w)), words, monkeypatch)
    assert _differences(words, ours, theirs) == []
    assert {True, False} <= {noun for noun, _ in ours}


def _unit_sample(table: dict[str, Any]) -> list[str]:
    """Every name, symbol and alias bare and plural, 12,000 random prefix + unit + suffix
    combinations (some in capitals), words and near misses."""
    rng = random.Random(3)
    names = [k for k in table["units"] if _units._ONE_WORD.fullmatch(k)]
    prefixes = [p for p, _ in table["prefixes"]]
    combos = [rng.choice(prefixes) + rng.choice(names) + rng.choice(["", "s"])
              for _ in range(12_000)]
    words = rng.sample(_table_words(lambda f: True), 2000)
    return [*names, *(n + "s" for n in names), *combos, *(c.upper() for c in combos[:500]),
            *(c.capitalize() for c in combos[500:1000]), *words, *HAND_PICKED,
            "nan", "NaN", "dimensionless", "units", "degC", "kilodegC", "mph", "kph", "sqft",
            "inf", "Infinity", "m2", "km2", "c_0", "water_density_4C", "mile_per_hour",
            "kilometer_per_hour", "foo_bar", "x1", "in2", "ft3"]


def test_one_word_units_are_the_same_with_and_without_the_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    table = _tables.units()
    assert table is not None, "run scripts/build_scorer_tables.py"
    texts = _unit_sample(table)
    assert len(texts) > 15_000
    ours, theirs = _both(_units._pint_unit, texts, monkeypatch)
    assert _differences(texts, ours, theirs) == []
    assert sum(u is not None for u in ours) > 5_000  # the sample is mostly units


def test_compound_unit_phrases_are_pints_answers() -> None:
    """The table's compound units ("km/h", "square feet", "°C") as pint reads them today."""
    table = _tables.units()
    assert table is not None
    phrases = sorted(table["phrases"])
    assert len(phrases) > 5000
    live = [_units.candidate_unit(None, p) for p in phrases]
    assert _differences(phrases, [table["phrases"][p] for p in phrases], live) == []


UNIT_TEXTS = [
    "km", "kilometres", "kilometers", "Kilometers", "KM", "kg", "kilos", "mph", "miles per hour",
    "km/h", "m/s", "m²", "km²", "m³", "square feet", "sq ft", "cubic meters", "°C", "°F", "degC",
    "degrees Celsius", "hours", "hrs", "min", "seconds", "ms", "GB", "MB", "kWh", "people",
    "persons", "dollars", "$", "€", "%", "percent", "packages", "apples", "large boxes",
    "light years", "nautical miles", "fluid ounces", "fl oz", "tbsp", "tablespoons", "cups",
    "units", "2 hours per day", "in", "of", "the", "", "  ", "(km)", "km.", "**kg**", "1/0",
    "km/", "x" * 50, "metric tons", "tonnes", "feet", "foot", "inches", "yards", "acres",
]


def test_canonical_units_are_the_same_with_and_without_tables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole `_canonical_unit` answers, several words and symbols included (those still go
    to pint), with and without noun lemmas."""
    def canonical(text: str) -> tuple[str | None, str | None]:
        return _units._canonical_unit(text, True), _units._canonical_unit(text, False)

    ours, theirs = _both(canonical, UNIT_TEXTS, monkeypatch)
    assert _differences(UNIT_TEXTS, ours, theirs) == []


def test_a_table_from_other_library_versions_is_not_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = _tables._words()
    assert real is not None
    _tables.clear()
    monkeypatch.setattr(_tables, "_words", lambda: ({**real[0], "spylls": "0.0.1"}, real[1]))
    try:
        assert _tables.hunspell() is None  # the spylls part is stale: spylls answers
        assert _tables.lemmas() is not None  # the lemminflect part still matches
        assert _lexicon._why_not_word("gardens") is None
        assert _lexicon._why_not_word("recieve") == "misspelling"
    finally:
        _tables.hunspell.cache_clear()
        _tables.lemmas.cache_clear()


def test_word_table_lookups_at_the_edges() -> None:
    table = _tables.hunspell()
    assert table is not None
    entries: Iterator[tuple[str, str]] = table.items()
    words = [w for w, _ in entries]
    assert words == sorted(words) and len(words) == len(set(words)) > 100_000
    for word in (words[0], words[-1], words[31], words[32], words[33]):
        assert table.fields(word) is not None  # block starts and ends
    for absent in ("", "\t", "a\tb", words[0][:-1] if len(words[0]) > 1 else "!", "~~~",
                   words[-1] + "zz", "gardenz"):
        assert table.fields(absent) is None
    assert _tables.apply_edit("berries", "-3y") == "berry"
    assert _tables.apply_edit("children", "-3") == "child"
    assert _tables.apply_edit("people", "!person") == "person"
    assert _tables.apply_edit("sheep", "=") == "sheep"
