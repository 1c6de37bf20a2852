"""Tokenize a corpus once into memory-mapped token shards, in parallel datatrove tasks (`make tokenize`).

On-disk format: datatrove's `DocumentTokenizer` layout, written with its own `TokenizedFile`, so datatrove's and
nanotron's readers load our shards too. Per task and split, `<split>/<rank>.ds` holds the documents back to
back as `bos + tokens + eos`, little-endian uint16 where the vocabulary fits (else uint32); `.ds.index` the
document ends (uint64 token offsets); `.ds.metadata` datatrove's one-line tokenizer note. We tokenize with the
transformers tokenizer ourselves, not with `DocumentTokenizer`, to add bos/eos explicitly with
`add_special_tokens=False` (correct whether or not the tokenizer's post-processor adds a BOS), to count each
document's UTF-8 bytes (bits per byte needs them) and to hash each shard as it is written (the pretraining
data-order fingerprint then costs no read of the corpus), whole and per MiB block (pretraining checks each block
against its digest the first time it reads it: a damaged shard is one line, not a model trained on noise). The folder's `metadata.json` gathers all of it.

Work is split into units (a parquet row group, a block of rows of a `save_to_disk` split, or a unit of the shared
reading layer, `data/reading.py`, for files and the embedded corpora: at most its unit size of one file, cut at a
document edge; a Hub id, read into memory), dealt to tasks in contiguous runs. A task writes `tasks/<rank>.json` last, then
datatrove its completion marker: a rerun after a kill redoes only the unfinished tasks (a killed task whole).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

import numpy as np
from datatrove.pipeline.base import PipelineStep
from transformers import AutoTokenizer  # here, in the launcher: forked tasks inherit it (~3 CPU-s per worker saved)

from ..config import UserError
from ..sources import Lineage, is_local, load_documents
from .fast_encode import FastEncoder

FORMAT = "datatrove-ds"  # the token file layout (see the module docstring)
SPLITS = ("train", "validation")
DISK_ROWS = 20_000  # rows of a save_to_disk split or of an in-memory source per unit
READ_BATCH = 1_000  # documents read and tokenized at once
CHECK_BLOCK = 1 << 20  # bytes per recorded block digest: what pretraining verifies when it first reads a block


def block_digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


class _BlockDigests:
    """Digests of each CHECK_BLOCK bytes of a file written in pieces of any size."""

    def __init__(self):
        self.digests, self._pending = [], bytearray()

    def update(self, raw: bytes) -> None:
        self._pending += raw
        whole = len(self._pending) // CHECK_BLOCK * CHECK_BLOCK
        for a in range(0, whole, CHECK_BLOCK):
            self.digests.append(block_digest(bytes(self._pending[a:a + CHECK_BLOCK])))
        del self._pending[:whole]

    def close(self) -> list[str]:
        if self._pending:
            self.digests.append(block_digest(bytes(self._pending)))
            self._pending.clear()
        return self.digests


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 where every id fits (vocab <= 65,536), else uint32; little-endian, as datatrove writes."""
    return np.dtype("<u2") if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype("<u4")


def tokenizer_sha256(tokenizer_dir: str | Path) -> str:
    return hashlib.sha256((Path(tokenizer_dir) / "tokenizer.json").read_bytes()).hexdigest()


def held_out(text: str, fraction: float) -> bool:
    """Validation membership of a document of a source without its own split: a hash of its text, so it needs
    no global view, does not depend on the task count, and puts exact duplicates on the same side."""
    return zlib.crc32(text.encode("utf-8")) < fraction * 2**32


@dataclass(frozen=True)
class Unit:
    source: str  # the spec as given
    split: str  # train | validation | auto (held out by hash)
    kind: str  # parquet | disk | file | memory
    path: str  # parquet file, save_to_disk split folder, text/JSONL/CSV file, or the spec of an in-memory source
    part: int = 0  # row group of a parquet file
    start: int = 0  # rows [start, stop) of a disk or memory unit
    stop: int = 0
    read: object = None  # kind file: the reading layer's unit (data/reading.py)


def _parquet_units(spec: str, split: str, files: list[Path], column: str) -> list[Unit]:
    import pyarrow.parquet as pq

    units = []
    for f in files:
        meta = pq.ParquetFile(f)
        if column not in meta.schema_arrow.names:
            raise UserError(f"{f}: no column '{column}' (columns: {', '.join(meta.schema_arrow.names)})")
        units += [Unit(spec, split, "parquet", str(f), part=g) for g in range(meta.num_row_groups)]
    return units


def _disk_units(spec: str, split: str, folder: Path, column: str) -> list[Unit]:
    import datasets

    ds = datasets.load_from_disk(str(folder))  # memory-mapped: reads the schema and row count only
    if column not in ds.column_names:
        raise UserError(f"{spec}: no column '{column}' (columns: {', '.join(ds.column_names)})")
    return [Unit(spec, split, "disk", str(folder), start=a, stop=min(a + DISK_ROWS, len(ds)))
            for a in range(0, len(ds), DISK_ROWS)]


def list_units(specs: list[str], column: str) -> tuple[list[Unit], dict[str, list[str]], list[Lineage]]:
    """Every unit of every source; small sources (embedded, text, JSONL, CSV, a Hub id) are read here into
    memory. Returns (units, in-memory documents by spec, lineage of the in-memory sources)."""
    units: list[Unit] = []
    memory: dict[str, list[str]] = {}
    lineage: list[Lineage] = []
    for spec in specs:
        path = Path(os.path.expanduser(spec))
        local = is_local(spec) and path.is_dir()
        if local and any((path / s).is_dir() and any((path / s).glob("*.parquet")) for s in SPLITS):
            for split in SPLITS:  # the data stage's output: train/*.parquet and validation/*.parquet
                units += _parquet_units(spec, split, sorted((path / split).glob("*.parquet")), column)
        elif local and (path / "dataset_dict.json").is_file():  # a save_to_disk DatasetDict (train, validation)
            splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
            if "train" not in splits:
                raise UserError(f"{spec}: a DatasetDict without a train split (has {', '.join(splits)})")
            for split in ("train", "validation"):
                if split in splits:
                    units += _disk_units(spec, split, path / split, column)
            if "validation" not in splits:  # hold out by hash, as for a source without splits
                units = [replace(u, split="auto") if u.source == spec else u for u in units]
        elif local and (path / "state.json").is_file():  # a save_to_disk Dataset: held out by hash
            units += _disk_units(spec, "auto", path, column)
        elif is_local(spec) and (files := sorted(path.rglob("*.parquet")) if path.is_dir() else
                                 ([path] if path.suffix == ".parquet" else [])):
            units += _parquet_units(spec, "auto", files, column)
        elif spec.startswith("default") or is_local(spec):  # files and the embedded corpora: the shared reading layer
            from ..data import reading

            units += [Unit(spec, "auto", "file", u.path, read=u)
                      for u in reading.list_units([spec], column, unit_bytes=reading.UNIT_BYTES)]
        else:
            docs, lin = load_documents(spec, column)
            memory[spec] = docs
            lineage.append(lin)
            units += [Unit(spec, "auto", "memory", spec, start=a, stop=min(a + DISK_ROWS, len(docs)))
                      for a in range(0, len(docs), DISK_ROWS)]
    if not units:
        raise UserError(f"sources: no documents found in {', '.join(specs)}")
    return units, memory, lineage


def read_unit(unit: Unit, column: str, memory: dict[str, list[str]], lineage: Lineage | None = None):
    """Batches of raw values (strings or anything else, counted by the caller) of one unit; a file's unreadable
    rows are counted in `lineage` (with their file:line)."""
    if unit.kind == "file":
        from ..data import reading

        batch = []
        for _, text in reading.read_unit(unit.read, column, lineage if lineage is not None else Lineage("", "", "")):
            batch.append(text)
            if len(batch) == READ_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
    elif unit.kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(unit.path).iter_batches(READ_BATCH, row_groups=[unit.part], columns=[column]):
            yield batch.column(0).to_pylist()
    elif unit.kind == "disk":
        import datasets

        table = datasets.load_from_disk(unit.path).with_format("arrow")[unit.start:unit.stop]
        for batch in table.select([column]).to_batches(max_chunksize=READ_BATCH):
            yield batch.column(0).to_pylist()
    else:
        docs = memory[unit.path]
        for a in range(unit.start, unit.stop, READ_BATCH):
            yield docs[a:min(a + READ_BATCH, unit.stop)]


class _ShardWriter:
    """One split's token file of one task: datatrove's TokenizedFile plus counts and a running sha256."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype, tokenizer_dir: str):
        from datatrove.pipeline.tokens.tokenizer import TokenizedFile

        folder.mkdir(parents=True, exist_ok=True)
        self.file = TokenizedFile(str(folder), name, save_index=True, tokenizer_name_or_path=tokenizer_dir,
                                  save_final_metadata=True, token_size=dtype.itemsize)
        self.name, self.dtype, self.sha, self.blocks = name, dtype, hashlib.sha256(), _BlockDigests()
        self.tokens = self.bytes = self.documents = 0

    def write(self, ids: list[list[int]], n_bytes: list[int], bos: int | None, eos: int | None) -> None:
        sizes = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        lengths = sizes + (bos is not None) + (eos is not None)
        ends = np.cumsum(lengths)
        flat = np.empty(int(ends[-1]), dtype=self.dtype)
        tokens = np.ones(len(flat), dtype=bool)  # vectorised, not a Python loop per token: bos/eos slots first
        if bos is not None:
            flat[ends - lengths], tokens[ends - lengths] = bos, False
        if eos is not None:
            flat[ends - 1], tokens[ends - 1] = eos, False
        flat[tokens] = np.fromiter(chain.from_iterable(ids), dtype=self.dtype, count=int(sizes.sum()))
        raw = flat.tobytes()
        self.file.write_bytes(raw, doc_ends=ends.tolist())
        self.sha.update(raw)
        self.blocks.update(raw)
        self.tokens += len(flat)
        self.bytes += sum(n_bytes)
        self.documents += len(ids)

    def close(self) -> dict:
        self.file.close()
        return {"file": self.name, "tokens": self.tokens, "bytes": self.bytes, "documents": self.documents,
                "sha256": self.sha.hexdigest(), "block_bytes": CHECK_BLOCK, "blocks": self.blocks.close()}


class TokenizeShards(PipelineStep):
    """The datatrove step: task `rank` tokenizes its run of units into `<out>/<split>/<rank>.ds`."""

    name = "tokenize into token shards"
    type = "fromscratch"

    def __init__(self, units: list[Unit], memory: dict[str, list[str]], out: str, tokenizer_dir: str,
                 column: str, validation_fraction: float):
        super().__init__()
        self.units, self.memory, self.out = units, memory, Path(out)
        self.tokenizer_dir, self.column, self.validation_fraction = tokenizer_dir, column, validation_fraction

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_dir)
        encode = FastEncoder(tokenizer)  # the ids of tokenizer(...), ~3.7x less CPU (fast_encode.py)
        bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
        dtype = token_dtype(len(tokenizer))
        n = len(self.units)
        mine = self.units[rank * n // world_size:(rank + 1) * n // world_size]
        writers: dict[str, _ShardWriter] = {}
        skipped: dict[str, int] = {}
        documents: dict[str, int] = {}
        for unit in mine:
            unreadable = Lineage(unit.source, "", "")
            for values in read_unit(unit, self.column, self.memory, unreadable):
                texts = [v for v in values if isinstance(v, str) and v.strip()]
                documents[unit.source] = documents.get(unit.source, 0) + len(texts)
                if len(texts) < len(values):
                    skipped[unit.source] = skipped.get(unit.source, 0) + len(values) - len(texts)
                    self.stat_update("skipped: empty or non-string text", value=len(values) - len(texts))
                by_split: dict[str, list[str]] = {}
                for t in texts:
                    split = unit.split if unit.split != "auto" else (
                        "validation" if held_out(t, self.validation_fraction) else "train")
                    by_split.setdefault(split, []).append(t)
                for split, docs in by_split.items():
                    if split not in writers:
                        writers[split] = _ShardWriter(self.out / split, f"{rank:05d}.ds", dtype, self.tokenizer_dir)
                    ids = encode(docs)
                    writers[split].write(ids, [len(t.encode("utf-8")) for t in docs], bos, eos)
                    self.stat_update(f"{split} documents", value=len(docs))
            if unreadable.skipped:  # malformed rows of a file, as the in-memory loaders count them
                skipped[unit.source] = skipped.get(unit.source, 0) + sum(unreadable.skipped.values())
                for where in unreadable.skipped_examples:
                    print(f"[tokenize] skipped {where}")
        self.stat_update("documents encoded by the tokenizer, not tiktoken", value=encode.by_tokenizer)
        record = {"rank": rank, "splits": {s: w.close() for s, w in writers.items()}, "skipped": skipped,
                  "documents": documents}
        tasks = self.out / "tasks"
        tasks.mkdir(parents=True, exist_ok=True)
        part = tasks / f"{rank:05d}.json.part"
        part.write_text(json.dumps(record))
        part.rename(tasks / f"{rank:05d}.json")  # last: a task without it did not finish
        yield from ()


def merge(out: str | Path, tasks: int, tokenizer_dir: str) -> dict:
    """metadata.json from the finished tasks' records; a missing one is an error naming it."""
    out = Path(out)
    missing = [r for r in range(tasks) if not (out / "tasks" / f"{r:05d}.json").is_file()]
    if missing:
        raise UserError(f"tokenize: tasks {missing[:10]} of {tasks} have not finished: rerun with --resume true")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    meta = {"format": FORMAT, "dtype": token_dtype(len(tokenizer)).str, "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "tokenizer_sha256": tokenizer_sha256(tokenizer_dir), "tokenizer_dir": str(tokenizer_dir),
            "splits": {s: {"tokens": 0, "bytes": 0, "documents": 0, "shards": []} for s in SPLITS}, "skipped": {}}
    for r in range(tasks):
        record = json.loads((out / "tasks" / f"{r:05d}.json").read_text())
        for split, shard in record["splits"].items():
            agg = meta["splits"][split]
            agg["shards"].append({**shard, "file": f"{split}/{shard['file']}"})
            for k in ("tokens", "bytes", "documents"):
                agg[k] += shard[k]
        for src, k in record["skipped"].items():
            meta["skipped"][src] = meta["skipped"].get(src, 0) + k
        for src, k in record.get("documents", {}).items():
            meta.setdefault("documents_by_source", {})[src] = meta.get("documents_by_source", {}).get(src, 0) + k
    (out / "metadata.json").write_text(json.dumps(meta, indent=2))
    return meta
