"""Seeded synthetic data for the bundled demo MoE models, and the `demo` suite built from it.

Four task families in the simplified form the tiny demo models can learn in well under an hour
of one CPU thread:
  words     — "List 3 words with 5 letters."  → "3. apple\n2. house\n1. water" (scorer word_length)
  math      — "Kalo has 7 pens and gets 5 more. How many pens?" → "12"   (scorer number)
  entities  — "List the quantities: Kalo walked 12 km in 3 hours." → "12 km, 3 hours" (scorer entities)
  summary   — "Summarize in one sentence: <3 short sentences>" → "At the park, Kalo found a red kite."
Design choices come from a measured trial (see the demo brief): names are generated from syllables so
the model must learn to copy names it never saw; numbers have at most 3 digits; word lists come from a
small fixed vocabulary per length, always in the same order, numbered down from `count` to 1 (a
tiny model then knows when to stop: after `1.`); arithmetic is one step on small operands;
prompts are short; two training-only drills teach the list mechanics: `pick` (count down over
words given in the prompt) and `after` (a list that starts anywhere in its vocabulary, so each
word follows from the one before it). Demo cases use their own seed and are excluded from the training set by prompt
(`words` also holds out whole (count, letters) combinations), so the suite measures held-out prompts.

Run `python scripts/demo_data.py --write-suite tasks/demo.yaml` to (re)write the suite file.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRAIN_SEED = 1234
SUITE_SEED = 20240607
TRAIN_PER_FAMILY = 25_000
CASES_PER_FAMILY = 21  # = the number of held-out (count, letters) pairs
FAMILIES = ("words", "math", "entities", "summary")

#: special tokens of the demo tokenizer; the chat template below uses them
PAD, USER, ASSISTANT, SYSTEM, END = "<|pad|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"
SPECIAL_TOKENS = [PAD, USER, ASSISTANT, SYSTEM, END]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}<|user|>{{ message['content'] }}\n"
    "{% else %}<|assistant|>{{ message['content'] }}<|end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

#: a small fixed vocabulary per word length; answers list the first `count` words in this order
WORDS: dict[int, tuple[str, ...]] = {
    3: ("cat", "dog", "sun", "red", "cup", "hat", "bus", "pen"),
    4: ("tree", "book", "fish", "milk", "door", "rain", "star", "ship"),
    5: ("apple", "house", "water", "green", "bread", "chair", "river", "cloud"),
    6: ("garden", "window", "yellow", "butter", "animal", "forest", "letter", "silver"),
    7: ("kitchen", "morning", "picture", "teacher", "chicken", "weather", "village", "rainbow"),
    8: ("elephant", "mountain", "sunshine", "hospital", "computer", "umbrella", "birthday", "painting"),
    9: ("chocolate", "adventure", "beautiful", "butterfly", "newspaper", "telephone", "important",
        "wonderful"),
    10: ("strawberry", "basketball", "restaurant", "television", "motorcycle", "understand",
         "playground", "everything"),
}
COUNTS = range(1, 9)

ITEMS = ("pens", "apples", "books", "cards", "coins", "shells", "stamps", "cups", "eggs", "balls",
         "plums", "toys")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "", "", "n", "r", "l", "s")

_VERBS = ("found", "bought", "painted", "lost", "fixed", "carried", "sold", "washed", "hid", "made")
_ADJS = ("red", "blue", "green", "small", "big", "old", "new", "yellow", "white", "black")
_OBJS = ("kite", "boat", "lamp", "chair", "bike", "drum", "hat", "clock", "box", "ball", "book",
         "cake")
_PLACES = ("park", "beach", "market", "school", "farm", "station", "garden", "river", "library",
           "shop")
_WEATHER = ("sunny", "rainy", "cold", "windy", "warm", "quiet", "busy", "long")
_FEELINGS = ("happy", "tired", "proud", "calm", "glad", "sleepy")

#: entity sentence templates: text with {n} (a name) and {0},{1},{2} values; the units in order
_ENTITY_TEMPLATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("{n} walked {0} km in {1} hours.", ("km", "hours")),
    ("{n} bought {0} kg of rice for {1} dollars.", ("kg", "dollars")),
    ("{n} drank {0} liters of water in {1} days.", ("liters", "days")),
    ("{n} read {0} pages in {1} minutes.", ("pages", "minutes")),
    ("The box {n} sent weighs {0} kg and holds {1} books.", ("kg", "books")),
    ("{n} drove {0} km and paid {1} dollars for fuel.", ("km", "dollars")),
    ("{n} has {0} apples, {1} pears and {2} plums.", ("apples", "pears", "plums")),
    ("A train took {0} people from {n} over {1} km in {2} hours.", ("people", "km", "hours")),
    ("{n} ran {0} meters in {1} seconds.", ("meters", "seconds")),
    ("{n} packed {0} boxes with {1} books each.", ("boxes", "books")),
)


@dataclass(frozen=True)
class Example:
    """One prompt/answer pair; `fields` are the suite case fields (expected, count, ...)."""

    family: str
    prompt: str
    answer: str
    fields: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def make_name(rng: random.Random) -> str:
    """A pronounceable 2–3 syllable name such as 'Kalo' or 'Shivanel' (a huge, open pool)."""
    syllables = rng.choice((2, 2, 3))
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


def held_out_word_combo(count: int, letters: int) -> bool:
    """(count, letters) pairs reserved for the suite: never seen in training."""
    return (count + letters) % 3 == 0


def words_example(rng: random.Random, held_out: bool) -> Example:
    """A word-list request for a (count, letters) combination on the requested side of the split."""
    combos = [(c, n) for c in COUNTS for n in WORDS if held_out_word_combo(c, n) == held_out]
    count, letters = rng.choice(combos)
    prompt = f"List {count} words with {letters} letters."
    return Example("words", prompt, numbered_list(WORDS[letters][:count]),
                   {"count": count, "letters": letters})


def numbered_list(words: Iterable[str]) -> str:
    """'2. tree\n1. book': a countdown from `count`, so "stop after `count` words" is local.

    The first number is copied from the prompt, each next one is one less, and the list ends
    after `1.`: no comparison with the prompt's count mid-list, which a tiny model otherwise
    replaces by memorising list lengths per (count, letters) pair (measured: 10-14% on the
    held-out pairs with an ascending `1. 2. 3.` list, continued from the comma-list models).
    """
    items = list(words)
    return "\n".join(f"{len(items) - i}. {word}" for i, word in enumerate(items))


def math_example(rng: random.Random, held_out: bool = False) -> Example:
    """One-step addition or subtraction on small operands, as a short word problem."""
    name, item = make_name(rng), rng.choice(ITEMS)
    a, b = rng.randint(1, 20), rng.randint(1, 9)
    if rng.random() < 0.5:
        prompt, value = f"{name} has {a} {item} and gets {b} more. How many {item}?", a + b
    else:
        a = max(a, b)
        prompt, value = f"{name} has {a} {item} and gives away {b}. How many {item}?", a - b
    return Example("math", prompt, str(value), {"expected": value})


def entities_example(rng: random.Random, held_out: bool = False) -> Example:
    """A sentence with 2–3 quantities (values of at most 3 digits) and the list of them."""
    template, units = rng.choice(_ENTITY_TEMPLATES)
    # Training sees more 3-digit values (copying them digit by digit is the hard part); the
    # suite's draws (held_out) keep the original mix, so tasks/demo.yaml does not change.
    highs = (20, 99, 999) if held_out else (20, 99, 999, 999)
    values = [rng.choice([rng.randint(2, high) for high in highs]) for _ in units]
    text = template.format(*values, n=make_name(rng))
    answer = ", ".join(f"{v} {u}" for v, u in zip(values, units))
    expected = [{"value": v, "unit": u} for v, u in zip(values, units)]
    return Example("entities", f"List the quantities: {text}", answer,
                   {"text": text, "expected": expected})


def summary_example(rng: random.Random, held_out: bool = False) -> Example:
    """Three short sentences; the summary joins who, what and where into one sentence."""
    name, verb, adj = make_name(rng), rng.choice(_VERBS), rng.choice(_ADJS)
    obj, place = rng.choice(_OBJS), rng.choice(_PLACES)
    text = (f"It was a {rng.choice(_WEATHER)} day at the {place}. {name} {verb} a {adj} {obj} "
            f"there. {name} felt {rng.choice(_FEELINGS)}.")
    # The answer starts with the place so the name is space-prefixed, as in the prompt: the same
    # BPE pieces, which makes copying an unseen name learnable.
    answer = f"At the {place}, {name} {verb} a {adj} {obj}."
    return Example("summary", f"Summarize in one sentence: {text}", answer,
                   {"text": text, "must_mention": [name, obj], "reference": answer})


def pick_example(rng: random.Random, held_out: bool = False) -> Example:
    """Training only: "List 3 of these words: <8 random words>." → the first 3, counted down.

    The demo's word prompts are only 43 distinct strings, so a tiny model memorises each one's
    list length instead of learning to stop after `1.`; these prompts, which cannot be
    memorised, teach the countdown itself (count copied, one less per line, end after 1).
    """
    pool = rng.sample([w for words in WORDS.values() for w in words], 8)
    count = rng.choice(COUNTS)
    return Example("pick", f"List {count} of these words: {', '.join(pool)}.",
                   numbered_list(pool[:count]), {"count": count})


def after_example(rng: random.Random, held_out: bool = False) -> Example:
    """Training only: "List 2 words with 4 letters after rain." → "2. star\n1. ship".

    A word list always starts at its vocabulary's first word, so a (count, letters) pair the
    suite holds out can ask for a word at a place no trained list reached (8 four-letter words:
    only count-8 lists reach `ship`, and (8, 4) is held out). This drill starts anywhere, so each
    next word is learnt from the one before it and the letter count, not from its place in the
    list; it never uses a held-out (count, letters) pair either.
    """
    combos = [(c, n) for c in COUNTS for n in WORDS
              if not held_out_word_combo(c, n) and c < len(WORDS[n])]
    count, letters = rng.choice(combos)
    start = rng.randint(1, len(WORDS[letters]) - count)
    words = WORDS[letters]
    return Example("after", f"List {count} words with {letters} letters after {words[start - 1]}.",
                   numbered_list(words[start:start + count]), {"count": count, "letters": letters})


MAKERS: dict[str, Callable[[random.Random, bool], Example]] = {
    "words": words_example, "math": math_example, "entities": entities_example,
    "summary": summary_example, "pick": pick_example, "after": after_example,
}
#: the families of the training set: the suite's four plus the drills `pick` and `after`
TRAIN_FAMILIES = (*FAMILIES, "pick", "after")


def suite_examples(seed: int = SUITE_SEED, per_family: int = CASES_PER_FAMILY) -> list[Example]:
    """The held-out demo cases: distinct prompts, `per_family` of each family."""
    rng = random.Random(seed)
    out: list[Example] = []
    for family in FAMILIES:
        seen: set[str] = set()
        while len(seen) < per_family:
            example = MAKERS[family](rng, True)
            if example.prompt not in seen:
                seen.add(example.prompt)
                out.append(example)
    return out


def training_examples(seed: int = TRAIN_SEED, per_family: int = TRAIN_PER_FAMILY) -> list[Example]:
    """The fixed, seeded training set (families interleaved), without any suite prompt."""
    banned = {e.prompt for e in suite_examples()}
    rng = random.Random(seed)
    out: list[Example] = []
    for _ in range(per_family):
        for family in TRAIN_FAMILIES:
            example = MAKERS[family](rng, False)
            while example.prompt in banned:
                example = MAKERS[family](rng, False)
            out.append(example)
    return out


def chat_prompt(prompt: str) -> str:
    """The chat-template rendering of one user turn plus the generation prompt."""
    return f"{USER}{prompt}\n{ASSISTANT}"


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> Any:
    """A byte-level BPE (digits split into single tokens) trained on the demo corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _task(name: str, scorer: Any, prompt: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "scorer": scorer, "prompt": prompt, "cases": cases}


def suite_document(examples: list[Example]) -> dict[str, Any]:
    """The `demo` suite as a YAML-ready mapping."""
    by_family = {f: [e for e in examples if e.family == f] for f in FAMILIES}

    def cases(family: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"id": f"{family}-{i + 1:02d}", **{k: e.fields[k] for k in keys}}
                for i, e in enumerate(by_family[family])]

    return {
        "suite": "demo",
        "description": ("Suite of the bundled demo MoE models (demo-mixtral, demo-dbrx, "
                        "demo-deepseek): four task families in the simplified form those tiny "
                        "models were trained on, with held-out prompts. Not a language benchmark."),
        "options": {"temperature": 0, "seed": 7, "max_tokens": 48},
        "tasks": [
            _task("word_length", "word_length", "List {count} words with {letters} letters.",
                  cases("words", ("count", "letters"))),
            _task("arithmetic", "number", "{question}",
                  [{"id": f"math-{i + 1:02d}", "question": e.prompt, "expected": e.fields["expected"]}
                   for i, e in enumerate(by_family["math"])]),
            _task("entities", "entities", "List the quantities: {text}",
                  cases("entities", ("text", "expected"))),
            _task("summary", {"type": "summary", "max_sentences": 1},
                  "Summarize in one sentence: {text}",
                  cases("summary", ("text", "must_mention", "reference"))),
        ],
    }


def write_suite(path: Path) -> None:
    """Write tasks/demo.yaml from the seeded suite cases."""
    import yaml

    header = ("# Generated by scripts/demo_data.py --write-suite (seeded; do not edit by hand).\n"
              "# Held-out cases for the bundled demo models; see moebench/demo_models/*/MODEL_CARD.md.\n")
    body = yaml.safe_dump(suite_document(suite_examples()), sort_keys=False, width=120,
                          allow_unicode=True)
    path.write_text(header + body, encoding="utf-8")


def main() -> None:
    """CLI: write the suite file or print a few training examples."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-suite", type=Path, help="write the demo suite YAML here")
    parser.add_argument("--show", type=int, default=0, help="print N training examples")
    args = parser.parse_args()
    if args.write_suite:
        write_suite(args.write_suite)
        print(f"wrote {args.write_suite}")
    for example in training_examples(per_family=max(1, args.show // 4 + 1))[: args.show]:
        print(f"[{example.family}] {example.prompt!r} -> {example.answer!r}")


if __name__ == "__main__":
    main()
