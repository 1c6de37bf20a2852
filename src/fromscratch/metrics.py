"""Tokenizer-independent language-model metrics."""

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
