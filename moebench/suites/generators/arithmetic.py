"""Arithmetic word problems from templates, answers computed exactly (fractions.Fraction).

Each template draws names and numbers from the case's own random stream and returns the
question, the calculation (`work`, plain + - * / // over numbers, which tests re-evaluate)
and the exact answer; a draw whose answer is not a positive number with at most two
decimals is drawn again. Templates cover money with change, percentages (discounts, growth,
tips), fractions of a remainder, rates, averages, ratios, unit conversions and rounding up.

`variants: K` (GSM-Symbolic, Mirzadeh et al. 2024): every problem is instantiated K more
times from the same template with new names and numbers. Cases carry `template`,
`variant` (0 = the original) and `variant_of` (the original's id), so the report can show
accuracy on originals against variants and the spread across instantiations.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from moebench.suites.generators import Cases, Family, rng

Draw = tuple[str, str, Fraction]
NAMES = ("Ava", "Ben", "Chloe", "Diego", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kemi", "Liam", "Maya", "Nikhil", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara",
         "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe")
ITEMS = (("notebook", "notebooks"), ("pen", "pens"), ("apple", "apples"), ("mug", "mugs"),
         ("ticket", "tickets"), ("candle", "candles"), ("sticker", "stickers"),
         ("muffin", "muffins"), ("plant", "plants"), ("battery", "batteries"))
THINGS = ("marbles", "stamps", "cards", "beads", "shells", "coins", "seeds", "stickers")
GOODS = ("bicycle", "guitar", "tablet", "camera", "telescope", "skateboard")


def _money(value: Fraction | int) -> str:
    value = Fraction(value)
    return f"${float(value):,.2f}" if value.denominator != 1 else f"${int(value):,}"


def _num(value: Fraction | int) -> str:
    value = Fraction(value)
    return f"{float(value):g}" if value.denominator != 1 else f"{int(value):,}"


def _two(r: random.Random) -> tuple[str, str]:
    a, b = r.sample(NAMES, 2)
    return a, b


def change(r: random.Random) -> Draw:
    name = r.choice(NAMES)
    (i1, p1), (i2, p2) = r.sample(ITEMS, 2)
    a, b = r.randint(2, 9), r.randint(2, 9)
    pa, pb = Fraction(r.randint(4, 60), 4), Fraction(r.randint(2, 40), 2)
    cost = a * pa + b * pb
    bill = next(v for v in (20, 50, 100, 200, 500) if v > cost)
    q = (f"{name} buys {a} {p1} at {_money(pa)} each and {b} {p2} at {_money(pb)} each, "
         f"paying with a {_money(bill)} bill. How many dollars of change does {name} get?")
    return q, f"{bill} - {a}*{float(pa)} - {b}*{float(pb)}", bill - cost


def discount(r: random.Random) -> Draw:
    name, good = r.choice(NAMES), r.choice(GOODS)
    price, pct, coupon = 20 * r.randint(3, 40), r.choice((10, 15, 20, 25, 30, 40)), r.randint(2, 15)
    q = (f"A {good} costs {_money(price)}. In a sale it is {pct}% off, and {name} then uses a "
         f"{_money(coupon)} coupon on the sale price. How many dollars does {name} pay?")
    return q, f"{price} * (100 - {pct}) / 100 - {coupon}", price * Fraction(100 - pct, 100) - coupon


def fraction_left(r: random.Random) -> Draw:
    a, b = _two(r)
    things = r.choice(THINGS)
    d1, d2 = r.choice((2, 3, 4, 5)), r.choice((3, 4, 5, 6))
    k = r.choice((1, 2)) if d2 > 3 else 1
    total = d1 * d2 * r.randint(2, 12)
    rest = total - Fraction(total, d1)
    q = (f"{a} has {total} {things}. {a} gives 1/{d1} of them to {b}, then uses {k}/{d2} of "
         f"the rest for a school project. How many {things} does {a} have left?")
    return q, f"({total} - {total}/{d1}) * ({d2} - {k}) / {d2}", rest * Fraction(d2 - k, d2)


def trip(r: random.Random) -> Draw:
    v1, t1 = r.choice((40, 48, 60, 72, 80, 90)), Fraction(r.randint(2, 8), 2)
    v2, m = r.choice((30, 36, 45, 50, 60)), r.choice((15, 20, 30, 40, 45))
    q = (f"A bus travels at {v1} kilometres per hour for {_num(t1)} hours, then at {v2} "
         f"kilometres per hour for {m} minutes. How many kilometres does it travel in total?")
    return q, f"{v1}*{float(t1)} + {v2}*{m}/60", v1 * t1 + Fraction(v2 * m, 60)


def packing(r: random.Random) -> Draw:
    workers, rate = r.randint(2, 9), r.randint(6, 30)
    hours = Fraction(r.randint(2, 20), 2)
    total = workers * rate * hours
    q = (f"Each of {workers} workers packs {rate} boxes per hour. Working together, how many "
         f"hours do they need to pack {_num(total)} boxes?")
    return q, f"{float(total)} / ({workers}*{rate})", total / (workers * rate)


def average(r: random.Random) -> Draw:
    name = r.choice(NAMES)
    scores = [r.randint(55, 98) for _ in range(4)]
    target = r.randint(70, 90)
    q = (f"{name} scored {', '.join(map(str, scores[:3]))} and {scores[3]} on four tests. "
         f"What score does {name} need on the fifth test for an average of exactly {target}?")
    return q, f"5*{target} - " + " - ".join(map(str, scores)), Fraction(5 * target - sum(scores))


def growth(r: random.Random) -> Draw:
    p1, p2 = r.choice((5, 10, 20, 25)), r.choice((4, 5, 10, 20))
    start = 100 * r.randint(4, 60)
    q = (f"A town has {start:,} residents. Its population grows by {p1}% in the first year "
         f"and by {p2}% in the second year. How many residents does it have after two years?")
    value = start * Fraction(100 + p1, 100) * Fraction(100 + p2, 100)
    whole = value if value.denominator == 1 else Fraction(-1)  # no fractional residents
    return q, f"{start} * (100 + {p1}) / 100 * (100 + {p2}) / 100", whole


def ratio(r: random.Random) -> Draw:
    a, b = _two(r)
    x, y = r.sample(range(1, 8), 2)
    total = (x + y) * r.randint(3, 60)
    q = (f"{a} and {b} share {_money(total)} in the ratio {x}:{y}. How many dollars does "
         f"{b} get?")
    return q, f"{total} * {y} / ({x} + {y})", Fraction(total * y, x + y)


def saving(r: random.Random) -> Draw:
    name, good = r.choice(NAMES), r.choice(GOODS)
    cost, saved, weekly = 5 * r.randint(40, 200), 5 * r.randint(2, 30), r.randint(7, 40)
    q = (f"{name} wants a {good} that costs {_money(cost)}, has saved {_money(saved)} and "
         f"saves {_money(weekly)} every week. After how many full weeks can {name} first "
         "afford it?")
    return q, f"-(({saved} - {cost}) // {weekly})", Fraction(-((saved - cost) // weekly))


def recipe(r: random.Random) -> Draw:
    serves, cups = r.choice((2, 4, 6, 8)), Fraction(r.randint(2, 12), 4)
    want = r.choice((3, 5, 6, 9, 10, 12, 16))
    q = (f"A recipe for {serves} servings uses {_num(cups)} cups of flour. How many cups of "
         f"flour are needed for {want} servings?")
    return q, f"{float(cups)} * {want} / {serves}", cups * want / serves


def tiling(r: random.Random) -> Draw:
    length, width = Fraction(r.randint(6, 24), 2), r.randint(3, 9)
    price, fee = r.randint(8, 35), 5 * r.randint(4, 30)
    q = (f"A floor is {_num(length)} metres long and {width} metres wide. Tiles cost "
         f"{_money(price)} per square metre and the tiler charges a {_money(fee)} fee. How "
         "many dollars does tiling the floor cost?")
    return q, f"{float(length)} * {width} * {price} + {fee}", length * width * price + fee


def split_bill(r: random.Random) -> Draw:
    meal, tip, people = 4 * r.randint(10, 60), r.choice((10, 15, 20, 25)), r.randint(2, 6)
    q = (f"A dinner costs {_money(meal)} before the tip. The group adds a {tip}% tip and "
         f"splits the total equally among {people} people. How many dollars does each pay?")
    return (q, f"{meal} * (100 + {tip}) / 100 / {people}",
            meal * Fraction(100 + tip, 100) / people)


def minutes_left(r: random.Random) -> Draw:
    name = r.choice(NAMES)
    hours, d1, d2 = r.randint(2, 6), r.choice((2, 3, 4, 5, 6)), r.choice((2, 3, 4, 5))
    total = 60 * hours
    q = (f"{name} has {hours} hours free. {name} spends 1/{d1} of that time reading and 1/{d2} "
         "of the remaining time cooking. How many minutes are left?")
    left = (total - Fraction(total, d1)) * Fraction(d2 - 1, d2)
    return q, f"(60*{hours} - 60*{hours}/{d1}) * ({d2} - 1) / {d2}", left


def litres(r: random.Random) -> Draw:
    bottles, ml = r.randint(3, 24), r.choice((250, 330, 500, 750, 1500))
    drunk = r.randint(1, bottles - 1)
    q = (f"A crate holds {bottles} bottles of {ml} millilitres each. After {drunk} bottles "
         "are drunk, how many litres are left in the crate?")
    return q, f"({bottles} - {drunk}) * {ml} / 1000", Fraction((bottles - drunk) * ml, 1000)


TEMPLATES: dict[str, Callable[[random.Random], Draw]] = {
    fn.__name__.replace("_", "-"): fn for fn in (
        change, discount, fraction_left, trip, packing, average, growth, ratio, saving,
        recipe, tiling, split_bill, minutes_left, litres)}


def _nice(value: Fraction) -> bool:
    return value > 0 and (value * 100).denominator == 1


def instantiate(template: str, r: random.Random) -> tuple[str, str, int | float]:
    """(question, work, expected) of `template`, drawing again until the answer is nice."""
    for _ in range(1000):
        question, work, value = TEMPLATES[template](r)
        if _nice(value):
            return question, work, int(value) if value.denominator == 1 else float(value)
    raise RuntimeError(f"template {template} gave no exact answer in 1000 draws")


def make(n: int | None, seed: int, variants: int = 0) -> Cases:
    """Case i uses template i mod 14; its variants redraw the same template."""
    names = list(TEMPLATES)
    cases: Cases = []
    for i in range(n or 0):
        template = names[i % len(names)]
        base = f"g-{i + 1:04d}-{template}"
        for v in range(variants + 1):
            q, work, expected = instantiate(template, rng("arithmetic", seed, i, v))
            case: dict[str, Any] = {"id": base if v == 0 else f"{base}-v{v}", "question": q,
                                    "work": work, "expected": expected, "template": template}
            if variants:
                case |= {"variant": v, "variant_of": base}
            cases.append(case)
    return cases


def reference(case: Mapping[str, Any]) -> str:
    """The worked answer with its final line."""
    return f"{case['work']} = {case['expected']}\nFinal answer: {case['expected']}"


FAMILY = Family(
    name="arithmetic", make=make, reference=reference, scorer="number",
    prompt="{question}\nThink step by step, then give the final answer on its own line as "
           "\"Final answer: <number>\".",
    description="Templated multi-step word problems (money, percentages, fractions, rates) "
                "with exactly computed answers.",
    options={"temperature": 0, "seed": 7, "max_tokens": 1024}, templated=True)
