"""Evaluation whose cost is set by the work asked, not by the size of the held-out split.

A held-out split grows with the corpus (0.5% of 20B tokens is 100M tokens): scoring all of it at every
evaluation makes evaluation, not training, the cost that grows. The anchors bound it by a count: nanoGPT's
`eval_iters`, nanochat's `eval_tokens`, modded-nanogpt's `val_tokens`, OLMo-core's `Duration.tokens`.

Here every periodic evaluation scores the same examples: the first `periodic` of one seeded permutation of the
split, and the final report the first `final` of that same permutation (so the periodic set is inside the final
one). The permutation's seed is fixed (EVAL_SEED), not the training seed, so runs with different seeds, batch
sizes or process counts are scored on the same examples and their figures compare. Selecting is index-only
(`Dataset.select`, `torch.utils.data.Subset`): nothing is read until the Trainer asks for an example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import checked

EVAL_SEED = 1234  # fixed on purpose: the subset must not move with the training seed


def order(n: int) -> np.ndarray:
    """The seeded permutation of a split of n examples that every subset is a prefix of."""
    return np.random.default_rng(EVAL_SEED).permutation(n)


def fixed_subset(dataset, count: int):
    """At most `count` examples of `dataset` (all of it for count 0 or count >= len), in their original order."""
    n = len(dataset)
    if not count or count >= n:
        return dataset
    picked = np.sort(order(n)[:count]).tolist()
    if hasattr(dataset, "select"):  # a datasets.Dataset: an indices mapping, no copy
        return dataset.select(picked)
    import torch

    return torch.utils.data.Subset(dataset, picked)


def windows_for(tokens: int, block_size: int) -> int:
    """Windows of `block_size` that hold `tokens` tokens (at least one); 0 stays 0 (the whole split)."""
    return 0 if not tokens else max(1, -(-tokens // block_size))


def bound(dataset, periodic: int, final: int) -> tuple:
    """(the set every evaluation during training scores, the set the final report scores); 0: all of it."""
    final_set = fixed_subset(dataset, final)
    if periodic and final and periodic > final:
        periodic = final
    return fixed_subset(dataset, periodic) if periodic else final_set, final_set


def describe(name: str, periodic_set, final_set, total: int) -> str:
    return (f"[eval] {len(periodic_set)} of {total} held-out {name} per evaluation during training, "
            f"{len(final_set)} in the final one (fixed seeded subset: eval_* keys)")


@dataclass
class EvalSubsetArguments:
    """The cap on held-out examples of the post-training stages (SFT, reward, DPO); pretraining caps tokens."""

    eval_samples: int = checked(0, ge=0, help="held-out examples each evaluation during training scores, the same "
                                "fixed seeded subset every time; 0: all of them")
    final_eval_samples: int = checked(0, ge=0, help="held-out examples of the final evaluation (the card's "
                                      "figures); 0: all of them")


FINAL = "final_eval"  # the step-0 evaluation of the final set is logged under this prefix


def cap(trainer, periodic: int, final: int, name: str):
    """Point a built trainer (TRL has prepared its eval_dataset by now) at the periodic subset; return the final
    set, for `trainer.evaluate(eval_dataset=...)`. Where the two differ, the untrained model is scored on the
    final set too (at step 0, inside train()), so the card's before/after figures are on one set."""
    from .callbacks import EvalAtStart

    total = len(trainer.eval_dataset)
    trainer.eval_dataset, final_set = bound(trainer.eval_dataset, periodic, final)
    if len(final_set) != len(trainer.eval_dataset):
        trainer.add_callback(EvalAtStart(trainer, final_set, FINAL))
    if trainer.args.process_index == 0:
        print(describe(name, trainer.eval_dataset, final_set, total))
    return final_set


def at_start(trainer, initial: dict) -> dict:
    """The untrained model's scores on the final set, keyed eval_* as the final evaluation's are: the step-0
    entry cap() logged, or `initial` (the periodic step-0 evaluation) when the two sets are one."""
    entry = next((r for r in trainer.state.log_history if r.get("step") == 0 and f"{FINAL}_loss" in r), None)
    if entry is None:
        return initial
    # TRL's trainers log their own metrics (accuracy, margin) as eval_* whatever the prefix: same entry, same set
    out = {k: v for k, v in entry.items() if k.startswith("eval_")}
    out.update({"eval_" + k[len(FINAL) + 1:]: v for k, v in entry.items() if k.startswith(FINAL + "_")})
    return out
