"""Mixing: weights are sampling proportions of the output, measured in characters (a proxy for tokens).

A source whose share of the output is larger than its share of the input is up-sampled (whole extra epochs
of its documents, then a random part of one more); a larger one is down-sampled (a random subset). Epochs per
source are reported, because a model that sees a small source 4 times learns it differently than once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..config import UserError

BYTES_PER_TOKEN = 4.0  # a rough English BPE ratio (~4 bytes/token at 32k+ vocabularies) for the estimate only


@dataclass
class MixPlan:
    source: str
    weight: float  # normalized target share of output characters
    available_docs: int
    available_chars: int
    epochs: float


def check_weights(weights: list[float]) -> None:
    """The weights' rule: checked at stage 01's start (before the corpus is read) and again by `plan`."""
    if any(w < 0 for w in weights):
        raise UserError(f"weights must be >= 0, got {list(weights)}")
    if not any(weights):
        raise UserError("weights: all 0: give at least one source a weight above 0")


def plan(available: dict[str, tuple[int, int]], weights: dict[str, float], total_chars: int | None = None
         ) -> list[MixPlan]:
    """available: source -> (documents, characters) after cleaning; total_chars None = as many as the input."""
    check_weights(list(weights.values()))
    total_w = sum(weights.values())
    total = total_chars if total_chars else sum(c for _, c in available.values())
    plans = []
    for src, (docs, chars) in available.items():
        w = weights[src] / total_w
        if w > 0 and chars == 0:
            raise UserError(f"source '{src}' has weight {weights[src]} but no documents survived the filters")
        plans.append(MixPlan(src, w, docs, chars, (w * total / chars) if chars else 0.0))
    return plans


def sample(lengths: list[int], epochs: float, seed: int) -> list[int]:
    """Indices of the documents to emit: floor(epochs) full passes, then a random subset up to the remaining
    fraction of the characters. Each pass is shuffled on its own, so repeats are spread out."""
    rng = random.Random(seed)
    n = len(lengths)
    out: list[int] = []
    for _ in range(int(epochs)):
        order = list(range(n))
        rng.shuffle(order)
        out += order
    budget = (epochs - int(epochs)) * sum(lengths)
    order = list(range(n))
    rng.shuffle(order)
    for i in order:
        if budget <= 0:
            break
        if lengths[i] <= budget or rng.random() < budget / lengths[i]:  # unbiased at the boundary
            out.append(i)
        budget -= lengths[i]
    return out


def proportions(rows: dict[str, tuple[int, int, int]]) -> dict[str, dict[str, float]]:
    """source -> (documents, characters, bytes) into shares of documents, characters and estimated tokens."""
    tot_d = sum(r[0] for r in rows.values()) or 1
    tot_c = sum(r[1] for r in rows.values()) or 1
    tot_b = sum(r[2] for r in rows.values()) or 1
    return {s: {"documents": d / tot_d, "characters": c / tot_c, "tokens_estimate": b / tot_b,
                "tokens_estimated": round(b / BYTES_PER_TOKEN)} for s, (d, c, b) in rows.items()}


def hold_out(sources: list[str], names: list[str], fraction: float, seed: int
             ) -> tuple[list[int], dict[str, list[int]]]:
    """Validation indices (`fraction` of each source, at least one where a source has two or more documents)
    and the remaining indices per source, the pool that mixing samples from."""
    rng = random.Random(seed)
    by_source: dict[str, list[int]] = {s: [] for s in names}
    for i, s in enumerate(sources):
        by_source[s].append(i)
    val, pool = [], {}
    for s, idx in by_source.items():
        rng.shuffle(idx)
        n_val = min(len(idx) - 1, max(1, round(len(idx) * fraction))) if fraction > 0 and len(idx) > 1 else 0
        val += idx[:n_val]
        pool[s] = sorted(idx[n_val:])
    if fraction > 0 and not val:
        raise UserError("no document can be held out for validation: no source has 2 or more documents left after "
                        "filtering (add data or relax the filters)")
    return sorted(val), pool


def report(plans: list[MixPlan], picked: list[int], sources: list[str], texts: list[str],
           licenses: dict[str, str]) -> list[dict]:
    """Per source: target share, epochs, and what the train split actually holds (documents, characters,
    estimated tokens, and their shares)."""
    if not picked:
        raise UserError("the mix picked no document: total_chars is smaller than any document (raise it, or leave "
                        "it unset for as many characters as the input)")
    rows = {p.source: [0, 0, 0] for p in plans}
    for i in picked:
        r = rows[sources[i]]
        r[0] += 1
        r[1] += len(texts[i])
        r[2] += len(texts[i].encode("utf-8"))
    actual = proportions({s: tuple(r) for s, r in rows.items()})
    return [{"source": p.source, "license": licenses[p.source], "target_share": p.weight,
             "available_documents": p.available_docs, "available_characters": p.available_chars,
             "epochs": round(p.epochs, 4), "documents": rows[p.source][0], "characters": rows[p.source][1],
             "actual_share": actual[p.source]} for p in plans]
