"""Tokenize documents and pack them into fixed-length blocks with datasets.map (no padding, no waste).

Each document becomes `bos + tokens + eos`; documents are concatenated and cut into `block_size` pieces, the
last partial piece of each map batch dropped (the GPT-2/nanoGPT convention: attention may cross a document
boundary, which the eos token marks). Byte and token counts are kept so bits per byte can be computed.
"""

from __future__ import annotations

from itertools import chain

import datasets


def tokenize_batch(tokenizer):
    """The batched map function: {"text": [...]} -> {"input_ids": [bos + tokens + eos, ...], "n_bytes": [...]}."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id

    def _tok(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        ids = [([bos] if bos is not None else []) + x + ([eos] if eos is not None else []) for x in ids]
        return {"input_ids": ids, "n_bytes": [len(t.encode("utf-8")) for t in batch["text"]]}

    return _tok


def group_batch(block_size: int):
    """The batched map function that concatenates a batch's documents and cuts them into blocks."""

    def _group(batch):
        flat = list(chain.from_iterable(batch["input_ids"]))
        usable = len(flat) // block_size * block_size
        return {"input_ids": [flat[i: i + block_size] for i in range(0, usable, block_size)]}

    return _group


def tokenize(ds: datasets.Dataset, tokenizer, *, num_proc: int | None = None) -> datasets.Dataset:
    return ds.map(tokenize_batch(tokenizer), batched=True, num_proc=num_proc, remove_columns=ds.column_names,
                  desc="tokenize")


def pack(tokenized: datasets.Dataset, block_size: int, *, num_proc: int | None = None) -> datasets.Dataset:
    # Large map batches waste less at the cut (one partial block dropped per 1000 documents).
    return tokenized.map(group_batch(block_size), batched=True, batch_size=1000, num_proc=num_proc,
                         remove_columns=tokenized.column_names, desc=f"pack into blocks of {block_size}")


def counts(tokenized: datasets.Dataset) -> tuple[int, int]:
    """(tokens, bytes) of a tokenized split, for bits per byte."""
    tokens = sum(len(x) for x in tokenized["input_ids"])
    return tokens, int(sum(tokenized["n_bytes"]))
