"""entities cases: short texts built from (value, unit) pairs, with distractors.

Each text is assembled from 2-4 facts, each a phrase around one (value, unit) pair drawn
from FACTS; the expected list is exactly those pairs. Distractors the prompt tells the model
to leave out surround them: a calendar date or year, an ordinal ("the 3rd stage"), and in
some texts the facts are written as a numbered list ("1) ... 2) ..."), whose numbering is
not a value either.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from moebench.suites.generators import Cases, Family, rng

#: (phrase with {v}, unit written in `expected`, lowest, highest, step)
FACTS: tuple[tuple[str, str, float, float, float], ...] = (
    ("hiked {v} km", "km", 3, 45, 0.5),
    ("carried {v} kg of supplies", "kg", 2, 80, 1),
    ("bought {v} liters of water", "liters", 2, 60, 1),
    ("paid ${v} for the permits", "dollars", 15, 4000, 5),
    ("spent €{v} on food", "euros", 10, 900, 1),
    ("counted {v} birds", "birds", 12, 400, 1),
    ("waited {v} minutes for the ferry", "minutes", 5, 95, 5),
    ("rested for {v} hours", "hours", 1, 12, 0.5),
    ("climbed {v} meters", "meters", 120, 3200, 10),
    ("packed {v} boxes", "boxes", 3, 250, 1),
    ("used {v} grams of salt", "grams", 50, 900, 25),
    ("welcomed {v} people", "people", 8, 2500, 1),
    ("cut costs by {v}%", "percent", 3, 60, 1),
    ("drove {v} miles", "miles", 12, 600, 1),
    ("planted {v} trees", "trees", 5, 700, 1),
)
SUBJECTS = ("The hiking club", "Our volunteer team", "The school trip", "A film crew",
            "The survey group", "The rowing squad", "A family of four", "The festival staff")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
ORDINALS = ("2nd", "3rd", "4th", "5th", "6th", "11th", "21st")


def _value(r: random.Random, low: float, high: float, step: float) -> int | float:
    value = low + step * r.randint(0, int((high - low) / step))
    return int(value) if float(value).is_integer() else value


def _shown(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _opening(r: random.Random) -> str:
    year = r.randint(1995, 2025)
    if r.random() < 0.5:
        return f"On {r.randint(1, 28)} {r.choice(MONTHS)} {year}, "
    return f"In {r.choice(MONTHS)} {year}, "


def text_and_pairs(r: random.Random) -> tuple[str, list[dict[str, Any]]]:
    """One text and its expected (value, unit) pairs."""
    facts = r.sample(FACTS, r.randint(2, 4))
    pairs = [{"value": _value(r, lo, hi, st), "unit": unit} for _, unit, lo, hi, st in facts]
    phrases = [p.format(v=_shown(pair["value"])) for (p, *_), pair in zip(facts, pairs)]
    subject = r.choice(SUBJECTS)
    ordinal = f"during its {r.choice(ORDINALS)} outing"
    if r.random() < 0.3:  # numbered list: the numbering is a distractor
        items = " ".join(f"{i}) it {p};" for i, p in enumerate(phrases, 1)).rstrip(";")
        text = f"{_opening(r)}{subject.lower()} logged {ordinal}: {items}."
    else:
        body = ", ".join(phrases[:-1]) + f" and {phrases[-1]}"
        text = f"{_opening(r)}{subject.lower()} {body} {ordinal}."
    return text[0].upper() + text[1:], pairs


def make(n: int | None, seed: int, variants: int = 0) -> Cases:
    """n texts, each from its own random stream."""
    cases: Cases = []
    for i in range(n or 0):
        text, pairs = text_and_pairs(rng("entities", seed, i))
        cases.append({"id": f"g-{i + 1:04d}", "text": text, "expected": pairs})
    return cases


def reference(case: Mapping[str, Any]) -> str:
    """The expected pairs as a bulleted list."""
    names = {"dollars": "dollars", "euros": "euros", "percent": "percent"}
    return "\n".join(f"- {_shown(p['value'])} {names.get(p['unit'], p['unit'])}"
                     for p in case["expected"])


FAMILY = Family(
    name="entities", make=make, reference=reference, scorer="entities",
    prompt="Extract all numerical values and their corresponding units from the text. Do not "
           "list calendar dates (such as 4 July 2010), calendar years (such as 1999), ordinals "
           "(such as 3rd) or list numbering.\nText: {text}",
    description="(value, unit) extraction from generated texts with dates, years, ordinals "
                "and list numbering as distractors.",
    options={"temperature": 0, "seed": 7, "max_tokens": 512})
