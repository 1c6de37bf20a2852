"""Counterfactual data augmentation (CDA): gender-swapped and occupation-neutralised text.

After Lu et al. 2018 ("Gender Bias in Neural Natural Language Processing": a model trained on the corpus plus
its gender-swapped copy shows less occupation bias) and Zhao et al. 2018 (WinoBias: the same swap on the
training data, with gendered occupation words neutralised). The word list is the project's own
(`resources/counterfactual/gender_pairs.tsv`, Apache-2.0, see the README beside it): `swap` pairs are replaced
both ways (he <-> she, king <-> queen), `neutral` terms one way (policeman -> police officer).

`counterfactual_augmentation`:
- `add`: every training document with at least one swap gets a swapped copy beside it (Lu et al.'s CDA);
- `replace`: the document is swapped in place (their "CDS"-like variant: same size, no repeated content);
- `none`: off.

Where it runs: after the validation hold-out, on the train pool only. A swapped copy of a validation document
would otherwise land in train (a near-duplicate leak the dedup step can no longer catch, since it ran before),
and validation stays natural text, so its loss is comparable with runs that did not augment. Copies join their
source's pool, so the mixing weights (shares of characters) still hold: with `add`, a down-sampled source
spends part of its share on copies rather than on more originals.

What it cannot do: the swap is by word, without parsing. "her" maps to "his" before a noun-like word and to
"him" before punctuation or a function word, and "his" to "hers" in the same places (a heuristic: wrong for
"I gave her dogs");
names are not swapped; historical or biological statements become counterfactual ("our fathers" founded the
republic becomes "our mothers"); only English binary gender terms are covered.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources

from ..config import UserError

MODES = ("none", "add", "replace")
# After "her", these words mean it was an object ("him"), not a possessive ("his"): "gave her the book",
# "told her to go", "with her and", "her." The rest ("her book", "her own") read as a possessive.
_OBJECT_FOLLOWERS = frozenset(
    "a an the to and or but nor so that this these those in on at by for from with without into onto of off out up "
    "down over under about after before again away back as if when while than then now here there too also not "
    "is was be been being are were will would can could shall should may might must do does did has have had "
    "i you he she it we they me him us them my your our their its what which who whom whose how why where "
    "all some any no every each".split())


@dataclass
class AugmentArguments:
    counterfactual_augmentation: str = "none"
    counterfactual_pairs_file: str | None = None


def load_pairs(path: str | None = None) -> dict[str, str]:
    """term -> counterpart, lowercase, both directions for `swap` rows and one way for `neutral` rows.
    Where a counterpart has several terms ("her" <- "him", "his"), the first row wins its reverse; the
    swapper then overrides "her" by context."""
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as err:
            raise UserError(f"counterfactual_pairs_file: cannot read {path} ({err.strerror})") from None
    else:
        text = (resources.files("fromscratch") / "resources" / "counterfactual" / "gender_pairs.tsv").read_text(
            encoding="utf-8")
    pairs: dict[str, str] = {}
    reverse: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#") or line.startswith("term\t"):
            continue
        cols = line.split("\t")
        if len(cols) != 3 or cols[2] not in ("swap", "neutral") or not cols[0].strip() or not cols[1].strip():
            raise UserError(f"counterfactual pairs {path or 'gender_pairs.tsv'}:{n}: expected "
                            "'term<TAB>counterpart<TAB>swap|neutral'")
        a, b, kind = cols[0].strip().lower(), cols[1].strip().lower(), cols[2]
        pairs.setdefault(a, b)
        if kind == "swap":
            reverse.setdefault(b, a)
    for b, a in reverse.items():
        pairs.setdefault(b, a)
    return pairs


def _match_case(src: str, dst: str) -> str:
    if len(src) > 1 and src.isupper():
        return dst.upper()
    if src[:1].isupper():
        return dst[:1].upper() + dst[1:]
    return dst


class Swapper:
    """Whole-word, case-keeping replacement of every term in `pairs` in one regex pass."""

    def __init__(self, pairs: dict[str, str]):
        self.pairs = pairs
        # Longest first, so "policemen" wins over a shorter term at the same place; spaces in a term match
        # any run of whitespace.
        alts = sorted(pairs, key=len, reverse=True)
        self.pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in alts)
                                  + r")(?![\w-])", re.IGNORECASE)
        self._her = "her" in pairs and pairs.get("his") == "her"

    def _target(self, word: str, text: str, end: int) -> str:
        key = re.sub(r"\s+", " ", word.lower())
        if key in ("her", "his") and self._her:
            # Same test both ways: before a noun-like word it is a determiner ("her book" <-> "his book"),
            # else a pronoun standing alone ("gave her." -> "him", "his is here" -> "hers").
            nxt = re.match(r"\s*([A-Za-z']+)?", text[end:])
            follower = (nxt.group(1) or "").lower()
            alone = not follower or follower in _OBJECT_FOLLOWERS
            return ("him" if alone else "his") if key == "her" else ("hers" if alone else "her")
        return self.pairs[key]

    def swap(self, text: str) -> tuple[str, Counter]:
        """The swapped text and how many times each (lowercase) term was replaced."""
        terms: Counter = Counter()

        def repl(m: re.Match) -> str:
            word = m.group(0)
            terms[re.sub(r"\s+", " ", word.lower())] += 1
            return _match_case(word, self._target(word, m.string, m.end()))

        return self.pattern.sub(repl, text), terms


def swap(text: str, pairs: dict[str, str] | None = None) -> tuple[str, int]:
    """Swap every paired term in `text` (the shipped list by default); returns the text and the swap count."""
    out, terms = Swapper(pairs if pairs is not None else load_pairs()).swap(text)
    return out, sum(terms.values())


def check(args: AugmentArguments) -> None:
    """Bad settings fail at the start of the recipe, before any work."""
    if args.counterfactual_augmentation not in MODES:
        raise UserError(f"counterfactual_augmentation must be one of {', '.join(MODES)}, "
                        f"got {args.counterfactual_augmentation!r}")
    if args.counterfactual_augmentation != "none":
        load_pairs(args.counterfactual_pairs_file)


def augment_pool(ds, pool: dict[str, list[int]], args: AugmentArguments, mapkw: dict, top_terms: int = 20):
    """Swap the train-pool documents of `ds` (rows not in `pool` are validation and stay untouched).

    Returns the new dataset, the new pool (copies appended to their source's list under `add`) and the
    counts for stats.json: documents changed, copies added, swaps per term (the `top_terms` most frequent)."""
    import datasets
    import numpy as np

    swapper = Swapper(load_pairs(args.counterfactual_pairs_file))
    in_pool = np.zeros(len(ds), dtype=bool)
    for idx in pool.values():
        in_pool[idx] = True

    def fn(batch, indices):
        swapped, terms = [], []
        for text, i in zip(batch["text"], indices):
            out, counts = swapper.swap(text) if in_pool[i] else (text, Counter())
            swapped.append(out if counts else "")
            terms.append("|".join(f"{t}={n}" for t, n in counts.items()))  # a string: see clean's "changed"
        return {"swapped": swapped, "swap_terms": terms}

    ds = ds.map(fn, with_indices=True, desc="counterfactual", **mapkw)
    terms: Counter = Counter()
    for cell in ds["swap_terms"]:
        for item in cell.split("|") if cell else ():
            t, n = item.rsplit("=", 1)
            terms[t] += int(n)
    swapped = ds["swapped"]
    changed = [i for i in range(len(ds)) if swapped[i]]
    sources = ds["source"]
    added: list[str] = []
    if args.counterfactual_augmentation == "replace":
        ds = ds.map(lambda b: {"text": [s or t for s, t in zip(b["swapped"], b["text"])]}, desc="replace", **mapkw)
    ds = ds.remove_columns(["swapped", "swap_terms"])
    new_pool = {s: list(idx) for s, idx in pool.items()}
    if args.counterfactual_augmentation == "add" and changed:
        copies = datasets.Dataset.from_dict({"text": [swapped[i] for i in changed],
                                             "source": [sources[i] for i in changed]}, features=ds.features)
        start = len(ds)
        ds = datasets.concatenate_datasets([ds, copies])
        for k, i in enumerate(changed):
            new_pool[sources[i]].append(start + k)
            added.append(sources[i])
    info = {"mode": args.counterfactual_augmentation, "documents_changed": len(changed),
            "documents_changed_by_source": dict(Counter(sources[i] for i in changed)),
            "swaps": sum(terms.values()), "swaps_per_term": dict(terms.most_common(top_terms))}
    return ds, new_pool, added, info
