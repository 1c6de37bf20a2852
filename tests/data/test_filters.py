"""Quality filters on real prose and on documents built to break one rule each."""

from pathlib import Path

import pytest

from fromscratch.data.filters import FilterArguments, QualityFilter, load_bad_words
from fromscratch.sources import load_documents

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def speeches():
    docs, _ = load_documents("default:us_speeches")
    return [p for d in docs for p in d.split("\n\n") if len(p.split()) >= 60]


@pytest.fixture(scope="module")
def quality():
    return QualityFilter(FilterArguments())


def test_real_prose_passes(speeches, quality):
    reasons = quality.batch(speeches[:300])
    # the few losses are paragraphs cut mid-sentence (no terminal punctuation) and C4's strict bad-word rule
    assert sum(1 for r in reasons if not r) >= 0.9 * len(reasons), set(reasons)


def test_each_rule_names_its_reason(speeches, quality):
    prose = next(p for p in speeches if not quality.reason(p))
    bare = prose.replace(".", "").replace(",", "").replace(";", "").split()
    cases = {
        "too few words": "The end of the speech.",
        "mean word length": " ".join(["a b c d e of to the"] * 10),
        "symbol to word ratio": prose + " #tag" * 40,
        "bullet lines": "\n".join("- the remarkable collection of historical documents" for _ in range(60)),
        "ellipsis lines": "\n".join(f"the people of the nation went on and on ..." for _ in range(3)) + "\n" + prose,
        "non-alphabetic words": prose + " 1776 1812 1861 1918 1941" * 60,
        "too few stop words": " ".join(["Lincoln Washington Jefferson Adams Madison Monroe."] * 12),
        "duplicate lines": "\n".join([prose.split(".")[0] + "."] * 5 + [prose]),
        "repeated 2-grams": prose + " the people" * 80,
        "no terminal punctuation": "\n".join(" ".join(bare[i:i + 8]) for i in range(0, len(bare), 8)),
        "lorem ipsum": "Lorem ipsum dolor sit amet. " + prose,
        "curly braces": "{{ template }} " + prose,
    }
    for reason, text in cases.items():
        assert quality.reason(text) == reason, (reason, quality.reason(text))


def test_thresholds_come_from_the_config(quality):
    short = "First Citizen:\nYou are all resolved rather to die than to famish?"  # a real Shakespeare speech
    assert quality.reason(short) == "too few words"
    relaxed = QualityFilter(FilterArguments(min_words=5, min_stop_words=1))
    assert relaxed.reason(short) == ""


def test_bad_words_list_is_shipped_with_licence():
    shipped = Path(__file__).resolve().parents[2] / "src" / "fromscratch" / "resources" / "ldnoobw"
    assert (shipped / "LICENSE").read_text().count("Attribution 4.0") >= 1
    words, phrases = load_bad_words()
    if SHARED.exists():
        original = [w for w in (SHARED / "ldnoobw" / "en").read_text().splitlines() if w.strip()]
        assert len(words) + len(phrases) == len(set(original))
    assert "bastard" in words and "2 girls 1 cup" in phrases
    quality = QualityFilter(FilterArguments(min_words=3))
    assert quality.reason("He said it was a blue waffle of the day.") == "bad words"  # a phrase


def test_bad_words_count_against_the_limit(speeches):
    prose = speeches[7]
    strict, lenient, off = (QualityFilter(FilterArguments(max_bad_words=n)) for n in (0, 3, -1))
    text = prose + " The trade and commercial intercourse of the nations."  # a real 19th-century usage
    assert strict.reason(text) == "bad words"
    assert lenient.reason(text) == "" and off.reason(text) == ""
