"""Scoring speed: 10,000 realistic samples per scorer; the goal is ≤ 1 ms per sample.

Run: `python benchmarks/scorer_speed.py [--samples N]`. Samples are generated from templates
of the kind Mixtral/DBRX/DeepSeek write (step-by-step working, markdown lists, JSON, chatter,
refusals) with varied numbers and words, so no two texts are alike. One-time loading (word
lists, pint, pysbd, rouge) is timed apart as `load s`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from moebench.scorers import score_text
from moebench.types import ScorerSpec

Sample = tuple[str, dict]
WORDS7 = ("balance freedom journey kitchen website example harmony weather village "
          "texting walking studied planets selfies hashtag podcast malware recieve asdfghj "
          "chatbot barcode cabinet captain century chicken climate company concert").split()
NOUNS = "people kilometers km kg dollars packages boxes miles hours percent residents".split()


def _number(rng: random.Random) -> Sample:
    a, b, c = rng.randint(2, 90), rng.randint(2, 40), rng.randint(1, 9)
    total = a * b + c
    steps = (f"Let's think step by step.\n\n1. Each box holds {a} items, and there are {b} boxes:"
             f" {a} × {b} = <<{a}*{b}={a * b}>>{a * b}.\n2. Add the {c} loose ones: "
             f"{a * b} + {c} = {total:,}.\n\n")
    ending = rng.choice([f"The answer is {total:,}.", f"#### {total}", f"**Final Answer:** "
                         f"${total:,}.00", f"\\boxed{{{total}}}", f"So there are {total} in all."])
    return steps + ending + rng.choice(["", "\n\nLet me know if you have other questions!"]), {
        "expected": total}


def _word_length(rng: random.Random) -> Sample:
    words = rng.sample(WORDS7, 5)
    style = rng.randrange(3)
    if style == 0:
        body = "\n".join(f"{i}. **{w.title()}** (7 letters)" for i, w in enumerate(words, 1))
    elif style == 1:
        body = "\n".join(f"- {w} - 7 letters" for w in words)
    else:
        body = ", ".join(words)
    return f"Here are five words with exactly 7 letters:\n\n{body}\n\nHope this helps!", {
        "count": 5, "letters": 7}


def _entities(rng: random.Random) -> Sample:
    pairs = [(rng.randint(1, 50000), rng.choice(NOUNS)) for _ in range(rng.randint(1, 4))]
    style = rng.randrange(3)
    if style == 0:
        text = "The text mentions " + ", ".join(f"{v:,} {u}" for v, u in pairs) + "."
    elif style == 1:
        items = ", ".join(f'{{"value": {v}, "unit": "{u}"}}' for v, u in pairs)
        text = f"```json\n[{items}]\n```"
    else:
        text = "Here are the quantities:\n" + "\n".join(
            f"{i}. **{v:,} {u}** – mentioned in the text" for i, (v, u) in enumerate(pairs, 1))
    return text, {"expected": [{"value": v, "unit": u} for v, u in pairs]}


def _summary(rng: random.Random) -> Sample:
    who, what, n = rng.choice(["Dr. Smith", "The council", "Acme Corp."]), rng.choice(
        ["drug", "budget", "policy", "merger"]), rng.randint(2, 90)
    text = (f"**Summary:** {who}'s new {what} cut costs by {n}.5% in {rng.randint(2001, 2024)}"
            + rng.choice([".", ". It was widely praised.", ", analysts said."]))
    return text, {"must_mention": [what, "costs"],
                  "reference": f"{who} said the {what} reduced costs by {n} percent."}


def _match(rng: random.Random) -> Sample:
    city = rng.choice(["Paris", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna"])
    return f"Sure! The capital is **{city}**. It has {rng.randint(1, 9)} million people.", {
        "expected": city}


SCORERS: dict[str, tuple[ScorerSpec, Callable[[random.Random], Sample]]] = {
    "exact": (ScorerSpec("exact"), _match),
    "contains": (ScorerSpec("contains"), _match),
    "regex": (ScorerSpec("regex", {"pattern": r"capital is \*\*(\w+)\*\*"}), _match),
    "number": (ScorerSpec("number"), _number),
    "word_length": (ScorerSpec("word_length"), _word_length),
    "entities": (ScorerSpec("entities"), _entities),
    "summary": (ScorerSpec("summary", {"max_sentences": 1}), _summary),
}


def main() -> None:
    """Time every scorer on `--samples` generated samples and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    table = Table(title=f"scorer speed ({args.samples:,} samples each)")
    for col in ("scorer", "samples", "load s", "total s", "ms/sample", "passed"):
        table.add_column(col, justify="left" if col == "scorer" else "right")
    for name, (spec, make) in SCORERS.items():
        rng = random.Random(7)
        samples = [make(rng) for _ in range(args.samples)]
        start = time.perf_counter()
        score_text(spec, *make(random.Random(0)))  # one-time loading, timed apart
        load = time.perf_counter() - start
        start = time.perf_counter()
        passed = sum(score_text(spec, text, case).passed for text, case in samples)
        total = time.perf_counter() - start
        table.add_row(name, f"{args.samples:,}", f"{load:.2f}", f"{total:.2f}",
                      f"{total / args.samples * 1e3:.3f}", f"{passed / args.samples:.0%}")
    Console().print(table)


if __name__ == "__main__":
    main()
