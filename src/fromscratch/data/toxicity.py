"""The toxicity classifier: alt-profanity-check, which ships its scikit-learn model in the wheel, so it runs offline.

One scorer for the whole project: the data stage drops documents by it (`classifiers.toxicity_batch`) and the
evaluation scores sampled continuations by it (`fromscratch.evaluation.toxicity`, which re-exports `score`). It
lives here, in the lower layer, so that data never imports evaluation. evaluate's "toxicity" metric and detoxify
download a classifier at first use and fail offline (STACK_NOTES). It is a profanity detector (a linear model on
word n-grams): it misses toxicity without swear words.
"""

from __future__ import annotations

import re

import numpy as np

from .dedup import HashSet, text_bytes, word_bounds, word_spans, words


def score(texts: list[str], hashes: np.ndarray | None = None) -> np.ndarray:
    """Probability of toxicity per text, in [0, 1] (empty texts score 0). `hashes`: the texts' word hashes
    (`dedup.words`) if an earlier step made them."""
    texts = list(texts)
    if not texts:
        return np.zeros(0)
    probs = profanity_probs([t if t.strip() else "." for t in texts], hashes)  # a blank text and "." have no words
    return np.where([bool(t.strip()) for t in texts], probs, 0.0)


_VOCAB: tuple | None = None


def _ascii_vocabulary():
    """(HashSet of the word hashes of the vectorizer's ASCII vocabulary, the column of each, in the set's order):
    built once (the data stage builds it in the launcher, before its tasks fork)."""
    global _VOCAB
    if _VOCAB is None:
        from profanity_check.profanity_check import vectorizer

        stop = vectorizer.get_stop_words() or frozenset()
        entries = sorted((w, j) for w, j in vectorizer.vocabulary_.items() if w.isascii() and w not in stop)
        hashes, offsets = words([w for w, _ in entries])
        vocab = HashSet(hashes)
        assert len(vocab) == len(entries) and np.all(np.diff(offsets) == 1), "an ASCII token is one word, one hash"
        _VOCAB = vocab, np.array([j for _, j in entries], np.int64)[np.argsort(hashes)]
    return _VOCAB


def profanity_probs(texts: list[str], hashes: np.ndarray | None = None) -> np.ndarray:
    """alt-profanity-check's `predict_prob(texts)`, the same numbers, several times faster.

    Its TfidfVectorizer counts tokens in a Python loop over every token (sklearn's `_count_vocab`: half of the
    data stage's toxicity time, measured), and a per-token Counter was still most of ours. Its tokens (lowercase,
    runs of 2+ word characters, stop words out) are our words (`dedup.word_spans`: runs of [0-9_a-z] and non-ASCII
    bytes) wherever a word is pure ASCII: those are looked up by their 64-bit hash among the vocabulary's. Only
    the few words with a non-ASCII byte ("café", "don’t") go through the vectorizer's own regex. The count matrix
    is the one sklearn builds (CSR, sorted indices), handed to the vectorizer's own tf-idf step and the model.
    `hashes`: the texts' word hashes if the caller has them. tests/data/test_classifiers.py checks equality with
    `predict_prob`; the data filter and the eval both score through it."""
    import scipy.sparse as sp
    from profanity_check.profanity_check import model, vectorizer

    if not texts:
        return np.zeros(0)
    assert vectorizer.lowercase and vectorizer.token_pattern == r"(?u)\b\w\w+\b", "the tokens this relies on"
    vocab_set, columns = _ascii_vocabulary()
    vocab, stop, tokens = vectorizer.vocabulary_, vectorizer.get_stop_words() or frozenset(), _TOKENS.findall
    # NUL separates the texts in the byte array; it is no word character for the vectorizer either
    texts = [t.replace("\x00", " ") if "\x00" in t else t for t in texts]
    b = text_bytes(texts)
    starts, ends = word_bounds(b)
    if hashes is None or len(hashes) != len(starts):
        hashes = word_spans(texts, b)[0]
    doc_of = np.searchsorted(np.flatnonzero(b == 0), starts)
    # a word and the bytes up to the next one hold a non-ASCII byte iff the word does (the rest is ASCII)
    wide = np.logical_or.reduceat(b >= 128, starts) if len(starts) else np.zeros(0, bool)
    at, pos = vocab_set.find(hashes)
    n_cols = len(vocab)
    keys = [doc_of[at[~wide[at]]] * n_cols + columns[pos[~wide[at]]]]
    raw, extra = b.tobytes(), []
    for i in np.flatnonzero(wide).tolist():
        for w in tokens(raw[starts[i]:ends[i]].decode("utf-8")):
            j = vocab.get(w)
            if j is not None and w not in stop:
                extra.append(int(doc_of[i]) * n_cols + j)
    cells, counts = np.unique(np.concatenate(keys + [np.array(extra, np.int64)]), return_counts=True)
    indptr = np.searchsorted(cells, np.arange(len(texts) + 1) * n_cols)
    x = sp.csr_array((counts.astype(np.intc), (cells % n_cols).astype(np.int32), indptr.astype(np.int32)),
                     shape=(len(texts), n_cols), dtype=vectorizer.dtype)
    x.sort_indices()
    return model.predict_proba(vectorizer._tfidf.transform(x, copy=False))[:, 1]


_TOKENS = re.compile(r"(?u)\b\w\w+\b")
