"""Documents of a source in batches, never the whole corpus in memory: for stages that only need one pass.

A local dataset folder is read record batch by record batch with pyarrow, without memory-mapping (mapped pages
would count in the process's resident memory and grow with the corpus):
- parquet shards, `<folder>/<split>/*.parquet` (the data stage's sharded output);
- a `save_to_disk` DatasetDict (`<folder>/<split>/data-*.arrow`, the split named as `sources.load_documents`
  takes it) or a single saved Dataset (taken as `train`).
Files and the embedded corpora are read unit by unit through the data stage's reading layer (`data/reading.py`:
at most its unit size of text in memory, whatever the file's size); a Hub id is loaded by
`sources.load_documents` and handed out in batches. Empty, non-string and malformed rows are counted in the
lineage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..config import UserError
from ..sources import Lineage, _hash_files, is_local, load_documents


def dataset_split_files(spec: str, split: str) -> tuple[str, list[Path]] | None:
    """("parquet" | "arrow", files in order) of one split of a local dataset folder; None if `spec` is not one
    or has no such split."""
    if spec.startswith("default"):
        return None
    root = Path(os.path.expanduser(spec))
    if not root.is_dir():
        return None
    shards = sorted((root / split).glob("*.parquet"))
    if shards:
        return "parquet", shards
    if (root / "dataset_dict.json").is_file():
        splits = json.loads((root / "dataset_dict.json").read_text())["splits"]
        if split == "train" and "train" not in splits and splits:
            split = splits[0]  # as sources.load_documents: train, else the first split
        folder = root / split if split in splits else None
    else:
        folder = root if split == "train" and (root / "state.json").is_file() else None
    if folder is None:
        return None
    state = json.loads((folder / "state.json").read_text())
    return "arrow", [folder / f["filename"] for f in state["_data_files"]]


def _record_batches(kind: str, files: list[Path], column: str, where: str) -> Iterator[pa.Array]:
    for f in files:
        if kind == "parquet":
            reader = pq.ParquetFile(f)
            if column not in reader.schema_arrow.names:
                raise UserError(f"{where}: no column '{column}' (columns: {', '.join(reader.schema_arrow.names)})")
            for batch in reader.iter_batches(batch_size=1000, columns=[column]):
                yield batch.column(0)
        else:
            with pa.OSFile(str(f)) as fh:
                reader = pa.ipc.open_stream(fh)
                if column not in reader.schema.names:
                    raise UserError(f"{where}: no column '{column}' (columns: {', '.join(reader.schema.names)})")
                for batch in reader:
                    values = batch.column(column)
                    for start in range(0, len(values), 1000):  # a saved file may hold one huge batch
                        yield values.slice(start, 1000)


def iter_documents(spec: str, text_column: str = "text", split: str = "train",
                   batch_size: int = 100) -> tuple[Iterator[list[str]], Lineage] | None:
    """(batches of documents, lineage) of one split of a source; the lineage's counts are final once the batches
    are exhausted. None for a split the source does not have (only `train` exists outside dataset folders)."""
    found = dataset_split_files(spec, split)
    if found is None and split == "train" and (spec.startswith("default") or is_local(spec)):
        return _unit_batches(spec, text_column, batch_size)
    if found is None:
        if split != "train":
            return None
        docs, lineage = load_documents(spec, text_column)
        return (docs[i:i + batch_size] for i in range(0, len(docs), batch_size)), lineage
    kind, files = found
    name = spec if split == "train" else f"{spec}[{split}]"
    lineage = Lineage(spec=name, resolved=str(Path(os.path.expanduser(spec)).resolve()), sha256=_hash_files(files))

    def batches() -> Iterator[list[str]]:
        row, out = 0, []
        for values in _record_batches(kind, files, text_column, name):
            for value in values.to_pylist():
                if isinstance(value, str) and value.strip():
                    out.append(value)
                    lineage.documents += 1
                    lineage.bytes += len(value.encode("utf-8"))
                    if len(out) == batch_size:
                        yield out
                        out = []
                else:
                    lineage.skip("empty or non-string text", f"{name}[{row}]")
                row += 1
        if out:
            yield out
        if not lineage.documents:
            raise UserError(f"data source '{name}' has no usable documents ({lineage.summary()})")

    return batches(), lineage


def _unit_batches(spec: str, column: str, batch_size: int) -> tuple[Iterator[list[str]], Lineage]:
    """Files and embedded corpora, one reading unit at a time (a unit's text at most in memory)."""
    from ..data import reading

    units = reading.list_units([spec], column)  # a missing path, or files of several kinds: one line, here
    files = sorted({Path(u.path) for u in units})
    resolved = ("package:fromscratch/embedded" if spec.startswith("default")
                else str(Path(os.path.expanduser(spec)).resolve()))
    lineage = Lineage(spec=spec, resolved=resolved, sha256=_hash_files(files))

    def batches() -> Iterator[list[str]]:
        out = []
        for unit in units:
            for _, text in reading.read_unit(unit, column, lineage):  # counts documents, bytes and bad rows
                out.append(text)
                if len(out) == batch_size:
                    yield out
                    out = []
        if out:
            yield out
        if not lineage.documents:
            hint = (f"; rows have {', '.join(map(str, lineage.columns_seen[:8]))}: set text_column to the text "
                    "field" if lineage.columns_seen else "")
            raise UserError(f"data source '{spec}' has no usable documents ({lineage.summary()}){hint}")

    return batches(), lineage
