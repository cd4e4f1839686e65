"""Seeded case generators: `generate: {family: NAME, n: N, seed: S}` in a suite task.

A family turns (n, seed) into plain case mappings — the same keys a hand-written case has —
with every expected answer computed, never typed. Case i is drawn from its own seeded
random stream, so a family's first 250 cases are the same whether 250 or 400 are asked for
(`--limit` keeps the head) and the same seed always gives the same bytes.

Each family also names its default task (scorer, prompt template, options), used when a
suite task gives `generate:` without them and by `moebench suites generate`, and a
`reference` function: an answer to a case that its own scorer passes (tests feed it to
every generated case).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from moebench.errors import MoebenchError

Cases = list[dict[str, Any]]
#: module of each family, imported on first use (keeps suite loading light)
_MODULES = {
    "word_length": "word_length", "arithmetic": "arithmetic", "entities": "entities",
    "summarization": "summarization", "gsm8k": "gsm8k",
}


@dataclass(frozen=True)
class Family:
    """A case generator with the task it is meant for."""

    name: str
    #: (n, seed, variants) → cases; n None means "all" for finite families
    make: Callable[[int | None, int, int], Cases]
    #: a case → an answer its scorer passes
    reference: Callable[[Mapping[str, Any]], str]
    scorer: Any
    prompt: str
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)
    #: the most cases the family can give (None: unbounded)
    max_n: int | None = None
    #: True when `variants: K` is meaningful (templated problems)
    templated: bool = False


class GenerateSpec(BaseModel):
    """`generate: {family: NAME, n: N, seed: S, variants: K}` in a suite task."""

    model_config = ConfigDict(extra="forbid", strict=True)

    family: str = Field(description="word_length | arithmetic | entities | summarization | gsm8k")
    n: int | None = Field(default=None, ge=1, description="how many cases (gsm8k: all if left out)")
    seed: int = Field(default=0, description="same seed, same cases")
    variants: int = Field(default=0, ge=0, description="re-instantiations per templated case")


def task_cases(spec: GenerateSpec) -> tuple[dict[str, Any], Cases]:
    """({scorer, prompt} defaults of the family, the generated cases) of a task's spec."""
    fam = family(spec.family)
    cases = generate_cases(spec.family, spec.n, spec.seed, spec.variants)
    return {"scorer": fam.scorer, "prompt": fam.prompt}, cases


def family_names() -> list[str]:
    """Every generator family, sorted."""
    return sorted(_MODULES)


def family(name: str) -> Family:
    """The family called `name`; raises MoebenchError naming the known ones."""
    if name not in _MODULES:
        raise MoebenchError(f"unknown generator family '{name}' "
                            f"(known: {', '.join(family_names())})")
    module = importlib.import_module(f"moebench.suites.generators.{_MODULES[name]}")
    found: Family = module.FAMILY
    return found


def generate_cases(name: str, n: int | None, seed: int = 0, variants: int = 0) -> Cases:
    """`n` cases of family `name` (all of a finite family when n is None).

    Raises:
        MoebenchError: unknown family, n beyond what the family can give, or variants
            asked of a family without templates.
    """
    fam = family(name)
    if n is not None and n < 1:
        raise MoebenchError("n must be at least 1")
    if fam.max_n is not None and n is not None and n > fam.max_n:
        raise MoebenchError(f"family '{name}' can give at most {fam.max_n} distinct cases, "
                            f"asked for {n} — lower n")
    if variants and not fam.templated:
        raise MoebenchError(f"family '{name}' has no templates to vary — `variants:` works "
                            "with: " + ", ".join(f for f in family_names()
                                                 if family(f).templated))
    if n is None and fam.max_n is None:
        raise MoebenchError(f"family '{name}' needs n (how many cases)")
    return fam.make(n, seed, variants)


def rng(family_name: str, seed: int, *parts: object) -> random.Random:
    """The random stream of one case: depends on the family, the seed and the case only."""
    return random.Random(":".join(map(str, (family_name, seed, *parts))))


def suite_document(name: str, n: int | None, seed: int = 0, variants: int = 0,
                   suite: str | None = None) -> dict[str, Any]:
    """A complete suite mapping holding the generated cases literally (`suites generate`)."""
    fam = family(name)
    cases = generate_cases(name, n, seed, variants)
    how = f"n={len(cases)}" if n is None else f"n={n}"
    vary = f", variants={variants}" if variants else ""
    task: dict[str, Any] = {"name": name, "scorer": fam.scorer, "prompt": fam.prompt,
                            "cases": cases}
    return {"suite": suite or f"{name}-generated",
            "description": f"{fam.description} Generated by `moebench suites generate {name}` "
                           f"({how}, seed={seed}{vary}).",
            "options": dict(fam.options), "tasks": [task]}


def suite_yaml(name: str, n: int | None, seed: int = 0, variants: int = 0,
               suite: str | None = None) -> str:
    """`suite_document` as YAML text: same arguments, same bytes."""
    import yaml

    class Dumper(yaml.SafeDumper):
        """Multi-line strings as `|-` blocks; everything else as yaml.safe_dump does."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                       style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    doc = suite_document(name, n, seed, variants, suite)
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)
