"""The `summary` scorer: sentence counting, required mentions, ROUGE-L against a reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from moebench.scorers import score_text
from moebench.scorers.summary import clean, sentences, summary
from moebench.types import ScorerSpec

TERMS = {"must_mention": ["Smith", "drug", "symptoms"]}
DEEPSEEK = (
    "<think>\nThe user wants one sentence. Key points: Dr. Smith, the drug, symptoms cut by "
    "3.5 times.\n</think>\n\n**Summary:** Dr. Smith's trial showed the new drug cut symptoms "
    "3.5-fold in mice."
)
MIXTRAL_CHATTY = (
    "Sure! Here's a one-sentence summary:\n\nDr. Smith's drug reduced symptoms in mice.\n\n"
    "I hope this helps!"
)

CASES = [
    # (id, output, case, passed)
    ("one-sentence-with-dr-and-decimal", DEEPSEEK, TERMS, True),
    ("plain", "Dr. Smith found that the drug eased symptoms.", TERMS, True),
    ("summary-label-stripped", "Summary: Dr. Smith's drug eased symptoms.", TERMS, True),
    ("markdown-heading-label", "## Summary\nDr. Smith's drug eased symptoms.", TERMS, True),
    ("bold-label", "**One-sentence summary:** Smith's drug eased symptoms.", TERMS, True),
    ("two-sentences-over-limit", "Dr. Smith tested a drug. It eased symptoms.", TERMS, False),
    ("two-sentences-allowed-by-case", "Dr. Smith tested a drug. It eased symptoms.",
     {**TERMS, "max_sentences": 2}, True),
    ("chatty-wrapper-counts", MIXTRAL_CHATTY, TERMS, False),
    ("missing-term", "Dr. Smith's treatment eased symptoms.", TERMS, False),
    ("plural-counts", "Smith's drugs eased symptoms.", TERMS, True),
    ("possessive-counts", "The drug's maker, Smith, saw symptoms fall.", TERMS, True),
    ("case-insensitive", "SMITH'S DRUG EASED SYMPTOMS.", TERMS, True),
    ("whole-words-only", "Smithson's drugstore eased symptoms.", {"must_mention": ["Smith"]},
     False),
    ("y-plural", "Two companies merged.", {"must_mention": ["company"]}, True),
    ("multi-word-term", "The New  York office closed.", {"must_mention": ["new york"]}, True),
    ("abbreviations-not-split", "The U.S. economy grew 2.5% in Q3 according to Mr. Lee.",
     {"must_mention": ["economy"]}, True),
    ("question-and-exclamation", "Prices rose! Why? Demand.", {"must_mention": ["prices"]},
     False),
    ("ellipsis-one-sentence", "Prices rose... and kept rising.", {"must_mention": ["prices"]},
     True),
    ("refusal", "I'm sorry, but I can't summarize this text.", TERMS, False),
    ("empty", "", TERMS, False),
    ("quoted", "\"Dr. Smith's drug eased symptoms.\"", TERMS, True),
    ("bullet-wrapped", "- Dr. Smith's drug eased symptoms.", TERMS, True),
    ("no-terms-required", "The market recovered.", {}, True),
    ("term-as-string", "The market recovered.", {"must_mention": "market"}, True),
    ("hyphenated-term", "The follow-up study confirmed it.", {"must_mention": ["follow-up"]},
     True),
    ("three-sentences-param-3", "A rose. B fell. C held.", {"max_sentences": 3}, True),
]


@pytest.mark.parametrize(("output", "case", "passed"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_summary_cases(output: str, case: dict, passed: bool) -> None:
    result = score_text(ScorerSpec("summary"), output, case)
    assert result.passed is passed, result
    assert result.score == float(passed)


def test_max_sentences_param_and_case_override() -> None:
    text = "A rose. B fell."
    assert summary(text, {}, {"max_sentences": 2}).passed
    assert not summary(text, {"max_sentences": 1}, {"max_sentences": 2}).passed


def test_rouge_l_against_reference() -> None:
    reference = "Dr. Smith's drug reduced symptoms in mice."
    same = summary(reference, {"reference": reference}, {})
    assert same.score == pytest.approx(1.0)
    partial = summary("Dr. Smith's drug helped.", {"reference": reference, **TERMS}, {})
    assert 0.2 < partial.score < 0.9 and not partial.passed
    assert "ROUGE-L" in partial.explanation and "missing: symptoms" in partial.explanation


def test_sentences_and_clean() -> None:
    assert sentences("Dr. Smith measured 3.5 kg. Then he left.") == [
        "Dr. Smith measured 3.5 kg.", "Then he left."]
    assert clean("**Summary:** *Hello* world") == "*Hello* world"


def _rouge_pairs() -> list[tuple[str, str]]:
    """(reference, text) pairs: the bundled suites' references against themselves, against
    each other, shuffled, cut, and against empty or symbol-only texts (seeded)."""
    import random

    import yaml

    from moebench.paths import BUNDLED_TASKS

    refs = [str(case["reference"]) for path in sorted(BUNDLED_TASKS.glob("*.yaml"))
            for task in (yaml.safe_load(path.read_text()) or {}).get("tasks", [])
            for case in task.get("cases") or [] if isinstance(case, dict) and case.get("reference")]
    rng = random.Random(11)
    pairs = [(r, r) for r in refs] + [(a, b) for a, b in zip(refs, refs[1:])]
    for ref in refs:
        words = ref.split()
        rng.shuffle(words)
        pairs += [(ref, " ".join(words)), (ref, " ".join(words[: len(words) // 2])),
                  (ref, ref.upper() + " running happily, generously!")]
    return [*pairs, ("", "text"), ("text", ""), ("!!!", "a b"), ("The cats ran.", "cat runs")]


def test_rouge_l_is_rouge_scores_own() -> None:
    """`_rouge.rouge_l_f`, in a fresh interpreter (where it loads nltk's Porter stemmer alone),
    gives rouge-score's stemmed ROUGE-L F-measure float for float, and stems 20,000 words as
    nltk's PorterStemmer does."""
    import json
    import random
    import subprocess
    import sys

    from nltk.stem.porter import PorterStemmer
    from rouge_score import rouge_scorer

    from moebench.scorers import _tables

    pairs = _rouge_pairs()
    table = _tables.hunspell()
    assert len(pairs) > 100 and table is not None
    words = random.Random(4).sample([w for w, _ in table.items() if w.isalpha()], 20_000)
    code = ("import json, sys; from moebench.scorers import _rouge; pairs, words = "
            "json.load(sys.stdin); print(json.dumps([[_rouge.rouge_l_f(r, t) for r, t in pairs],"
            " [_rouge._stem()(w) for w in words], 'nltk' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps([pairs, words]),
                          capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])  # this checkout's moebench
    scores, stems, nltk_imported = json.loads(done.stdout)
    assert not nltk_imported  # the stemmer came alone
    reference = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    assert scores == [float(reference.score(r, t)["rougeL"].fmeasure) for r, t in pairs]
    assert stems == [PorterStemmer().stem(w) for w in words]
