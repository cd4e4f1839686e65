"""Fuzz: the suite loader on generated and mutated suites gives valid suites or error lines.

Every result must be either a valid Suite with no errors, or no suite and error lines in
the `file:line: field: message` form, never an exception, never a hang: deleted keys, wrong
types, unicode, a BOM, tabs, binary bytes, alias bombs, deep nesting, huge numbers and
format specs, plus a 10 MB suite. Fixed example budgets, derandomized.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moebench.suites.loader import check_paths

STRUCTURED = 1_200
TEXTUAL = 900
LINE = re.compile(r"^.+?:\d+: \S.*: .+")
def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))

BASE: dict[str, Any] = {
    "suite": "fuzz", "description": "d", "options": {"temperature": 0, "seed": 7},
    "tasks": [
        {"name": "arith", "scorer": "number", "prompt": "Q: {question}",
         "cases": [{"id": "a", "question": "1+1", "expected": 2},
                   {"id": "b", "prompt": "whole prompt", "expected": 3.5}]},
        {"name": "sum", "scorer": {"type": "summary", "max_sentences": 2},
         "prompt": "Summarise: {text}", "system": "Be brief about {text}",
         "cases": [{"id": "s", "text": "t", "must_mention": ["cat"], "reference": "r"}]},
        {"name": "ent", "scorer": "entities", "prompt": "{q}",
         "cases": [{"id": "e", "q": "x", "expected": [{"value": 5, "unit": "km"}]}]},
        {"name": "re", "scorer": {"type": "regex", "pattern": "(\\d+) km"}, "prompt": "{q}",
         "cases": [{"id": "r", "q": "x"}]},
        {"name": "words", "scorer": "word_length", "prompt": "{count} words of {letters}",
         "cases": [{"id": "w", "count": 3, "letters": 5}]},
    ],
}

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=2),
    st.sampled_from(["{q:>999999999}", "{q:>2000000000}", "{0}", "{q.__class__}", "{", "}",
                     "{nope}", "(unclosed", 10**400, -(10**30), float("inf"), float("nan"),
                     "\ufeff", "\t", "ünï©ødé ✓ 🚀", "\x00", "", "nubmer", "expcted"]),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value if action == "replace" else data
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "rename" and isinstance(last, str):
        parent[last + "x"] = parent.pop(last)
    return data


@st.composite
def mutated_suites(draw: st.DrawFn) -> str:
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "replace", "replace", "rename"]))
        data = _mutate(data, path, action, draw(ODD))
    try:
        return yaml.dump(data, Dumper=DUMPER, allow_unicode=draw(st.booleans()))
    except (yaml.YAMLError, ValueError, OverflowError):
        return "tasks: 1\n"


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
BASE_TEXT = yaml.dump(BASE, Dumper=DUMPER)
BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
TEXT_EDITS = st.sampled_from([
    "\ufeff", "\t", "\x00", "\x07", "\xff", "\ud800", "  ", "\n", ":", "- ", "&a ", "*a", "!!int ",
    "!!float ", "!!binary ", "!!python/object ", "'", '"', "[", "{", "}", "]", "#", "|", ">",
    "? ", "%YAML 1.1\n", "---\n", "...\n", "9" * 5000, "1" + "0" * 320, BOMB, "[" * 900,
    "- " * 200, "ünï©ødé 🚀",
])


@st.composite
def edited_texts(draw: st.DrawFn) -> bytes:
    text = BASE_TEXT
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        text = text[:at] + draw(TEXT_EDITS) + text[at + cut:]
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=4)) + raw[at:]
    return raw


def _check(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(raw)
    suites, errors = check_paths([path])
    assert bool(suites) != bool(errors), (suites, errors)
    for line in errors:
        assert LINE.match(line) and "\n" not in line, line


@_settings(STRUCTURED)
@given(mutated_suites())
def test_mutated_suites_load_or_give_error_lines(tmp_path: Path, text: str) -> None:
    _check(tmp_path, text.encode("utf-8", "surrogatepass"))


@_settings(TEXTUAL)
@given(edited_texts())
def test_edited_texts_load_or_give_error_lines(tmp_path: Path, raw: bytes) -> None:
    _check(tmp_path, raw)


def test_the_base_suite_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(BASE_TEXT)
    suites, errors = check_paths([path])
    assert errors == [] and suites[0].n_cases == 6


def test_a_10_mb_suite_validates(tmp_path: Path) -> None:
    cases = [{"id": f"c{i}", "question": "x" * 5_000, "expected": i} for i in range(2_000)]
    data = {"tasks": [{"name": "t", "scorer": "number", "prompt": "{question}",
                       "cases": cases}]}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.dump(data, Dumper=DUMPER, width=10**9))
    assert path.stat().st_size > 10_000_000
    suites, errors = check_paths([path])
    assert errors == [] and suites[0].n_cases == 2_000
