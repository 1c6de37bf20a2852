"""A small, fast quality classifier: hashed word n-grams + logistic regression (the GPT-3 recipe, Brown et al.
2020 appendix A; FineWeb-Edu does the same with embeddings), trained on text you trust vs a noisy mix.

    python -m fromscratch.data.quality train --positive default:us_speeches default:tinyshakespeare \
        --negative degraded --output my_classifier      # or: make quality-classifier

Features are scikit-learn's HashingVectorizer (stateless: nothing to fit, nothing to save but its settings),
so a saved classifier is a folder of plain files: `weights.npz` (the linear weights as float16, and the
bias; no pickle, so loading runs no code and does not depend on the scikit-learn version that trained it),
`config.json` (vectorizer settings, threshold, what it was trained on, held-out accuracy, the command) and a
README.md card. Its score is the probability of "high quality".

Held-out evaluation: each source's documents are cut into contiguous blocks (runs of Shakespeare speeches,
whole addresses), a seeded fifth of the blocks is held out, and only then are documents grouped into passages
and degraded; no held-out passage, nor a degraded copy of one, is seen in training. The reported accuracy is
that of the float16 weights as saved, i.e. of what loads.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
from pathlib import Path

import numpy as np

from ..config import UserError

FORMAT = "fromscratch-quality-classifier/1"
DEFAULT_DIR = "default"
# Words and each punctuation mark as tokens: shuffled or fragmentary text differs from prose mostly in
# its bigrams across words and punctuation ("end ." ". The"); case kept for sentence starts and all-caps.
VECTORIZER = {"analyzer": "word", "ngram_range": [1, 2], "token_pattern": r"\w+|[^\w\s]", "lowercase": False,
              "n_features": 2 ** 18, "alternate_sign": False, "norm": "l2"}


def default_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("fromscratch") / "resources" / "quality_classifier"))


class QualityClassifier:
    def __init__(self, coef: np.ndarray, intercept: float, config: dict):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = float(intercept)
        self.config = config
        v = dict(config["vectorizer"], ngram_range=tuple(config["vectorizer"]["ngram_range"]))
        self.vectorizer = HashingVectorizer(**v, dtype=np.float32)
        self.threshold = float(config.get("threshold", 0.5))

    def score(self, texts: list[str]) -> np.ndarray:
        """Probability that each text is high quality, in [0, 1]."""
        if not len(texts):
            return np.zeros(0)
        z = self.vectorizer.transform(list(texts)) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))

    def save(self, folder: str | Path, card: str) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / "weights.npz", coef=self.coef.astype(np.float16),
                            intercept=np.array([self.intercept]))
        (folder / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")
        (folder / "README.md").write_text(card)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "QualityClassifier":
        """A saved folder; None or "default" is the one shipped in the package."""
        folder = default_path() if path in (None, DEFAULT_DIR) else Path(path)
        if not (folder / "config.json").is_file() or not (folder / "weights.npz").is_file():
            raise UserError(f"quality_classifier: no config.json + weights.npz in {folder}")
        config = json.loads((folder / "config.json").read_text())
        if config.get("format") != FORMAT:
            raise UserError(f"quality_classifier: {folder} is not a {FORMAT} folder")
        with np.load(folder / "weights.npz", allow_pickle=False) as w:
            return cls(w["coef"], float(w["intercept"][0]), config)


def passages(docs: list[str], min_words: int = 15, max_words: int = 250) -> list[str]:
    """Consecutive paragraphs grouped into passages of min_words..max_words words (a long address gives
    many, short speeches are joined), so both classes are judged at a similar, document-like length."""
    out, cur, n = [], [], 0
    for doc in docs:
        for para in (p.strip() for p in doc.split("\n\n")):
            if not para:
                continue
            words = para.split()
            while len(words) > max_words:  # a long paragraph: cut at max_words
                if cur:
                    out.append("\n\n".join(cur))
                    cur, n = [], 0
                out.append(" ".join(words[:max_words]))
                words = words[max_words:]
            cur.append(" ".join(words) if len(words) != len(para.split()) else para)
            n += len(words)
            if n >= min_words:
                out.append("\n\n".join(cur))
                cur, n = [], 0
    return out


def split_blocks(docs: list[str], held_out: float, seed: int, blocks: int = 50) -> tuple[list[str], list[str]]:
    """Train and held-out documents: contiguous blocks, a seeded `held_out` share of them held out."""
    size = max(1, -(-len(docs) // blocks))
    chunks = [docs[i:i + size] for i in range(0, len(docs), size)]
    order = list(range(len(chunks)))
    random.Random(seed).shuffle(order)
    n_out = max(1, round(len(chunks) * held_out)) if len(chunks) > 1 else 0
    out = set(order[:n_out])
    return ([d for i, c in enumerate(chunks) if i not in out for d in c],
            [d for i, c in enumerate(chunks) if i in out for d in c])


def _sets(specs: list[str], held_out: float, seed: int, degraded_from: list[str] | None = None):
    """Passages per split for one class; `degraded_from` (the positives' specs) builds the degraded mix."""
    from ..sources import load_documents
    from .degrade import degrade

    train, test, kinds = [], [], []
    for k, spec in enumerate(specs):
        docs, _ = load_documents(spec)
        a, b = split_blocks(docs, held_out, seed + k)
        train += passages(a)
        test += passages(b)
    if degraded_from is not None:  # degrade each split on its own: held-out text never reaches training
        tr, te = degrade(train, seed), degrade(test, seed + 1)
        kinds = [k for _, k in te]  # the degradation of each held-out negative
        train, test = [t for t, _ in tr], [t for t, _ in te]
    return train, test, kinds


def train(positive: list[str], negative: list[str], *, held_out: float = 0.2, seed: int = 0, c: float = 32.0,
          threshold: float = 0.5, n_features: int | None = None, command: str = "") -> tuple[QualityClassifier, dict]:
    """Fit on the training split, report accuracy on the held-out one. `negative` may hold `degraded`."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    real = [s for s in negative if s != "degraded"]
    pos_tr, pos_te, _ = _sets(positive, held_out, seed)
    neg_tr, neg_te, kinds = ([], [], [])
    if "degraded" in negative:
        neg_tr, neg_te, kinds = _sets(positive, held_out, seed, degraded_from=positive)
    if real:
        a, b, _ = _sets(real, held_out, seed + 100)
        neg_tr, neg_te = neg_tr + a, neg_te + b
    if min(len(pos_tr), len(neg_tr), len(pos_te), len(neg_te)) == 0:
        raise UserError("quality classifier: each class needs passages in both the training and held-out splits")
    vec = dict(VECTORIZER, n_features=n_features or VECTORIZER["n_features"])
    config = {"format": FORMAT, "vectorizer": vec, "threshold": threshold}
    featurize = QualityClassifier(np.zeros(vec["n_features"]), 0.0, config).vectorizer
    x = featurize.transform(pos_tr + neg_tr)
    y = np.r_[np.ones(len(pos_tr)), np.zeros(len(neg_tr))]
    model = LogisticRegression(C=c, max_iter=2000).fit(x, y)
    clf = QualityClassifier(model.coef_[0].astype(np.float16), float(model.intercept_[0]), config)
    p, n = clf.score(pos_te), clf.score(neg_te)
    report = {
        "held_out_accuracy": round(float(((p >= threshold).sum() + (n < threshold).sum()) / (len(p) + len(n))), 4),
        "held_out_positive_recall": round(float((p >= threshold).mean()), 4),
        "held_out_negative_recall": round(float((n < threshold).mean()), 4),
        "train_accuracy": round(float(((clf.score(pos_tr) >= threshold) == 1).mean() / 2
                                      + ((clf.score(neg_tr) < threshold) == 1).mean() / 2), 4),
        "passages": {"train": {"positive": len(pos_tr), "negative": len(neg_tr)},
                     "held_out": {"positive": len(pos_te), "negative": len(neg_te)}},
        "held_out_negative_recall_by_degradation": {
            k: round(float((n[:len(kinds)][np.array(kinds) == k] < threshold).mean()), 4) for k in sorted(set(kinds))}}
    clf.config.update({"positive": positive, "negative": negative, "held_out_fraction": held_out, "seed": seed,
                       "C": c, **report, "trained_with": f"scikit-learn {sklearn.__version__}",
                       "command": command})
    return clf, report


def card(config: dict) -> str:
    r = config
    deg = ", ".join(f"{k} {v:.3f}" for k, v in r["held_out_negative_recall_by_degradation"].items()) or "none"
    return f"""---
license: apache-2.0
language:
- en
library_name: scikit-learn
tags:
- text-classification
- data-filtering
- fromscratch
---

# Quality classifier (hashed word n-grams + logistic regression)

Scores a text's probability of being "high quality" in the sense of the positives below, for
`recipes/01_data` (`quality_classifier`, `quality_threshold`, `quality_sampling`). Load it with
`fromscratch.data.quality.QualityClassifier.load("<this folder>")`; it reads `weights.npz` (float16
weights, no pickle) and rebuilds the vectorizer from `config.json`.

| | |
|---|---|
| positives | {", ".join(f"`{s}`" for s in r["positive"])} |
| negatives | {", ".join(f"`{s}`" for s in r["negative"])} |
| passages (train) | {r["passages"]["train"]["positive"]} positive, {r["passages"]["train"]["negative"]} negative |
| passages (held out) | {r["passages"]["held_out"]["positive"]} positive, {r["passages"]["held_out"]["negative"]} negative |
| held-out accuracy (threshold {r["threshold"]}) | **{r["held_out_accuracy"]:.4f}** (positives kept {r["held_out_positive_recall"]:.4f}, negatives dropped {r["held_out_negative_recall"]:.4f}) |
| train accuracy | {r["train_accuracy"]:.4f} |
| features | word and punctuation 1-2-grams, hashed to {r["vectorizer"]["n_features"]:,} features, L2-normalised |
| model | logistic regression, C = {r["C"]}, {r["trained_with"]} |

`degraded` negatives are the positives' own passages corrupted the way crawled pages are
(`fromscratch.data.degrade`; share of held-out degraded passages scored below the threshold: {deg}), so the two classes share vocabulary and topic and the model learns
form, not subject. The held-out split is a seeded {r["held_out_fraction"]:.0%} of contiguous blocks of each
source's documents (whole addresses, runs of speeches), cut before passages are formed and degraded.

Rebuild (gives the same weights and accuracy):

```bash
{r["command"]}
```

## Limitations

- "Quality" means "reads like the positives": prose with normal sentence structure. It does not judge
  truth, usefulness, toxicity or topic; use it beside the rule filters, not instead of them.
- The negatives are synthetic degradations, not a real crawl: real low-quality pages that are fluent
  (spam prose, machine-generated text, ads written as sentences) score as high quality.
- Trained on English only; other languages score near the bias, unpredictably.
- A linear model on n-grams: it can be gamed by padding, and its scores are not calibrated on your data;
  check the kept/dropped scores the recipe writes to stats.json before trusting a threshold.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m fromscratch.data.quality", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train and save a quality classifier")
    t.add_argument("--positive", nargs="+", required=True, help="sources of high-quality text")
    t.add_argument("--negative", nargs="+", default=["degraded"],
                   help="sources of low-quality text; 'degraded' = crawl-like corruptions of the positives")
    t.add_argument("--output", required=True)
    t.add_argument("--held_out", type=float, default=0.2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--C", type=float, default=32.0)
    t.add_argument("--threshold", type=float, default=0.5)
    t.add_argument("--n_features", type=int, default=VECTORIZER["n_features"])
    s = sub.add_parser("score", help="print the score of each line of a file (or stdin)")
    s.add_argument("--classifier", default=DEFAULT_DIR)
    s.add_argument("file", nargs="?")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "train":
            cmd = "python -m fromscratch.data.quality " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
            clf, report = train(args.positive, args.negative, held_out=args.held_out, seed=args.seed, c=args.C,
                                threshold=args.threshold, n_features=args.n_features, command=cmd)
            clf.save(args.output, card(clf.config))
            print(json.dumps(report, indent=2))
            print(f"[done] held-out accuracy {report['held_out_accuracy']:.4f}; saved in {args.output}")
        else:
            lines = (open(args.file, encoding="utf-8") if args.file else sys.stdin).read().splitlines()
            for line, p in zip(lines, QualityClassifier.load(args.classifier).score(lines)):
                print(f"{p:.4f}\t{line[:100]}")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
