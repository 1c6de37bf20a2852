"""The toxicity classifier: alt-profanity-check, which ships its scikit-learn model in the wheel, so it runs offline.

One scorer for the whole project: the data stage drops documents by it (`classifiers.toxicity_batch`) and the
evaluation scores sampled continuations by it (`fromscratch.evaluation.toxicity`, which re-exports `score`). It
lives here, in the lower layer, so that data never imports evaluation. evaluate's "toxicity" metric and detoxify
download a classifier at first use and fail offline (STACK_NOTES). It is a profanity detector (a linear model on
word n-grams): it misses toxicity without swear words.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np


def score(texts: list[str]) -> np.ndarray:
    """Probability of toxicity per text, in [0, 1] (empty texts score 0)."""
    texts = list(texts)
    if not texts:
        return np.zeros(0)
    probs = profanity_probs([t if t.strip() else "." for t in texts])
    return np.where([bool(t.strip()) for t in texts], probs, 0.0)


def profanity_probs(texts: list[str]) -> np.ndarray:
    """alt-profanity-check's `predict_prob(texts)`, the same numbers, about twice as fast on long documents.

    Its TfidfVectorizer counts tokens in a Python loop over every token (sklearn's `_count_vocab`: half of the
    data stage's toxicity time, measured). Here each document's tokens (the vectorizer's own lowercasing, token
    pattern and stop words) are counted by `collections.Counter`, and only the distinct ones are looked up; the
    count matrix is the one sklearn builds (CSR, sorted indices), handed to the vectorizer's own tf-idf step
    and the model. tests/data/test_classifiers.py checks equality with `predict_prob`; the data filter and the eval both
    score through it."""
    import scipy.sparse as sp
    from profanity_check.profanity_check import model, vectorizer

    if not texts:
        return np.zeros(0)
    vocab, stop = vectorizer.vocabulary_, vectorizer.get_stop_words() or frozenset()
    tokens, lower = re.compile(vectorizer.token_pattern).findall, vectorizer.lowercase
    indices: list[int] = []
    counts: list[int] = []
    indptr = [0]
    for t in texts:
        for w, c in Counter(tokens(t.lower() if lower else t)).items():
            j = vocab.get(w)
            if j is not None and w not in stop:
                indices.append(j)
                counts.append(c)
        indptr.append(len(indices))
    x = sp.csr_array((np.asarray(counts, dtype=np.intc), np.asarray(indices, dtype=np.int32),
                      np.asarray(indptr, dtype=np.int32)), shape=(len(texts), len(vocab)), dtype=vectorizer.dtype)
    x.sort_indices()
    return model.predict_proba(vectorizer._tfidf.transform(x, copy=False))[:, 1]
