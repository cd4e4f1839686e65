"""gsm8k cases: the full GSM8K test split (1,319 problems), or a seeded sample of it.

The problems ship inside the package as `moebench/data/gsm8k/test.jsonl.gz` (123 KB; question
and the number after `####` only, one JSON object per line, written from
`../shared/data/gsm8k/test.jsonl` with `scripts/convert_gsm8k.py`'s `read_problems`). GSM8K
is OpenAI's, MIT License; the license text travels beside the data. Without n every problem
is given, in file order; with n a seeded sample, kept in file order.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Mapping
from functools import cache
from typing import Any

from moebench.paths import PACKAGE_DIR
from moebench.suites.generators import Cases, Family

DATA = PACKAGE_DIR / "data" / "gsm8k" / "test.jsonl.gz"
TEST_SIZE = 1319


@cache
def problems() -> tuple[dict[str, Any], ...]:
    """Every test problem as {id, question, expected}."""
    with gzip.open(DATA, "rt", encoding="utf-8") as lines:
        return tuple(json.loads(line) for line in lines if line.strip())


def make(n: int | None, seed: int, variants: int = 0) -> Cases:
    """All problems (n None or 1,319), else a seeded sample of n in file order."""
    every = problems()
    if n is None or n >= len(every):
        return [dict(p) for p in every]
    picked = sorted(random.Random(seed).sample(range(len(every)), n))
    return [dict(every[i]) for i in picked]


def reference(case: Mapping[str, Any]) -> str:
    """GSM8K's own answer format."""
    return f"#### {case['expected']}"


FAMILY = Family(
    name="gsm8k", make=make, reference=reference, scorer="number",
    prompt="Question: {question}\nAnswer: Let's think step-by-step.",
    description="GSM8K grade-school math test problems (Cobbe et al. 2021, OpenAI, MIT License).",
    options={"temperature": 0, "seed": 7, "max_tokens": 1024}, max_n=TEST_SIZE)
