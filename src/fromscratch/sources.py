"""Name a text source one way everywhere: `default[:name]`, a local path, or a Hub dataset id.

- `default` is every corpus embedded in the package; `default:tinyshakespeare` or `default:us_speeches` one.
- a local path: a .txt file, a folder of .txt files (one document per file), .jsonl/.json, .parquet, .csv,
  a `save_to_disk` folder (a Dataset or a DatasetDict; then the split is taken), or a data-stage output
  (train/*.parquet and validation/*.parquet: the train split is read, `load_validation` reads the other).
- anything else that looks like `name` or `org/name` (optionally `org/name:config`) is a Hub dataset id, loaded
  with `datasets.load_dataset`
  (the path a real user takes; tests drive the same loader through a local save_to_disk folder).

Nothing is lost silently: a malformed JSONL line, an empty row, or a line that is not UTF-8 is counted in the
returned `Lineage` (with the first few `path:line` locations), which the recipes print and write into their cards.
Decoding is per line: one bad byte is repaired in its own line and never changes how its neighbours are read.
Hidden files (`.DS_Store`, `.gitkeep`) in a folder are not data and are ignored, as `datasets` does.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .config import UserError


class _Datasets:
    """The `datasets` module, imported on first use: 1.7-2.5 CPU seconds (measured) that the data stage's launcher
    need not pay for text and JSONL sources, which are read without it (`sources.datasets` still names it)."""

    def __getattr__(self, name):
        import datasets

        return getattr(datasets, name)


datasets = _Datasets()

EMBEDDED = ("tinyshakespeare", "us_speeches")  # their natural documents: EMBEDDED_UNITS below
_HUB_ID = re.compile(r"^(hub:)?[A-Za-z0-9][\w.-]*(/[\w.-]+)?(:[\w.-]+)?$")  # optional :config (subset)
_TEXT_SUFFIXES = {".txt", ".text", ".md"}


@dataclass
class Lineage:
    """Where a source's documents came from, and what was skipped on the way (reported, never silent)."""

    spec: str
    resolved: str
    sha256: str
    documents: int = 0
    bytes: int = 0
    skipped: dict = field(default_factory=dict)  # reason -> count
    skipped_examples: list = field(default_factory=list)  # first few "path:line: reason"
    repaired_encoding: list = field(default_factory=list)  # first few "path:line" decoded as cp1252 (not UTF-8)
    repaired_lines: int = 0  # how many lines that was in all
    columns_seen: list = field(default_factory=list)  # fields of rows without the text column (for the hint)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.skipped_examples) < 5:
            self.skipped_examples.append(f"{where}: {reason}")

    def summary(self) -> str:
        parts = [f"{self.spec}: {self.documents} documents, {self.bytes / 1e6:.2f} MB"]
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{n} {r}" for r, n in self.skipped.items()))
            parts.append("first at " + "; ".join(self.skipped_examples[:2]))
        if self.repaired_lines:
            parts.append(f"{self.repaired_lines} lines not UTF-8, read as cp1252 (first at "
                         f"{'; '.join(self.repaired_encoding[:2])})")
        return " | ".join(parts)

    def repaired(self, where: str) -> None:
        self.repaired_lines += 1
        if len(self.repaired_encoding) < 5:
            self.repaired_encoding.append(where)


def embedded_path(name: str) -> Path:
    """Folder of an embedded corpus inside the installed package."""
    return Path(str(resources.files("fromscratch") / "embedded" / name))


def decode(raw: bytes, where: str, lineage: Lineage, first_line=None) -> str:
    """UTF-8 (a leading BOM dropped; UTF-16 if the file starts with its BOM). A line that is not UTF-8 is read
    as cp1252 (the usual culprit: some shipped speeches are Latin-1) on its own, counted as `where:line`: the
    valid lines around it are never re-read in the wrong encoding. `first_line()`: the file's line number of
    raw's first line, for a byte range cut from a larger file (asked only when a line needs repair)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass  # not UTF-16 after all: per-line below
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = raw.split(b"\n")
    base = first_line() if first_line else 1
    for i, line in enumerate(lines):
        try:
            lines[i] = line.decode("utf-8")
        except UnicodeDecodeError:
            lineage.repaired(f"{where}:{base + i}")
            lines[i] = line.decode("cp1252", errors="replace")
    return "\n".join(lines)


def _hash_files(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _split_blank_lines(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]


TEXT_UNITS = ("file", "paragraph", "line")  # what one document of a text file is (the data stage's text_unit)
EMBEDDED_UNITS = {"tinyshakespeare": "paragraph", "us_speeches": "file"}  # a play's speeches; one speech a file


def text_documents(text: str, unit: str, where: str, lineage: Lineage) -> list[str]:
    """The documents of a text file (or of a byte range of one cut at a line or paragraph edge) by `unit`."""
    if unit == "file":
        pieces = [text.strip()]
    elif unit == "paragraph":
        pieces = _split_blank_lines(text)
    else:
        pieces = [line.strip("\r") for line in text.split("\n") if line.strip()]
    docs = []
    for piece in pieces:
        if piece.strip():
            docs.append(piece)
        else:
            lineage.skip("empty document", where)
    return docs


def _read_text_files(files: list[Path], lineage: Lineage, split_paragraphs: bool) -> list[str]:
    docs: list[str] = []
    for f in files:
        text = decode(f.read_bytes(), str(f), lineage)
        docs += text_documents(text, "paragraph" if split_paragraphs else "file", str(f), lineage)
    return docs


def _read_jsonl(files: list[Path], column: str, lineage: Lineage) -> list[str]:
    docs: list[str] = []
    for f in files:
        text = decode(f.read_bytes(), str(f), lineage)
        docs += json_documents(text, str(f), column, lineage, array=f.suffix == ".json")
    return docs


def json_documents(text: str, where: str, column: str, lineage: Lineage, array: bool = False,
                   first_line=None) -> list[str]:
    """The `column` values of JSON Lines text (or a .json array when `array`); a row that is not a JSON object
    with a non-empty string there is counted at `where:line`. `first_line()`: as for `decode`."""
    docs: list[str] = []
    if array and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}:{err.lineno}: not valid JSON ({err.msg})") from None
        numbered = enumerate(rows, 1)
    else:  # "\n" only: splitlines() would also cut at a U+2028 or U+0085 that JSON allows inside a string
        numbered = ((i, line) for i, line in enumerate(text.split("\n"), 1))
    base = None
    for i, row in numbered:
        def at() -> str:
            nonlocal base
            if base is None:
                base = first_line() - 1 if first_line else 0
            return f"{where}:{base + i}"

        if isinstance(row, str):
            if not row.strip():
                continue  # blank lines between JSONL rows are not rows
            try:
                row = json.loads(row)
            except json.JSONDecodeError as err:
                lineage.skip(f"malformed JSON ({err.msg})", at())
                continue
        if not isinstance(row, dict) or column not in row:
            lineage.skip(f"no '{column}' field", at())
            if isinstance(row, dict) and len(lineage.columns_seen) < 20:
                lineage.columns_seen += [k for k in row if k not in lineage.columns_seen]
            continue
        value = row[column]
        if not isinstance(value, str) or not value.strip():
            lineage.skip("empty or non-string text", at())
            continue
        docs.append(value)
    return docs


def pick_split(ds):
    """The train split of a DatasetDict (else its first split); a Dataset as it is."""
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train" if "train" in ds else next(iter(ds))]
    return ds


def hub_id(spec: str) -> tuple[str, str]:
    """(repo, config) of `org/name[:config]` (config '' when absent); UserError if it is not one."""
    if not _HUB_ID.match(spec):
        raise UserError(f"data source '{spec}' is neither a local path, 'default', nor a Hub dataset id")
    repo, _, subset = spec.removeprefix("hub:").partition(":")  # org/name:config, e.g. fineweb-edu:sample-10BT
    return repo, subset


def stream_hub(repo: str, config: str = ""):
    """The train split of a Hub dataset as a streamed IterableDataset: rows are read as its files are fetched,
    nothing is downloaded whole (the data stage's tasks each take some of its `n_shards` files)."""
    try:
        return datasets.load_dataset(repo, config or None, split="train", streaming=True)
    except Exception as err:  # offline, not found, gated: one line, the library's own reason
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load Hub dataset '{repo}': {reason}") from None


def _parquet_split(path: Path, split: str) -> list[Path] | None:
    """The parquet files of `split` in a data-stage output folder (train/ and validation/ of *.parquet)."""
    files = sorted((path / split).glob("*.parquet")) if path.is_dir() else []
    return files if files and (path / "train").is_dir() else None


def _from_dataset(ds, column: str, where: str, lineage: Lineage) -> list[str]:
    ds = pick_split(ds)
    if column not in ds.column_names:
        raise UserError(f"{where}: no column '{column}' (columns: {', '.join(ds.column_names)})")
    docs = []
    for i, value in enumerate(ds[column]):
        if isinstance(value, str) and value.strip():
            docs.append(value)
        else:
            lineage.skip("empty or non-string text", f"{where}[{i}]")
    return docs


def is_local(spec: str) -> bool:
    """A spec is a local path if it exists, or is written like one (./x, /x, ~/x, x.ext, a/b/c, or a/b
    whose first part is a local folder, e.g. outputs/01_data)."""
    if spec.startswith("hub:"):
        return False
    p = Path(os.path.expanduser(spec))
    if ":" in spec and not p.exists() and _HUB_ID.match(spec):
        return False  # org/name:config (a ".simple" in the config name is not a file suffix)
    if p.exists() or spec.startswith((".", "/", "~")) or p.suffix or spec.count("/") > 1:
        return True
    return "/" in spec and Path(spec.split("/")[0]).is_dir()


def load_documents(spec: str, text_column: str = "text") -> tuple[list[str], Lineage]:
    """Read one source into a list of document strings plus its lineage. Raises UserError on a bad spec."""
    if spec == "default" or spec.startswith("default:"):
        names = EMBEDDED if spec == "default" else (spec.split(":", 1)[1],)
        all_docs: list[str] = []
        lineage = Lineage(spec=spec, resolved="", sha256="")
        files: list[Path] = []
        for name in names:
            if name not in EMBEDDED:
                raise UserError(f"unknown embedded source '{spec}' (have: {', '.join(EMBEDDED)})")
            root = embedded_path(name)
            these = sorted(p for p in root.rglob("*.txt"))
            files += these
            # A play is one file; its speeches (blank-line separated) are the natural documents.
            all_docs += _read_text_files(these, lineage, split_paragraphs=EMBEDDED_UNITS[name] == "paragraph")
        lineage.resolved = "package:fromscratch/embedded/" + ",".join(names)
        lineage.sha256 = _hash_files(files)
        return _finish(all_docs, lineage)

    if is_local(spec):
        path = Path(os.path.expanduser(spec))
        if not path.exists():
            raise UserError(f"data path not found: {spec}")
        lineage = Lineage(spec=spec, resolved=str(path.resolve()), sha256="")
        if (split := _parquet_split(path, "train")) is not None:  # the data stage's output: its train split
            lineage.sha256 = _hash_files(split)
            ds = load_parquet(split)
            return _finish(_from_dataset(ds, text_column, spec, lineage), lineage)
        if path.is_dir() and (
            (path / "dataset_info.json").exists()
            or (path / "dataset_dict.json").exists()
            or (path / "state.json").exists()
        ):
            files = sorted(f for f in path.rglob("*") if f.is_file())
            lineage.sha256 = _hash_files(files)
            ds = load_saved(path)
            return _finish(_from_dataset(ds, text_column, spec, lineage), lineage)
        files = sorted(f for f in path.rglob("*") if f.is_file() and not _hidden(f, path)) if path.is_dir() \
            else [path]
        kind = _kind(spec, files)
        lineage.sha256 = _hash_files(files)
        if kind == "text":
            docs = _read_text_files(files, lineage, split_paragraphs=False)
        elif kind == "json":
            docs = _read_jsonl(files, text_column, lineage)
        else:
            if kind == "parquet":
                check_parquet(files)  # the file that is cut short named, not only the source
            try:  # a BOM would otherwise become part of the first column's name
                ds = datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train",
                                           **({"encoding": "utf-8-sig"} if kind == "csv" else {}))
            except Exception as err:  # the loaders raise many types for one cause: a file not in that format
                raise UserError(f"{spec}: cannot read as {kind} ({_first_line(err)})") from None
            docs = _from_dataset(ds, text_column, spec, lineage)
        return _finish(docs, lineage)

    repo, subset = hub_id(spec)
    try:
        ds = datasets.load_dataset(repo, subset or None, split="train")
    except Exception as err:  # offline, not found, gated: one line, the library's own reason
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load Hub dataset '{repo}': {reason}") from None
    lineage = Lineage(spec=spec, resolved=f"hub:{repo}", sha256=ds._fingerprint)
    return _finish(_from_dataset(ds, text_column, spec, lineage), lineage)


# What a folder of files can hold: one kind per source (a source is read by one reader).
_KINDS = {"text": _TEXT_SUFFIXES, "json": {".jsonl", ".json"}, "parquet": {".parquet"}, "csv": {".csv"}}


def _hidden(f: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in f.relative_to(root).parts)


def _kind(spec: str, files: list[Path]) -> str:
    if not files:  # every reader asks here first, whichever stage it serves
        raise UserError(f"data path is empty: {spec} (files and folders whose name starts with '.' are skipped)")
    suffixes = {f.suffix.lower() for f in files}
    found = {k for k, exts in _KINDS.items() if suffixes & exts}
    unknown = suffixes - set().union(*_KINDS.values())
    if unknown:
        raise UserError(f"{spec}: cannot read files of type {', '.join(sorted(s or '(no suffix)' for s in unknown))}"
                        " (readable: .txt/.text/.md, .jsonl/.json, .parquet, .csv, or a save_to_disk folder)")
    if len(found) > 1:
        raise UserError(f"{spec}: holds files of several kinds ({', '.join(sorted(suffixes))}); a source is read by "
                        "one reader: put each kind in its own folder and list each folder in sources")
    return found.pop()


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def check_parquet(files: list[Path] | list[str]) -> None:
    """Each parquet file's footer (its index, written last), read before any row: a file cut short by a kill, a
    full disk or a partial copy fails here in one line naming it, not in pyarrow's traceback mid-run."""
    import pyarrow.parquet as pq

    for f in files:
        try:
            pq.read_metadata(str(f))
        except Exception as err:  # pyarrow's ArrowInvalid / OSError without an errno: not parquet, or cut short
            if isinstance(err, OSError) and err.errno is not None:
                raise  # the disk's or the permissions' error, said as such by config.cli
            raise UserError(f"{f}: cannot read as parquet, cut short or not parquet ({_first_line(err)}): replace "
                            "it (rerun the stage that wrote it) or leave it out of sources") from None


def load_parquet(files: list[Path]):
    check_parquet(files)
    return datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")


def load_saved(path: str | Path):
    """datasets.load_from_disk, with a damaged folder (cut by a kill, files missing) as one line."""
    try:
        return datasets.load_from_disk(str(path))
    except Exception as err:
        raise UserError(f"{path}: cannot load this save_to_disk folder ({_first_line(err)}); "
                        "rerun the stage that wrote it") from None


def _finish(docs: list[str], lineage: Lineage) -> tuple[list[str], Lineage]:
    if not docs:
        hint = ""
        if lineage.columns_seen:
            hint = f"; rows have {', '.join(map(str, lineage.columns_seen[:8]))}: set text_column to the text field"
        raise UserError(f"data source '{lineage.spec}' has no usable documents ({lineage.summary()}){hint}")
    lineage.documents = len(docs)
    lineage.bytes = sum(len(d.encode("utf-8")) for d in docs)
    return docs, lineage


def load_corpus(specs: list[str], text_column: str = "text") -> tuple[datasets.Dataset, list[Lineage]]:
    """Several sources into one Dataset with columns `text` and `source`, plus one Lineage per source."""
    texts: list[str] = []
    names: list[str] = []
    lineages = []
    for spec in specs:
        docs, lineage = load_documents(spec, text_column)
        texts += docs
        names += [spec] * len(docs)
        lineages.append(lineage)
    return datasets.Dataset.from_dict({"text": texts, "source": names}), lineages


def _saved_dict(spec: str) -> Path | None:
    if spec.startswith("default") or not is_local(spec):
        return None
    path = Path(os.path.expanduser(spec))
    return path if (path / "dataset_dict.json").is_file() or (path / "validation").is_dir() else None


def load_validation(specs: list[str], text_column: str = "text") -> tuple[list[str], list[Lineage]]:
    """Documents of the `validation` split of any saved DatasetDict among the sources (the data stage writes one).

    Use them as held-out text instead of re-splitting `train`: the data stage's mix repeats small sources, so
    a document-level re-split would put copies of one document on both sides.
    """
    docs: list[str] = []
    lineages = []
    for spec in specs:
        path = _saved_dict(spec)
        if path is None:
            continue
        if (files := _parquet_split(path, "validation")) is not None:  # the data stage's parquet output
            ds = {"validation": load_parquet(files)}
        elif (path / "dataset_dict.json").is_file():
            ds = load_saved(path)
        else:
            continue
        if "validation" not in ds:
            continue
        lineage = Lineage(spec=f"{spec}[validation]", resolved=str(path.resolve()), sha256=_hash_files(
            sorted(f for f in (path / "validation").rglob("*") if f.is_file())))
        these = _from_dataset(ds["validation"], text_column, f"{spec}[validation]", lineage)
        docs += these
        lineages.append(_finish(these, lineage)[1])
    return docs, lineages


def check_sources(specs: list[str], key: str = "sources") -> None:
    """Fail before any work if a local source path is missing (Hub ids are checked when loaded)."""
    if not specs:
        raise UserError(f"'{key}' is empty: name at least one source (default, a path, or a Hub id)")
    for spec in specs:
        if spec.startswith("default"):
            name = spec.split(":", 1)[1] if ":" in spec else None
            if name is not None and name not in EMBEDDED:
                raise UserError(f"{key}: unknown embedded source '{spec}' (have: {', '.join(EMBEDDED)})")
        elif is_local(spec) and not Path(os.path.expanduser(spec)).exists():
            raise UserError(f"{key}: data path not found: {spec}")
