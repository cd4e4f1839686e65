"""Worst-case scoring time per scorer on hostile outputs of up to 1 MB (issue 17 goal: ≤ 100 ms).

    python benchmarks/scorer_bounds.py

Prints, per scorer, the slowest of the outputs below (best of 3 runs each, after a warm-up,
so one-off cache loads are not counted) and which output it was.
"""

from __future__ import annotations

import time

from moebench.errors import ScorerError
from moebench.scorers import registry, score_text
from moebench.types import ScorerSpec

MB = 1_000_000
OUTPUTS = {
    "digits": "1" * MB, "spaced numbers": "12 " * (MB // 3), "5 km pairs": "5 km " * (MB // 5),
    "prose": "The cat sat on the mat. It was 5 km away. " * (MB // 42),
    "number words": "two " * (MB // 4), "brackets": "[" * MB, "abbreviations": "Dr. " * (MB // 4),
    "word list": "\n".join(f"{i}. word{i}" for i in range(MB // 12)),
    "json": '[{"value": 1, "unit": "km"}, ' * (MB // 30),
    "unclosed think": "<think>" + "x " * (MB // 2), "nested think": "<think>" * (MB // 7),
    "big number": "1" + "0" * 5000 + " NaN inf " * 1000,
}
CASES = {
    "number": ({"expected": 5}, {}), "entities": ({"expected": [{"value": 5, "unit": "km"}]}, {}),
    "summary": ({"must_mention": ["cat"], "reference": "the cat sat"}, {"max_sentences": 3}),
    "word_length": ({"count": 3, "letters": 5}, {}), "exact": ({"expected": "x"}, {}),
    "contains": ({"expected": ["cat", "dog"]}, {}),
    "regex": ({}, {"pattern": r"(\d+)\s*km"}),
}


def _time(spec: ScorerSpec, text: str, case: dict) -> tuple[float, str]:
    best, how = float("inf"), ""
    for _ in range(3):
        start = time.perf_counter()
        try:
            how = f"{score_text(spec, text, case).score:.2f}"
        except ScorerError:
            how = "ScorerError"
        best = min(best, time.perf_counter() - start)
    return best, how


def main() -> None:
    print(f"{'scorer':12} {'worst ms':>9}  output (result)")
    for name in sorted(registry()):
        case, params = CASES.get(name, ({}, {}))
        spec = ScorerSpec(name, params)
        score_text(spec, "warm-up: 5 km. Dr. Who. 1. apple", case)
        worst = max(((*_time(spec, text, case), label) for label, text in OUTPUTS.items()))
        print(f"{name:12} {worst[0] * 1000:9.1f}  {worst[2]} ({worst[1]})")


if __name__ == "__main__":
    main()
