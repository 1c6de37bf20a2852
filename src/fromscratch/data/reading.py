"""Sources split into units of bounded size: the tasks of every stage that reads text (data, tokenizer,
tokenize) each read their share of units, never a whole corpus, whatever the input's shape.

A unit is at most `unit_bytes` of one file, cut where a document ends: a byte range of a line-based file (JSONL,
or a .txt read by `line` or `paragraph`) that starts after a newline (`paragraph`: after a blank line), a run
of row groups of a parquet file; or a block of rows of a `save_to_disk` folder, or one shard (file) of a Hub
dataset read with `streaming=True`, so nothing is downloaded whole. A .txt read as one document per `file`, a
CSV (a quoted field may hold a newline) and a UTF-16 file are one unit each. Units are listed once at start
(`list_units`: globbing, file sizes, parquet footers and Hub metadata; for a cut, the few KB after it), and
dealt to tasks round-robin; every document gets a global id from (source, unit, row) that depends on the unit
size only, not on how many tasks run, so deduplication keeps the same copy of a pair whatever the task count.

Reading reuses `fromscratch.sources`' per-file readers, so malformed rows are counted in a `Lineage` with their
file and line, exactly as a one-process read counts them.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import sources
from ..config import UserError
from ..sources import EMBEDDED, Lineage

ROWS_PER_BLOCK = 50_000  # rows of a save_to_disk folder per unit: a task reads a block, memory-mapped
UNIT_BYTES = 16 << 20  # default bytes per unit: a task holds one unit's text at a time
_SCAN = 1 << 16  # bytes read at a time when looking for the document edge after a cut
# A paragraph edge: the end of a run of blank lines followed by a line with text (where re.split(r"\n\s*\n")
# of the whole file puts a boundary too, so a file cut there gives the same paragraphs as read whole).
_PARAGRAPH_EDGE = re.compile(rb"\n(?:[ \t\r\f\v]*\n)+(?=[ \t\r\f\v]*[^\s])")
_UNIT_BITS, _ROW_BITS = 20, 28  # gid = source << 48 | unit << 28 | row: up to 1M units of 268M rows each


@dataclass(frozen=True)
class Unit:
    source: int  # index in the `sources` list
    index: int  # position among its source's units
    kind: str  # text (documents by text_unit) | jsonl | parquet | csv | disk | hub
    path: str  # file, folder or Hub repo
    start: int = 0  # bytes [start, stop) of a file (stop 0: to its end); row groups of a parquet file; rows of
    stop: int = 0  # a save_to_disk folder; the shard of a Hub dataset in `start`
    config: str = ""  # Hub dataset config (subset)
    text_unit: str = "file"  # what one document of a text file is: file | paragraph | line


def size_of(unit: Unit, default: int) -> int:
    """Bytes of text a unit holds: a file's byte range; `default` (a unit's size) where only rows are known."""
    if unit.kind in ("text", "jsonl", "csv"):
        return (unit.stop or Path(unit.path).stat().st_size) - unit.start
    return default


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


def text_units_of(specs: list[str], text_unit: list[str] | None) -> list[str]:
    """One text_unit per source: the one value given for all, one per source, or each source's natural unit
    (an embedded corpus its declared one, a file `file`) when none is given."""
    text_unit = list(text_unit or [])
    if len(text_unit) not in (0, 1, len(specs)):
        raise UserError(f"text_unit: {len(text_unit)} values for {len(specs)} sources: give one for all, or one "
                        "per source")
    for u in text_unit:
        if u not in sources.TEXT_UNITS:
            raise UserError(f"text_unit: must be one of {', '.join(sources.TEXT_UNITS)}, got {u!r}")
    if len(text_unit) == 1:
        return text_unit * len(specs)
    if text_unit:
        return text_unit
    return [sources.EMBEDDED_UNITS.get(s.split(":", 1)[1], "file") if s.startswith("default:") else "file"
            for s in specs]


def list_units(specs: list[str], text_column: str, text_unit: list[str] | None = None,
               unit_bytes: int = UNIT_BYTES) -> list[Unit]:
    """Every unit of every source, in source order, none larger than `unit_bytes` where the format allows a
    cut. A missing path or an unreachable Hub id fails here, in one line, before any task starts."""
    units: list[Unit] = []
    for s, (spec, unit) in enumerate(zip(specs, text_units_of(specs, text_unit))):
        mine = _units_of(s, spec, text_column, unit, unit_bytes)
        if not mine:
            raise UserError(f"data path is empty: {spec}")
        if len(mine) >= 1 << _UNIT_BITS:
            raise UserError(f"{spec}: {len(mine)} units; at most {1 << _UNIT_BITS} per source (merge small files "
                            "or raise the unit size)")
        units += [Unit(s, i, *rest) for i, rest in enumerate(mine)]
    if any(u.kind == "csv" for u in units):
        import datasets  # noqa: F401  (tasks read CSV with it: imported once here, shared by forked tasks)
    return units


def _units_of(s: int, spec: str, column: str, text_unit: str, unit_bytes: int) -> list[tuple]:
    """(kind, path, start, stop, config, text_unit) of each unit of one source."""
    if spec == "default" or spec.startswith("default:"):
        names = EMBEDDED if spec == "default" else (spec.split(":", 1)[1],)
        out = []
        for name in names:
            if name not in EMBEDDED:
                raise UserError(f"unknown embedded source '{spec}' (have: {', '.join(EMBEDDED)})")
            unit = sources.EMBEDDED_UNITS[name] if spec == "default" else text_unit  # `default`: each its own
            for f in sorted(sources.embedded_path(name).rglob("*.txt")):
                out += _file_units(f, "text", unit, column, unit_bytes)
        return out
    if sources.is_local(spec):
        path = Path(os.path.expanduser(spec))
        if not path.exists():
            raise UserError(f"data path not found: {spec}")
        if (train := parquet_folder(path)) is not None:  # a data-stage output: its train split
            files = sorted(train.glob("*.parquet"))
            sources.check_parquet(files)  # here, before any task: a task's error comes with datatrove's traceback
            return [u for f in files for u in _file_units(f, "parquet", text_unit, column, unit_bytes)]
        if _saved(path):
            import datasets

            ds = sources.pick_split(datasets.load_from_disk(str(path)))
            if column not in ds.column_names:
                raise UserError(f"{spec}: no column '{column}' (columns: {', '.join(ds.column_names)})")
            return [("disk", str(path), a, min(a + ROWS_PER_BLOCK, len(ds)), "", text_unit)
                    for a in range(0, len(ds), ROWS_PER_BLOCK)]
        files = (sorted(f for f in path.rglob("*") if f.is_file() and not sources._hidden(f, path))
                 if path.is_dir() else [path])
        # the same rule and messages as the in-memory loader: one kind of file per source
        kind = {"text": "text", "json": "jsonl", "parquet": "parquet", "csv": "csv"}[sources._kind(spec, files)]
        if kind == "parquet":
            sources.check_parquet(files)
        return [u for f in files for u in _file_units(f, kind, text_unit, column, unit_bytes)]
    repo, config = sources.hub_id(spec)
    n = sources.stream_hub(repo, config).n_shards  # metadata only: the file list of the train split
    return [("hub", repo, k, 0, config, text_unit) for k in range(n)]


def _file_units(f: Path, kind: str, text_unit: str, column: str, unit_bytes: int) -> list[tuple]:
    if kind == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(f).metadata
        if column not in meta.schema.to_arrow_schema().names:
            raise UserError(f"{f}: no column '{column}' (columns: {', '.join(meta.schema.to_arrow_schema().names)})")
        groups, size, first = [], 0, 0  # consecutive row groups up to unit_bytes (one at least)
        for g in range(meta.num_row_groups):
            size += meta.row_group(g).total_byte_size
            if size >= unit_bytes or g == meta.num_row_groups - 1:
                groups.append(("parquet", str(f), first, g + 1, "", text_unit))
                first, size = g + 1, 0
        return groups or [("parquet", str(f), 0, 0, "", text_unit)]
    edge = None if kind == "csv" or kind == "text" and text_unit == "file" or _json_array(f) else (
        "paragraph" if kind == "text" and text_unit == "paragraph" else "line")
    return [(kind, str(f), a, b, "", text_unit) for a, b in cuts(f, unit_bytes, edge)]


def _json_array(f: Path) -> bool:
    """A .json file holding one JSON array (read whole), not JSON Lines."""
    if f.suffix != ".json":
        return False
    with open(f, "rb") as fh:
        return fh.read(4096).lstrip().removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


def cuts(f: Path, unit_bytes: int, edge: str | None) -> list[tuple[int, int]]:
    """Byte ranges [a, b) covering the file, each cut at the first `edge` (line | paragraph) at or after a
    multiple of unit_bytes; (0, 0) for the whole file when it cannot or need not be cut."""
    size = f.stat().st_size
    if edge is None or size <= unit_bytes:
        return [(0, 0)]
    with open(f, "rb") as fh:
        if fh.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return [(0, 0)]  # UTF-16: a newline is two bytes, cut nowhere
        out, a = [], 0
        while True:
            b = _edge_after(fh, a + unit_bytes, size, edge) if a + unit_bytes < size else None
            if b is None or b >= size:
                out.append((a, size))
                return out
            out.append((a, b))
            a = b


def _edge_after(fh, pos: int, size: int, edge: str) -> int | None:
    """The first document start at or after `pos`: just after a newline (line), or after a run of blank lines
    followed by text (paragraph). None when the file has none after pos."""
    start = max(0, pos - 1)  # a newline just before pos makes pos itself an edge
    fh.seek(start)
    buf = b""
    while True:
        chunk = fh.read(_SCAN if not buf else len(buf))  # doubling: a long paragraph costs O(its length)
        if not chunk:
            return None
        buf += chunk
        if edge == "line":
            i = buf.find(b"\n")
            if i >= 0:
                return start + i + 1
        else:
            m = _PARAGRAPH_EDGE.search(buf)
            if m and (m.end() < len(buf) or start + len(buf) >= size):
                return start + m.end()


def read_unit(unit: Unit, column: str, lineage: Lineage):
    """(row, text) of one unit; unreadable rows are counted in `lineage` with their file:line."""
    if unit.kind in ("text", "jsonl"):
        raw = _read_range(unit)
        first_line = _line_counter(unit)
        text = sources.decode(raw, unit.path, lineage, first_line)
        if unit.kind == "text":
            docs = sources.text_documents(text, unit.text_unit, unit.path, lineage)
        else:
            docs = sources.json_documents(text, unit.path, column, lineage,
                                          array=unit.path.endswith(".json") and unit.stop == 0,
                                          first_line=first_line)
    elif unit.kind == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(unit.path)
        groups = range(unit.start, unit.stop) if unit.stop else range(pf.metadata.num_row_groups)
        docs = _values(pf.iter_batches(1000, row_groups=list(groups), columns=[column]), unit, lineage)
    elif unit.kind == "csv":
        import datasets

        try:  # a BOM would otherwise become part of the first column's name
            ds = datasets.load_dataset("csv", data_files=[unit.path], split="train", encoding="utf-8-sig")
        except Exception as err:  # the loaders raise many types for one cause: a file not in that format
            raise UserError(f"{unit.path}: cannot read as csv ({sources._first_line(err)})") from None
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


def _read_range(unit: Unit) -> bytes:
    with open(unit.path, "rb") as fh:
        fh.seek(unit.start)
        return fh.read(unit.stop - unit.start) if unit.stop else fh.read()


def _line_counter(unit: Unit):
    """first_line() for a unit: its first line's number in the file, counted (newlines before it) only if
    asked, i.e. only when a row of it is reported: a clean corpus never pays for it."""
    def first_line() -> int:
        n, left = 1, unit.start
        with open(unit.path, "rb") as fh:
            while left > 0:
                chunk = fh.read(min(left, 1 << 22))
                n += chunk.count(b"\n")
                left -= len(chunk)
        return n

    return first_line


def _values(batches, unit: Unit, lineage: Lineage):
    row = 0
    for batch in batches:
        for value in batch.column(0).to_pylist():
            if isinstance(value, str) and value.strip():
                yield value
            else:
                lineage.skip("empty or non-string text", f"{unit.path}[row group {unit.start}+, row {row}]")
            row += 1


def _stream_rows(shard, column: str, where: str, lineage: Lineage):
    for i, row in enumerate(shard):
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            yield value
        else:
            lineage.skip("empty or non-string text" if column in row else f"no '{column}' field", f"{where}[{i}]")


def unit_hash(unit: Unit) -> str:
    """Content hash of a unit's bytes (the lineage's sha256 combines them); a Hub shard is named, not hashed."""
    if unit.kind == "hub":
        return f"hub:{unit.path}:{unit.config}#{unit.start}"
    p = Path(unit.path)
    if unit.kind == "disk":
        return f"{p.name}[{unit.start}:{unit.stop}]"
    if unit.kind == "parquet":  # the unit's own column chunks, not the whole file once per unit
        import pyarrow.parquet as pq

        meta, h = pq.ParquetFile(p).metadata, hashlib.sha256(f"{p.name}[{unit.start}:{unit.stop}]".encode())
        with open(p, "rb") as fh:
            for g in range(unit.start, unit.stop):
                for c in range(meta.row_group(g).num_columns):
                    col = meta.row_group(g).column(c)
                    fh.seek(col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset)
                    h.update(fh.read(col.total_compressed_size))
        return h.hexdigest()
    if unit.kind in ("text", "jsonl") and unit.stop:
        h = hashlib.sha256(p.name.encode())
        h.update(_read_range(unit))
        return h.hexdigest()
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
