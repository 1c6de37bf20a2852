"""Classifier steps: the toxicity filter drops a toxic document and keeps a benign one under its own reason;
quality selection by threshold or by GPT-3's Pareto rule, independent of batching; bad settings fail early."""

import datasets
import numpy as np
import pytest

from fromscratch.config import UserError
from fromscratch.data.classifiers import (ClassifierArguments, check, pareto_keep, quality_batch,
                                          score_summary, toxicity_batch)
from fromscratch.data.stats import StepStats
from fromscratch.data.toxicity import profanity_probs

TOXIC = "You are a fucking idiot and a worthless piece of shit, shut up."
BENIGN = "The committee met on Tuesday to review the harbour accounts and approve the new bridge."


def test_toxicity_filter_drops_the_toxic_document_and_keeps_the_benign_one():
    ds = datasets.Dataset.from_dict({"text": [BENIGN, TOXIC, "Thank you all for coming tonight."],
                                     "source": ["a", "b", "a"]})
    ds = ds.map(lambda b: dict(zip(("drop", "score"), toxicity_batch(b["text"], 0.9))), batched=True, batch_size=2)
    assert ds["drop"] == ["", "toxicity >= 0.9", ""]
    assert ds["score"][1] >= 0.9 > max(ds["score"][0], ds["score"][2])
    stats = StepStats()
    stats.record("toxicity", ds["source"], ds["drop"], extra={"scores": score_summary(ds["score"], ds["drop"])})
    (step,) = stats.to_dict()
    assert step["dropped"] == {"toxicity >= 0.9": 1} and step["by_source"]["b"]["kept"] == 0
    assert step["scores"]["dropped"]["documents"] == 1 and sum(step["scores"]["histogram"].values()) == 3


def test_fast_profanity_scores_equal_the_library_ones():
    """profanity_probs rebuilds alt-profanity-check's count matrix its own way: the scores must be the same floats."""
    from profanity_check import predict_prob

    texts = [TOXIC, BENIGN, "SHIT happens, Shit HAPPENS; shit!", "Ünïcödé wörds: straße, İstanbul, ＦＵＣＫ",
             "a b c", "the and of to", "x_y_z 42 don't can't", "fuck " * 300 + BENIGN * 20, "", ".",
             # words with a non-ASCII byte take the regex path: curly quotes split a token, accents do not
             "don’t FUCKING do that, café’s shit—really", "ΟΔΥΣΣΕΥΣ ΣΑΣ ασσ δις", "日本語のテキスト shit 東京",
             "nul\x00shit\x00", "😀shit😀 ass\u0301hole fu\u200bck", "ǅemal ǆungla ﬁnd shit", "_x_ __ 12 a1"]
    texts += [" ".join(texts[i:i + 3]) for i in range(len(texts))]
    assert np.array_equal(profanity_probs(texts), predict_prob(texts))
    # with the word hashes an earlier step made (the data stage's rule filter), the same numbers
    from fromscratch.data.dedup import words

    assert np.array_equal(profanity_probs(texts, words(texts)[0]), predict_prob(texts))
    assert len(profanity_probs([])) == 0


class _Fixed:
    """A stand-in classifier: the score is the text's number."""

    def score(self, texts):
        return np.array([float(t.split()[-1]) for t in texts])


def test_quality_threshold_and_pareto_sampling():
    texts = [f"doc {i} {s}" for i, s in enumerate(np.linspace(0, 1, 20001))]
    reasons, scores = quality_batch(texts, _Fixed(), ClassifierArguments(quality_threshold=0.75), seed=0)
    assert sum(1 for r in reasons if not r) == 5001 and set(reasons) == {"", "quality score < 0.75"}
    args = ClassifierArguments(quality_sampling="pareto", quality_pareto_alpha=9.0)
    reasons, _ = quality_batch(texts, _Fixed(), args, seed=0)
    kept = np.array([not r for r in reasons])
    s = np.array(scores)
    # numpy's pareto(a) is a Lomax draw, P(X > x) = (1 + x) ** -a, so P(keep) = (2 - score) ** -9:
    # 0.002 at score 0, 0.026 at 0.5, 0.42 at 0.9, 1 at 1 (GPT-3 keeps mostly top scores, a few others)
    for lo, hi in ((0.0, 0.5), (0.5, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.0)):
        band = (s >= lo) & (s < hi)
        assert kept[band].mean() == pytest.approx(((2 - s[band]) ** -9.0).mean(), abs=0.03), (lo, hi)
    # the draw depends on the text and the seed only, not on how the documents are batched
    half = pareto_keep(texts[10000:], s[10000:], 9.0, 0)
    assert (half == kept[10000:]).all() and not (pareto_keep(texts, s, 9.0, 1) == kept).all()


def test_bad_settings_fail_before_work(tmp_path):
    with pytest.raises(UserError, match="toxicity_threshold"):
        check(ClassifierArguments(toxicity_threshold=1.5))
    with pytest.raises(UserError, match="quality_sampling"):
        check(ClassifierArguments(quality_sampling="top-k"))
    with pytest.raises(UserError, match="no config.json"):
        check(ClassifierArguments(quality_classifier=str(tmp_path)))
    assert check(ClassifierArguments(toxicity_threshold=-1)) is None  # -1 = off
