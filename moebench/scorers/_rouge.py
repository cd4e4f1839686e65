"""ROUGE-L F-measure exactly as rouge-score computes it (stemmed), without importing nltk.

`rouge_score.rouge_scorer` imports all of nltk, which imports numpy and most of its own
subpackages: 0.3-0.4 s before the first summary is scored, the largest part of a cold
`rescore`. ROUGE-L needs only three pieces: rouge-score's tokenizer (`rouge_score.tokenize`,
plain `re`), nltk's Porter stemmer and the longest-common-subsequence F-measure. The stemmer's
module (`nltk/stem/porter.py`, three small imports) is loaded on its own, with placeholder
`nltk` and `nltk.stem` packages that are removed again at once (0.02 s; a later `import nltk`
is a normal import); should that ever fail, nltk is imported as before, with scipy hidden.
The F-measure repeats rouge-score's `_score_lcs` arithmetic, so the floats are identical
(tests/scorers/test_scorer_summary.py compares it with `rouge_scorer.RougeScorer`).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any


def _porter_alone() -> Any | None:
    """`nltk.stem.porter` loaded without running nltk's `__init__`; None when it cannot be."""
    spec = importlib.util.find_spec("nltk")
    if spec is None or not spec.submodule_search_locations or "nltk" in sys.modules:
        return None  # no nltk, or already imported: then the plain import costs nothing
    root = list(spec.submodule_search_locations)[0]
    for name, path in (("nltk", root), ("nltk.stem", f"{root}/stem")):
        package = types.ModuleType(name)
        package.__path__ = [path]  # submodules are found here, the package itself not run
        sys.modules[name] = package
    try:
        from nltk.stem import porter

        return porter
    except Exception:  # noqa: BLE001 - any failure here just means "import nltk normally"
        return None
    finally:  # leave no trace: a later `import nltk` runs nltk as usual
        for name in [m for m in sys.modules if m == "nltk" or m.startswith("nltk.")]:
            del sys.modules[name]


def _porter_with_nltk() -> Any:
    """`nltk.stem.porter` through `import nltk`, without the scipy nltk drags in.

    `import nltk` imports scipy (stats, sparse: 1 s or more) for collocation tests and
    parsers we never run, each behind `try: ... except ImportError`. Hiding scipy for that
    one import (when nothing has loaded it yet) leaves scipy importable afterwards.
    """
    hidden = [] if "nltk" in sys.modules else [
        m for m in ("scipy.stats", "scipy.sparse") if m not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # importing it -> ImportError
    try:
        from nltk.stem import porter
    finally:
        for name in hidden:
            del sys.modules[name]
    return porter


#: `_porter_alone` edits `sys.modules`: one thread at a time (`run` scores concurrently)
_LOCK = threading.Lock()


@cache
def _stem() -> Callable[[str], str]:
    """nltk's Porter stemmer (rouge-score's, default mode), with stems cached (3x faster)."""
    with _LOCK:
        porter = _porter_alone() or _porter_with_nltk()
    return lru_cache(maxsize=65536)(porter.PorterStemmer().stem)


def tokens(text: str) -> list[str]:
    """rouge-score's stemming tokenizer: lower-case alphanumeric runs, those longer than three
    characters stemmed."""
    from rouge_score import tokenize  # re and six only

    stem = _stem()
    return [stem(t) if len(t) > 3 else t for t in tokenize.tokenize(text, None)]


def _lcs_length(ref: list[str], can: list[str]) -> int:
    """Length of the longest common subsequence (rouge-score's table, one row at a time)."""
    previous = [0] * (len(can) + 1)
    for token in ref:
        current = [0]
        for j, other in enumerate(can, 1):
            current.append(previous[j - 1] + 1 if token == other else
                           max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l_f(reference: str, text: str) -> float:
    """ROUGE-L F-measure of `text` against `reference`: `rouge_scorer.RougeScorer(["rougeL"],
    use_stemmer=True).score(reference, text)["rougeL"].fmeasure`."""
    target, prediction = tokens(reference), tokens(text)
    if not target or not prediction:
        return 0.0
    lcs = _lcs_length(target, prediction)
    precision, recall = lcs / len(prediction), lcs / len(target)
    if precision + recall > 0:  # rouge_score.scoring.fmeasure
        return 2 * precision * recall / (precision + recall)
    return 0.0
