"""Classifier steps of the data recipe: a toxicity filter and quality selection by a trained classifier.

Both run per document after the rule filters and before dedup fingerprinting: the rules are cheaper and
remove the obvious, the classifiers (profanity check ~74k short documents/s per STACK_NOTES; the quality
classifier ~3.5 MB of text/s on one core, measured on the embedded corpora) then see less, and the expensive
global dedup sees only what the classifiers keep. Both run inside the shard jobs of a scheduler array, so
their counts merge like the other per-document steps.

- Toxicity: alt-profanity-check (a linear model on word n-grams, shipped in its wheel; see
  `fromscratch.data.toxicity`). A document scoring >= `toxicity_threshold` is dropped. It is a
  profanity detector: it drops Shakespeare's insults and misses hateful text without swear words.
- Quality: `fromscratch.data.quality` (the shipped default, or a folder trained with
  `python -m fromscratch.data.quality train`). `threshold` keeps documents scoring >= `quality_threshold`;
  `pareto` keeps a document when a Pareto(`quality_pareto_alpha`) draw exceeds 1 - score (GPT-3, Brown et
  al. 2020: mostly high scores, some low ones, so the corpus is not narrowed to the positives' style). The
  draw is a hash of the document and the seed, so it does not depend on batches, workers or shards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..config import UserError

SAMPLING = ("threshold", "pareto")
BINS = 10  # score histogram in stats.json (sums merge across shards; means do not)


@dataclass
class ClassifierArguments:
    toxicity_threshold: float | None = None
    quality_classifier: str | None = None
    quality_threshold: float = 0.5
    quality_sampling: str = "threshold"
    quality_pareto_alpha: float = 9.0


def toxicity_on(args: ClassifierArguments) -> bool:
    return args.toxicity_threshold is not None and args.toxicity_threshold >= 0


def check(args: ClassifierArguments):
    """Bad settings fail before any work; returns the quality classifier (or None)."""
    if toxicity_on(args) and not 0 < args.toxicity_threshold <= 1:
        raise UserError(f"toxicity_threshold must be in (0, 1], or null/-1 for off; got {args.toxicity_threshold}")
    if args.quality_sampling not in SAMPLING:
        raise UserError(f"quality_sampling must be one of {', '.join(SAMPLING)}, got {args.quality_sampling!r}")
    if not 0 <= args.quality_threshold <= 1 or args.quality_pareto_alpha <= 0:
        raise UserError("quality_threshold must be in [0, 1] and quality_pareto_alpha > 0")
    if not args.quality_classifier:
        return None
    from .quality import QualityClassifier

    return QualityClassifier.load(args.quality_classifier)


def toxicity_reason(threshold: float) -> str:
    return f"toxicity >= {threshold:g}"


def toxicity_batch(texts: list[str], threshold: float, hashes=None) -> tuple[list[str], list[float]]:
    """`hashes`: the texts' word hashes (`dedup.words`) if an earlier step made them."""
    from .toxicity import score

    scores = score(texts, hashes)
    why = toxicity_reason(threshold)
    return [why if s >= threshold else "" for s in scores], [float(s) for s in scores]


def pareto_keep(texts: list[str], scores: np.ndarray, alpha: float, seed: int) -> np.ndarray:
    """GPT-3's rule, keep if np.random.pareto(alpha) > 1 - score, with the uniform draw taken from a hash of
    (seed, text) and turned into a Pareto (Lomax) one by the inverse CDF: u ** (-1 / alpha) - 1."""
    key = seed.to_bytes(8, "little", signed=True)
    u = np.array([(int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8, key=key).digest(), "little")
                   + 1) / 2.0 ** 64 for t in texts])
    return u ** (-1.0 / alpha) - 1.0 > 1.0 - np.asarray(scores)


def quality_batch(texts: list[str], classifier, args: ClassifierArguments, seed: int
                  ) -> tuple[list[str], list[float]]:
    scores = classifier.score(texts)
    if args.quality_sampling == "pareto":
        keep = pareto_keep(texts, scores, args.quality_pareto_alpha, seed)
        why = f"quality sampling (pareto alpha {args.quality_pareto_alpha:g})"
    else:
        keep = scores >= args.quality_threshold
        why = f"quality score < {args.quality_threshold:g}"
    return ["" if k else why for k in keep], [float(s) for s in scores]


def score_summary(scores: list[float], reasons: list[str]) -> dict:
    """Counts and sums (not means, so shards add up) of the scores of kept and dropped documents, and a
    histogram; `mean_scores` turns them into means."""
    s = np.asarray(scores, dtype=float)
    kept = np.array([not r for r in reasons], dtype=bool)
    hist = np.histogram(s, bins=BINS, range=(0.0, 1.0))[0] if len(s) else np.zeros(BINS, int)
    return {"kept": {"documents": int(kept.sum()), "score_sum": round(float(s[kept].sum()), 4)},
            "dropped": {"documents": int((~kept).sum()), "score_sum": round(float(s[~kept].sum()), 4)},
            "histogram": {f"{i / BINS:.1f}-{(i + 1) / BINS:.1f}": int(n) for i, n in enumerate(hist)}}


def mean_scores(summary: dict) -> dict:
    return {k: (round(v["score_sum"] / v["documents"], 4) if v["documents"] else None)
            for k, v in summary.items() if k in ("kept", "dropped")}
