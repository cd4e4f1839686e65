"""Issue 18 item 8 (speed): what made `rescore` slow stays gone (timings live in benchmarks/).

`benchmarks/bench_report_rescore.py` measures report/rescore on a 1,000-sample store; these
tests pin the causes it found: nltk pulling in scipy (and numpy) for the summary scorer, and
scoring the same answer to the same case again for every repeat.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _show_support import build_run

from moebench import rescore as rescore_module
from moebench.rescore import rescore

ROOT = Path(__file__).resolve().parents[1]


def test_summary_scorer_does_not_import_scipy() -> None:
    """ROUGE-L needs neither scipy nor numpy nor nltk's package (only its Porter stemmer),
    and leaves nltk and scipy importable as usual."""
    code = ("import sys; from moebench.scorers import summary as s; "
            "print(s.rouge_l('a cat sat', 'the cat sat')); "
            "print(*(m in sys.modules for m in ('scipy.stats', 'numpy', 'nltk'))); "
            "import scipy.stats; print(scipy.stats.norm.cdf(0)); "
            "import nltk; print(nltk.stem.PorterStemmer().stem('running'))")
    env = {**os.environ, "MOEBENCH_CACHE_DIR": "off"}  # compute it, do not recall it
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT, env=env)
    assert done.stdout.split() == ["0.6666666666666666", "False", "False", "False", "0.5",
                                   "run"]


def test_rescore_scores_each_distinct_answer_once(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "results"
    build_run(out, models=("mixtral:8x7b", "olmoe:7b"))
    calls: list[str] = []
    real = rescore_module.score_stripped

    def counting(spec, stripped, case):  # type: ignore[no-untyped-def]
        calls.append(stripped)
        return real(spec, stripped, case)

    monkeypatch.setattr(rescore_module, "score_stripped", counting)
    result = rescore(out, "r1")
    # 6 samples; the two models wrote the same answer "4" to add/a1: scored once
    assert result.checked == 6 and len(calls) == 5 and calls.count("4") == 1
    assert not result.changed
