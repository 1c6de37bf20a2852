"""Sources split into units of work: the data stage's tasks each read their share of units, never a whole corpus.

A unit is one file (a .txt, .jsonl, .parquet or .csv file, one embedded file), a block of rows of a
`save_to_disk` folder, or one shard (file) of a Hub dataset read with `streaming=True`, so nothing is
downloaded whole. Units are listed once at start (`list_units`: globbing and Hub metadata, no text read) and
dealt to tasks round-robin; every document gets a global id from (source, unit, row) that does not depend on
how many tasks run, so deduplication keeps the same copy of a pair whatever the task count.

Reading reuses `fromscratch.sources`' per-file readers, so malformed rows are counted in a `Lineage` with their
file and line, exactly as a one-process read counts them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import sources
from ..config import UserError
from ..sources import EMBEDDED, Lineage

ROWS_PER_BLOCK = 50_000  # rows of a save_to_disk folder per unit: a task reads a block, memory-mapped
_UNIT_BITS, _ROW_BITS = 20, 28  # gid = source << 48 | unit << 28 | row: up to 1M units of 268M rows each


@dataclass(frozen=True)
class Unit:
    source: int  # index in the `sources` list
    index: int  # position among its source's units
    kind: str  # text | paragraphs | jsonl | table | disk | hub
    path: str  # file, folder or Hub repo
    start: int = 0  # rows [start, stop) of a save_to_disk folder; the shard of a Hub dataset in `start`
    stop: int = 0
    config: str = ""  # Hub dataset config (subset)


def gid(unit: Unit, row: int) -> int:
    return (unit.source << (_UNIT_BITS + _ROW_BITS)) | (unit.index << _ROW_BITS) | row


def source_of(gids):
    """Source index of global ids (numpy arrays or ints)."""
    return gids >> (_UNIT_BITS + _ROW_BITS)


def parquet_folder(path: Path) -> Path | None:
    """The `train` folder of a data-stage output (train/*.parquet beside validation/), else None."""
    train = path / "train"
    return train if path.is_dir() and train.is_dir() and any(train.glob("*.parquet")) else None


def _saved(path: Path) -> bool:
    return path.is_dir() and any((path / f).exists() for f in ("dataset_info.json", "dataset_dict.json", "state.json"))


def list_units(specs: list[str], text_column: str) -> list[Unit]:
    """Every unit of every source, in source order. A missing path or an unreachable Hub id fails here, in one
    line, before any task starts."""
    units: list[Unit] = []
    for s, spec in enumerate(specs):
        mine = _units_of(s, spec, text_column)
        if not mine:
            raise UserError(f"data path is empty: {spec}")
        if len(mine) >= 1 << _UNIT_BITS:
            raise UserError(f"{spec}: {len(mine)} files; at most {1 << _UNIT_BITS} per source (merge small files)")
        units += mine
    if any(u.kind == "table" for u in units):
        import datasets  # noqa: F401  (tasks read tables with it: imported once here, shared by forked tasks)
    return units


def _units_of(s: int, spec: str, column: str) -> list[Unit]:
    if spec == "default" or spec.startswith("default:"):
        names = EMBEDDED if spec == "default" else (spec.split(":", 1)[1],)
        files = []
        for name in names:
            if name not in EMBEDDED:
                raise UserError(f"unknown embedded source '{spec}' (have: {', '.join(EMBEDDED)})")
            # a play is one file; its speeches (blank-line separated) are the natural documents
            kind = "paragraphs" if name == "tinyshakespeare" else "text"
            files += [(kind, str(f)) for f in sorted(sources.embedded_path(name).rglob("*.txt"))]
        return [Unit(s, i, kind, f) for i, (kind, f) in enumerate(files)]
    if sources.is_local(spec):
        path = Path(os.path.expanduser(spec))
        if not path.exists():
            raise UserError(f"data path not found: {spec}")
        if (train := parquet_folder(path)) is not None:  # a data-stage output: its train split
            files = sorted(train.glob("*.parquet"))
            sources.check_parquet(files)  # here, before any task: a task's error comes with datatrove's traceback
            return [Unit(s, i, "table", str(f)) for i, f in enumerate(files)]
        if _saved(path):
            import datasets

            ds = sources.pick_split(datasets.load_from_disk(str(path)))
            if column not in ds.column_names:
                raise UserError(f"{spec}: no column '{column}' (columns: {', '.join(ds.column_names)})")
            return [Unit(s, i, "disk", str(path), a, min(a + ROWS_PER_BLOCK, len(ds)))
                    for i, a in enumerate(range(0, len(ds), ROWS_PER_BLOCK))]
        files = (sorted(f for f in path.rglob("*") if f.is_file() and not sources._hidden(f, path))
                 if path.is_dir() else [path])
        # the same rule and messages as the in-memory loader: one kind of file per source
        kind = {"text": "text", "json": "jsonl", "parquet": "table", "csv": "table"}[sources._kind(spec, files)]
        if sources._kind(spec, files) == "parquet":
            sources.check_parquet(files)
        return [Unit(s, i, kind, str(f)) for i, f in enumerate(files)]
    repo, config = sources.hub_id(spec)
    n = sources.stream_hub(repo, config).n_shards  # metadata only: the file list of the train split
    return [Unit(s, k, "hub", repo, k, config=config) for k in range(n)]


def read_unit(unit: Unit, column: str, lineage: Lineage):
    """(row, text) of one unit; unreadable rows are counted in `lineage` with their location."""
    if unit.kind in ("text", "paragraphs"):
        docs = sources._read_text_files([Path(unit.path)], lineage, split_paragraphs=unit.kind == "paragraphs")
    elif unit.kind == "jsonl":
        docs = sources._read_jsonl([Path(unit.path)], column, lineage)
    elif unit.kind == "table":
        import datasets

        kind = "csv" if unit.path.endswith(".csv") else "parquet"
        ds = datasets.load_dataset(kind, data_files=[unit.path], split="train")
        docs = sources._from_dataset(ds, column, unit.path, lineage)
    elif unit.kind == "disk":
        import datasets

        ds = sources.pick_split(datasets.load_from_disk(unit.path)).select(range(unit.start, unit.stop))
        docs = sources._from_dataset(ds, column, f"{unit.path}[{unit.start}:{unit.stop}]", lineage)
    else:  # one shard of a streamed Hub dataset: rows arrive as the file is read
        shard = sources.stream_hub(unit.path, unit.config)
        shard = shard.shard(num_shards=shard.n_shards, index=unit.start)
        docs = _stream_rows(shard, column, f"hub:{unit.path}#shard{unit.start}", lineage)
    for row, text in enumerate(docs):
        lineage.documents += 1
        lineage.bytes += len(text.encode("utf-8"))
        yield row, text


def _stream_rows(shard, column: str, where: str, lineage: Lineage):
    for i, row in enumerate(shard):
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            yield value
        else:
            lineage.skip("empty or non-string text" if column in row else f"no '{column}' field", f"{where}[{i}]")


def unit_hash(unit: Unit) -> str:
    """Content hash of a unit's file (the lineage's sha256 combines them); a Hub shard is named, not hashed."""
    if unit.kind == "hub":
        return f"hub:{unit.path}:{unit.config}#{unit.start}"
    p = Path(unit.path)
    if unit.kind == "disk":
        return f"{p.name}[{unit.start}:{unit.stop}]"
    return sources._hash_files([p])


def merge_lineages(specs: list[str], parts: list[dict]) -> list[Lineage]:
    """One Lineage per source from the tasks' per-source dicts (counts added, first examples kept)."""
    out = {s: Lineage(spec=s, resolved="", sha256="") for s in specs}
    hashes: dict[str, list] = {s: [] for s in specs}
    for part in parts:
        lin = out[part["spec"]]
        lin.documents += part["documents"]
        lin.bytes += part["bytes"]
        for why, n in part["skipped"].items():
            lin.skipped[why] = lin.skipped.get(why, 0) + n
        lin.skipped_examples = (lin.skipped_examples + part["skipped_examples"])[:5]
        lin.repaired_encoding = (lin.repaired_encoding + part["repaired_encoding"])[:5]
        lin.repaired_lines += part["repaired_lines"]
        lin.resolved = part["resolved"]
        hashes[part["spec"]] += part["hashes"]
    for s, lin in out.items():
        h = hashlib.sha256()
        for _, unit_sha in sorted(hashes[s]):
            h.update(unit_sha.encode())
        lin.sha256 = h.hexdigest()
    return list(out.values())


def lineage_dict(lin: Lineage, resolved: str, hashes: list) -> dict:
    return {**asdict(lin), "resolved": resolved, "hashes": hashes}
