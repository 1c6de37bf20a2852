"""The toxicity classifier: alt-profanity-check, which ships its scikit-learn model in the wheel, so it runs offline.

One scorer for the whole project: the data stage drops documents by it (`classifiers.toxicity_batch`) and the
evaluation scores sampled continuations by it (`fromscratch.evaluation.toxicity`, which re-exports `score`). It
lives here, in the lower layer, so that data never imports evaluation. evaluate's "toxicity" metric and detoxify
download a classifier at first use and fail offline (STACK_NOTES). It is a profanity detector (a linear model on
word n-grams): it misses toxicity without swear words.
"""

from __future__ import annotations

import numpy as np


def score(texts: list[str]) -> np.ndarray:
    """Probability of toxicity per text, in [0, 1] (empty texts score 0)."""
    from profanity_check import predict_prob

    texts = list(texts)
    if not texts:
        return np.zeros(0)
    probs = predict_prob([t if t.strip() else "." for t in texts])
    return np.where([bool(t.strip()) for t in texts], probs, 0.0)
