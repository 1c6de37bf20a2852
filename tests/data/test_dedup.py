"""Deduplication on real paragraphs with planted exact and near duplicates: recall and false removals."""

import random
import re

import numpy as np
import pytest

from fromscratch.data.dedup import DedupArguments, MinHasher, deduplicate, fingerprints
from fromscratch.sources import load_documents

ARGS = DedupArguments()


def normalized_words(text: str) -> list[str]:
    return re.findall("[0-9_a-z\u0080-\U0010ffff]+", text.lower())  # dedup's notion of a word


def shingle_set(text: str, k: int = 5) -> set:
    w = normalized_words(text)
    return {tuple(w[i:i + k]) for i in range(max(len(w) - k + 1, 1))}


def jaccard(a: str, b: str) -> float:
    x, y = shingle_set(a), shingle_set(b)
    return len(x & y) / len(x | y)


def near_copy(text: str, rng: random.Random) -> str:
    """What a crawl makes of a page seen twice: a few words changed, one dropped, a footer line, new spacing."""
    w = text.split()
    for _ in range(max(1, len(w) // 100)):
        w[rng.randrange(len(w))] = rng.choice(["nation", "people", "government", "liberty"])
    del w[rng.randrange(len(w))]
    return " ".join(w) + "\nShare this page"


@pytest.fixture(scope="module")
def planted():
    docs, _ = load_documents("default:us_speeches")
    paras = [p for d in docs for p in d.split("\n\n") if len(p.split()) >= 80]  # J(copy) >= 0.75
    rng = random.Random(0)
    originals = rng.sample(range(len(paras)), 300)
    near = [near_copy(paras[i], rng) for i in originals[:200]]
    exact = ["  " + paras[i].upper().replace(".", " . ") for i in originals[200:]]  # case/punctuation/spacing only
    corpus = paras + near + exact
    order = list(range(len(paras), len(corpus)))
    rng.shuffle(order)
    return corpus, len(paras), set(order)


def test_planted_duplicates_are_removed_without_false_removals(planted):
    corpus, n_real, plants = planted
    reasons, info = deduplicate(corpus, ARGS, batch_size=256)
    removed = {i for i, r in enumerate(reasons) if r}
    recall = len(removed & plants) / len(plants)
    print(f"planted {len(plants)}: recall {recall:.3f}; {info}")
    assert recall >= 0.97
    # A removed original must be a real duplicate of an earlier paragraph (the speeches repeat a few).
    for i in removed - plants:
        best = max(jaccard(corpus[i], corpus[j]) for j in range(i))
        assert best >= ARGS.near_threshold - 0.1, (i, best, corpus[i][:80])
    assert all(reasons[i] == "exact duplicate" for i in range(n_real + 200, len(corpus)))


def test_first_occurrence_is_kept(planted):
    corpus, n_real, _ = planted
    reasons, _ = deduplicate([corpus[0], corpus[0].lower(), near_copy(corpus[0], random.Random(1))], ARGS)
    assert reasons == ["", "exact duplicate", "near duplicate"]


def test_fingerprints_do_not_depend_on_batching(planted):
    corpus, _, _ = planted
    texts = corpus[:50] + ["", "one", "two words", "Four score and seven years ago"]  # empty and short documents
    keys, sigs = fingerprints(texts, ARGS)
    for i in (0, 7, 50, 51, 53):
        k1, s1 = fingerprints([texts[i]], ARGS)
        assert (k1[0] == keys[i]).all() and (s1[0] == sigs[i]).all()
    assert not (sigs[51] == sigs[52]).all()


def test_signatures_estimate_jaccard(planted):
    corpus, n_real, _ = planted
    rng = random.Random(2)
    pairs = [(corpus[i], near_copy(corpus[i], rng)) for i in range(0, 400, 10)]
    pairs += [(corpus[i], corpus[i + 1]) for i in range(0, 400, 20)]  # unrelated paragraphs: ~0
    hasher = MinHasher(ARGS)
    errors = []
    for a, b in pairs:
        _, s = fingerprints([a, b], ARGS, hasher)
        errors.append((s[0] == s[1]).mean() - jaccard(a, b))
    assert abs(np.mean(errors)) < 0.03 and np.std(errors) < 0.07
