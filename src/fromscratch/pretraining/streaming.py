"""Pretraining straight from a streamed dataset (`streaming: true`), for users without local disk for shards.

A Hub dataset id (or a local parquet/JSONL folder, read the same way) is opened with `datasets` streaming,
split between DDP ranks with `split_dataset_by_node` (whole files per rank when the file count divides by the
world size, else each rank reads everything and keeps 1 in N), shuffled in a seeded buffer, tokenized on the
fly as `bos + tokens + eos` and cut into windows of `block_size` (the same packing as the in-memory path).
Validation is the first `validation_documents` documents held out by the text hash `make tokenize` uses;
training skips them.

Resume guarantee: exact but not free. The Trainer cannot skip into an IterableDataset, so on resume it re-reads
and re-tokenizes every batch already trained on (from the same seed: the same order, as long as the remote
dataset's files did not change). The token-shard path resumes without reading anything and stays the default.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets
from datasets.distributed import split_dataset_by_node

from ..config import UserError
from ..sources import is_local
from .packing import counts, group_batch, pack, tokenize, tokenize_batch
from .token_writer import held_out

SHUFFLE_BUFFER = 10_000  # documents; ~20 MB of web text


def open_stream(spec: str, split: str = "train") -> datasets.IterableDataset:
    """A streamed split of a Hub dataset id or of a local folder of parquet/JSONL files (one code path)."""
    if is_local(spec):
        path = Path(os.path.expanduser(spec))
        folder = path / split if (path / split).is_dir() else path
        files = sorted(f for f in folder.rglob("*") if f.suffix in (".parquet", ".jsonl", ".json"))
        if not files:
            raise UserError(f"streaming: no .parquet or .jsonl files in {folder}")
        kind = "parquet" if files[0].suffix == ".parquet" else "json"
        return datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train", streaming=True)
    repo, _, config = spec.removeprefix("hub:").partition(":")
    try:
        return datasets.load_dataset(repo, config or None, split=split, streaming=True)
    except Exception as err:  # offline, not found, gated: one line, the library's own reason
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot stream Hub dataset '{repo}': {reason}") from None


def load(spec: str, tokenizer, block_size: int, text_column: str, *, rank: int, world_size: int, seed: int,
         validation_fraction: float, validation_documents: int):
    """(train IterableDataset of windows for this rank, validation Dataset of blocks, val tokens, val bytes)."""
    stream = open_stream(spec).select_columns([text_column])
    if text_column != "text":
        stream = stream.rename_column(text_column, "text")

    def keep(batch, held: bool):
        return [isinstance(t, str) and bool(t.strip()) and held_out(t, validation_fraction) == held
                for t in batch["text"]]

    held = [row["text"] for row in stream.filter(keep, batched=True, fn_kwargs={"held": True}).take(validation_documents)]
    if not held:
        raise UserError(f"streaming: no validation documents in the first part of {spec}")
    tok_val = tokenize(datasets.Dataset.from_dict({"text": held}), tokenizer)
    val_tokens, val_bytes = counts(tok_val)
    train = split_dataset_by_node(stream, rank=rank, world_size=world_size)
    train = train.filter(keep, batched=True, fn_kwargs={"held": False}).shuffle(seed=seed, buffer_size=SHUFFLE_BUFFER)
    train = train.map(tokenize_batch(tokenizer), batched=True, remove_columns=["text"])
    train = train.map(group_batch(block_size), batched=True, batch_size=1000, remove_columns=["input_ids", "n_bytes"])
    return train, pack(tok_val, block_size), val_tokens, val_bytes
