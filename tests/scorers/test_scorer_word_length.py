"""The `word_length` scorer: list extraction from realistic outputs, and the word lexicon."""

from __future__ import annotations

import pytest

from moebench.scorers import score_text
from moebench.scorers._lexicon import is_word, why_not_word
from moebench.scorers.word_length import extract_words, word_length
from moebench.types import ScorerSpec

FIVE_SEVEN = {"count": 5, "letters": 7}
MIXTRAL = (
    "Here are five English words with exactly 7 letters:\n\n1. **Balance** (7 letters)\n"
    "2. **Freedom** - 7 letters\n3. Journey: 7 letters\n4. Kitchen – 7\n5. \"Website\"\n\n"
    "I hope this helps! Let me know if you need more words."
)
DEEPSEEK = (
    "<think>\nI need 7-letter words. Balance: b-a-l-a-n-c-e, 7. Freedom, 7. "
    "Texting, 7.\n</think>\n\n- balance\n- freedom\n- texting\n- walking\n- studied"
)
DBRX = (
    "Sure! Here are 5 words that have exactly 7 letters:\n\n"
    "* **Planets** — 7 letters\n* **Selfies**\n* **Walking** (W-A-L-K-I-N-G)\n"
    "* **Studied**\n* **Hashtag**\n\nEach of these words contains exactly seven letters."
)

CASES = [
    # (id, output, case, score, passed)
    ("numbered-bold-notes", MIXTRAL, FIVE_SEVEN, 1.0, True),
    ("think-then-bullets", DEEPSEEK, FIVE_SEVEN, 1.0, True),
    ("star-bullets-bold-dashes", DBRX, FIVE_SEVEN, 1.0, True),
    ("comma-sentence", "Sure! Balance, freedom, journey, kitchen and website. Enjoy!", FIVE_SEVEN,
     1.0, True),
    ("one-per-line", "balance\nfreedom\njourney\nkitchen\nwebsite", FIVE_SEVEN, 1.0, True),
    ("inline-numbers", "Words: 1) example 2) chatbot 3) hashtag 4) unfollow 5) touring",
     FIVE_SEVEN, 0.8, False),
    ("inline-dot-numbers", "1. balance 2. freedom 3. journey 4. kitchen 5. website", FIVE_SEVEN,
     1.0, True),
    ("duplicates-count-once", "1. Balance\n2. balance\n3. BALANCE\n4. Freedom\n5. Journey",
     FIVE_SEVEN, 0.6, False),
    ("wrong-lengths", "1. Apple\n2. Banana\n3. Cherries\n4. Kitchen\n5. Freedom", FIVE_SEVEN,
     0.4, False),
    ("misspellings", "- Recieve\n- Seperat\n- Balance\n- Freedom\n- Journey", FIVE_SEVEN, 0.6,
     False),
    ("keyboard-mash", "1. Asdfghj\n2. Qwertyu\n3. Balance\n4. Freedom\n5. Journey", FIVE_SEVEN,
     0.6, False),
    ("refusal", "I'm sorry, but I can't help with that request.", FIVE_SEVEN, 0.0, False),
    ("refusal-as-ai", "As an AI language model, I cannot list words.", FIVE_SEVEN, 0.0, False),
    ("empty", "", FIVE_SEVEN, 0.0, False),
    ("more-than-asked", "balance, freedom, journey, kitchen, website, example", FIVE_SEVEN,
     1.0, False),
    ("inflected-forms", "1. Planets\n2. Jumping\n3. Watched\n4. Happier\n5. Studies",
     FIVE_SEVEN, 1.0, True),
    ("modern-words", "1. Website\n2. Podcast\n3. Selfies\n4. Texting\n5. Malware", FIVE_SEVEN,
     1.0, True),
    ("british-spellings", "- colour\n- centre\n- favour", {"count": 3, "letters": 6}, 1.0, True),
    ("colon-note", "1. Elephant: 8 letters\n2. Mountain: 8 letters\n3. Sunshine: 8 letters",
     {"count": 3, "letters": 8}, 1.0, True),
    ("quotes-and-periods", '1. "Balance."\n2. \'Freedom\'\n3. “Journey”',
     {"count": 3, "letters": 7}, 1.0, True),
    ("proper-nouns-rejected", "1. Germany\n2. Toronto\n3. Kitchen", {"count": 3, "letters": 7},
     1 / 3, False),
    ("hyphenated", "- well-known\n- left-handed", {"count": 2, "letters": 9}, 0.5, False),
    ("letters-spelled-out-in-note", "1. Example (E-X-A-M-P-L-E)\n2. Harmony (H-A-R-M-O-N-Y)",
     {"count": 2, "letters": 7}, 1.0, True),
    ("numbered-with-definitions", "1. Harmony - a pleasing arrangement\n2. Weather – the state "
     "of the atmosphere", {"count": 2, "letters": 7}, 1.0, True),
    ("three-letter-words", "Cat, dog, sun, and the", {"count": 4, "letters": 3}, 1.0, True),
    ("intro-line-not-a-word", "Here you go:\nfreedom\nbalance", {"count": 2, "letters": 7}, 1.0,
     True),
    ("interjection-rejected", "- hmmmmmm\n- balance", {"count": 2, "letters": 7}, 0.5, False),
]


@pytest.mark.parametrize(("output", "case", "score", "passed"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_word_length_cases(output: str, case: dict, score: float, passed: bool) -> None:
    result = score_text(ScorerSpec("word_length"), output, case)
    assert result.passed is passed, result
    assert result.score == pytest.approx(score), result


def test_params_give_defaults_and_cases_override() -> None:
    text = "1. cat\n2. dog"
    assert word_length(text, {}, {"count": 2, "letters": 3}).passed
    assert not word_length(text, {"letters": 4}, {"count": 2, "letters": 3}).passed


def test_explanation_names_rejected_words_and_reason() -> None:
    result = word_length("- Recieve\n- Apple\n- Balance", FIVE_SEVEN, {})
    assert "Recieve (misspelling)" in result.explanation
    assert "Apple (5 letters)" in result.explanation
    assert result.answer == "Recieve, Apple, Balance"


def test_extract_ignores_chatter_lines() -> None:
    assert extract_words(MIXTRAL) == ["Balance", "Freedom", "Journey", "Kitchen", "Website"]


LEXICON = [
    # modern vocabulary and inflections are words
    *[(w, True) for w in ("website", "smartphones", "emailed", "blogging", "podcast", "hashtags",
                          "downloading", "cryptocurrency", "livestream", "chatbot", "barcode",
                          "geese", "children", "studied", "happiest", "swimming", "analyses",
                          "colour", "organised", "travelling", "theatre", "catalogue")],
    # misspellings, mashes and names are not
    *[(w, False) for w in ("recieve", "definately", "untill", "teh", "occured", "tommorow",
                           "reccomend", "accomodate", "asdf", "qwertyu", "zxcvb", "hmmmm",
                           "blorft", "germany", "toronto", "nasa")],
]


@pytest.mark.parametrize(("word", "real"), LEXICON, ids=[w for w, _ in LEXICON])
def test_lexicon(word: str, real: bool) -> None:
    assert is_word(word) is real, why_not_word(word)
    assert is_word(word.upper()) is real  # case-insensitive
