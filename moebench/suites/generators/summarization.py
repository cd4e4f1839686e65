"""summarization cases: paragraphs from story frames, with must-mention terms and a reference.

A frame is a short story with slots (a person, a place, a key object, numbers): its core
sentences carry the point, and 2-4 of its filler sentences (detail a good one-sentence
summary leaves out) are mixed in, giving 4-8 sentences. `must_mention` is the person and
the key noun — words both the paragraph and the one-sentence `reference` contain — and the
reference is written from the same slots, so it is a summary the scorer passes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from moebench.suites.generators import Cases, Family, rng

PEOPLE = ("Amira", "Bruno", "Carmen", "Dmitri", "Esther", "Felix", "Greta", "Hassan", "Ingrid",
          "Jamal", "Keiko", "Lorenzo", "Mirela", "Nadia", "Oscar", "Priya", "Rafael", "Sofia",
          "Tomas", "Ulla", "Viktor", "Wanda", "Yara", "Zaid")
TOWNS = ("Millbrook", "Ashford", "Kestrel Bay", "Northwick", "Pinecrest", "Riverton",
         "Stonehaven", "Eastmere", "Larchfield", "Oakridge")

#: frame: slot choices, core sentences, filler sentences, reference, the key-noun slot
FRAMES: tuple[dict[str, Any], ...] = (
    {"slots": {"key": ("bridge", "footbridge"), "n": (40, 120)},
     "core": ["Storm water cracked the old {key} that connects the two halves of {town}.",
              "{name}, a retired engineer, organised {n} neighbours to repair the {key} "
              "over one weekend.",
              "The {key} reopened on Monday and is safe again."],
     "filler": ["The weather forecast had warned of heavy rain.",
                "Local cafes offered free coffee to the volunteers.",
                "Some children painted the railings blue.",
                "The council had planned to replace the crossing in five years.",
                "A photographer documented the work for the town newsletter."],
     "reference": "{name} led {n} neighbours to repair the storm-damaged {key} in {town} "
                  "over a weekend, and it has reopened."},
    {"slots": {"key": ("library", "bookshop"), "n": (300, 2000)},
     "core": ["The only {key} in {town} was about to close for lack of money.",
              "{name} started a campaign that raised enough donations from {n} residents.",
              "The {key} will now stay open for at least three more years."],
     "filler": ["The building dates from the nineteenth century.",
                "A reading club meets there every Thursday.",
                "Several authors sent signed books to support the cause.",
                "The campaign used posters and a local radio interview.",
                "Many pupils use the rooms to do their homework."],
     "reference": "A campaign by {name} raised donations from {n} residents, saving the "
                  "{town} {key} from closing."},
    {"slots": {"key": ("dog", "puppy"), "n": (2, 9)},
     "core": ["{name}'s {key} ran off during a thunderstorm in {town}.",
              "After {n} days of searching, a farmer found the {key} hiding in a barn.",
              "The {key} was tired but unhurt when it came home."],
     "filler": ["Friends shared photos of the animal online.",
                "The barn stands at the edge of a wheat field.",
                "Thunder had scared many pets that night.",
                "A vet checked the animal the next morning.",
                "The family had put up posters on every lamp post."],
     "reference": "{name}'s {key}, lost in a thunderstorm in {town}, was found unhurt in a "
                  "barn after {n} days."},
    {"slots": {"key": ("robot", "drone"), "n": (12, 40)},
     "core": ["A team of pupils from {town} built a {key} for a national science contest.",
              "{name}, the youngest member, wrote most of the software.",
              "Their {key} beat {n} other teams and won first prize."],
     "filler": ["The contest was held in a large exhibition hall.",
                "The pupils practised after school for months.",
                "Parents drove the team to the capital.",
                "Judges praised the neat wiring.",
                "The prize includes a visit to a research lab."],
     "reference": "Pupils from {town}, with software by {name}, built a {key} that beat {n} "
                  "teams to win a national science contest."},
    {"slots": {"key": ("bakery", "cafe"), "n": (20, 60)},
     "core": ["{name} opened a small {key} on the main square of {town}.",
              "Within a year the {key} employed {n} people.",
              "It now sells bread to every school in the area."],
     "filler": ["The square has a fountain and a weekly market.",
                "The ovens were bought second-hand.",
                "Rye loaves are the best sellers.",
                "Opening hours start at six in the morning.",
                "A newspaper named it the best new shop of the year."],
     "reference": "The {key} that {name} opened in {town} grew to {n} employees within a "
                  "year and now supplies every local school."},
    {"slots": {"key": ("orchard", "vineyard"), "n": (200, 900)},
     "core": ["A late frost threatened the {key} that {name} runs outside {town}.",
              "{name} lit {n} small heaters between the rows through the night.",
              "Most of the harvest was saved."],
     "filler": ["The frost came three weeks later than usual.",
                "Neighbours helped carry fuel.",
                "Similar farms nearby lost much of their crop.",
                "The heaters were borrowed from a farmers' cooperative.",
                "The fruit will be sold at markets in the autumn."],
     "reference": "{name} saved most of the harvest of the {key} near {town} from a late "
                  "frost by lighting {n} heaters overnight."},
)


def _paragraph(r: random.Random, frame: dict[str, Any]) -> dict[str, Any]:
    slots = {"name": r.choice(PEOPLE), "town": r.choice(TOWNS),
             "key": r.choice(frame["slots"]["key"]), "n": r.randint(*frame["slots"]["n"])}
    fillers = r.sample(frame["filler"], r.randint(2, 4))
    sentences = list(frame["core"])
    for filler in fillers:  # detail goes anywhere after the first sentence
        sentences.insert(r.randint(1, len(sentences)), filler)
    return {"paragraph": " ".join(s.format(**slots) for s in sentences),
            "must_mention": [slots["name"], slots["key"]],
            "reference": frame["reference"].format(**slots)}


def make(n: int | None, seed: int, variants: int = 0) -> Cases:
    """n paragraphs; case i uses frame i mod 6 with its own names, place and numbers."""
    cases: Cases = []
    for i in range(n or 0):
        frame = FRAMES[i % len(FRAMES)]
        cases.append({"id": f"g-{i + 1:04d}", **_paragraph(rng("summarization", seed, i), frame)})
    return cases


def reference(case: Mapping[str, Any]) -> str:
    """The case's reference summary."""
    return str(case["reference"])


FAMILY = Family(
    name="summarization", make=make, reference=reference,
    scorer={"type": "summary", "max_sentences": 1},
    prompt="Summarize this paragraph into one sentence: {paragraph}",
    description="One-sentence summaries of generated 5-7 sentence paragraphs (must-mention "
                "terms, ROUGE-L reference).",
    options={"temperature": 0, "seed": 7, "max_tokens": 256})
