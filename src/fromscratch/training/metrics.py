"""Tokenizer-independent language-model metrics, and training that measures the untrained model (and stops
cleanly when the cluster preempts it)."""

from __future__ import annotations

import math


def perplexity(loss_nats: float) -> float:
    return math.exp(min(loss_nats, 700.0))  # exp overflows past ~709; a diverged run reads as inf-ish, not a crash


def bits_per_byte(loss_nats: float, tokens: int, n_bytes: int) -> float:
    """Mean loss per token (nats) -> bits per UTF-8 byte of the same text.

    total bits = loss * tokens / ln 2; dividing by the text's bytes removes the tokenizer from the figure, so
    models with different vocabularies compare (what lm-eval's bits_per_byte reports too).
    """
    if n_bytes <= 0:
        raise ValueError("bits_per_byte needs a positive byte count")
    return loss_nats * tokens / (math.log(2) * n_bytes)


def train_measuring_start(trainer, checkpoint=None):
    """trainer.train() (from `checkpoint` if given), with the untrained model evaluated inside it on a fresh start.

    Returns (train result, the step-0 evaluation, also after a resume, whose state carries it). Stages measure
    the start inside train() rather than by trainer.evaluate() before it: in transformers 5.24 an evaluate()
    before train() leaves the model unwrapped, and under DDP the ranks then train apart without an error
    (STACK_NOTES).

    Preemption-safe: a SIGTERM or SIGUSR1 during training makes every rank checkpoint at the same step, and the
    run then exits with EarlyExit (nothing published) instead of returning; `--resume auto` continues it."""
    from fromscratch.training.preemption import PreemptionCallback

    preemption = PreemptionCallback()
    trainer.add_callback(preemption)
    trainer.args.eval_on_start = checkpoint is None
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    preemption.exit_if_stopped(trainer.args.output_dir)
    initial = next((r for r in trainer.state.log_history if r.get("step") == 0 and "eval_loss" in r), {})
    return result, initial
