"""Tokenize documents and pack them into fixed-length blocks with datasets.map (no padding, no waste).

Each document becomes `bos + tokens + eos`; documents are concatenated and cut into `block_size` pieces, the
last partial piece of each map batch dropped (the GPT-2/nanoGPT convention: attention may cross a document
boundary, which the eos token marks). Byte and token counts are kept so bits per byte can be computed.
`load_and_pack` is stage 03's whole in-memory path from text sources (its experiments, 08/09, reuse it); it
returns the record of what it held out (heldout.py), which stage 03 writes beside the model.
"""

from __future__ import annotations

from itertools import chain

import datasets

from .. import heldout
from ..config import UserError
from ..sources import load_corpus, load_validation


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


def load_and_pack(sources: list[str], text_column: str, tokenizer, block_size: int, validation_fraction: float, *,
                  seed: int, num_proc: int | None = None):
    """Text sources in memory: hold out whole documents for validation, tokenize, pack into blocks.
    Returns (train blocks, validation blocks, validation tokens, validation bytes, lineage, held-out record)."""
    corpus, lineage = load_corpus(sources, text_column)
    validation, val_lineage = load_validation(sources, text_column)
    lineage += val_lineage
    for item in lineage:
        print(f"[data] {item.summary()}")
    if validation:  # the data stage's own held-out split (its mix repeats documents: never re-split it)
        split = {"train": corpus, "test": datasets.Dataset.from_dict({"text": validation})}
        record = heldout.of_split(sources)
    else:
        split = heldout.split(corpus, validation_fraction, seed)  # whole documents
        record = heldout.of_documents(sources, split["test"]["text"])
    tok_train, tok_val = (tokenize(split[name], tokenizer, num_proc=num_proc) for name in ("train", "test"))
    train_set, val_set = (pack(x, block_size, num_proc=num_proc) for x in (tok_train, tok_val))
    if len(train_set) == 0 or len(val_set) == 0:
        raise UserError(f"too little text for block_size {block_size}: "
                        f"{len(train_set)} train / {len(val_set)} validation blocks")
    return train_set, val_set, *counts(tok_val), lineage, record


def heldout_texts(record: dict, text_column: str, tokenizer, max_bytes: int) -> list[str]:
    """The documents a stage-03 model held out, read back through its record (heldout.json): the sources' own
    validation split, the recorded documents of a split made here, or a stream's hash rule."""
    from . import token_shards
    from .token_writer import held_out

    sources = record["sources"]
    if record["kind"] == "split" and all(token_shards.is_token_folder(s) for s in sources):
        return [t for s in sources for t in token_shards.validation_texts(s, tokenizer, max_bytes)]
    if record["kind"] == "split":
        return load_validation(sources, text_column)[0]
    corpus = load_corpus(sources, text_column)[0]["text"]
    if record["kind"] == "hashed":
        return [t for t in corpus if t.strip() and held_out(t, record["validation_fraction"])]
    return [corpus[i] for i in heldout.pick(corpus, record)[1]]
