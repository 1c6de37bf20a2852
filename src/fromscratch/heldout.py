"""Which documents a stage held out, recorded beside its output (heldout.json), so that a later stage evaluates on
exactly those: a re-split with another rounding, seed, source order or split would measure training documents.

Stages 03 and 04 write the record; 06 (`sft_heldout` prompts), 07 (`fs_heldout`) and 10 (held-out perplexity)
read it. Three kinds:
- "split": the sources' own validation split was the held-out set (the data stage's validation/*.parquet, make
  tokenize's validation shards); readers load that split of the named sources.
- "documents": the stage split whole documents off its sources; one sha256 per held-out document (a text, or a
  conversation row as JSON) lets a reader pick the same ones out of the same sources.
- "hashed": a stream, whose documents are held out by a rule on their own bytes (token_writer.held_out).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from .config import UserError

FILE = "heldout.json"


def digest(item) -> str:
    """A document's fingerprint: its text, or a row (dict) as canonical JSON."""
    text = item if isinstance(item, str) else json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def split(data, fraction: float, seed: int, *, what: str = "documents", key: str = "validation_fraction"):
    """Hold out whole rows of a datasets.Dataset: round(n x fraction) of them, at least one, and at least one left
    to train on. Every stage that splits rows splits here, so one row, or a fraction that would take them all, is
    one line naming the key instead of datasets' ValueError ("the resulting train set will be empty")."""
    n = len(data)
    if n < 2:
        raise UserError(f"sources: {n} {what}; at least 2 are needed: one to train on and one held out "
                        f"({key} {fraction:g})")
    held = min(n - 1, max(1, round(n * fraction)))
    return data.train_test_split(test_size=held, seed=seed)


def of_split(sources: list[str]) -> dict:
    return {"kind": "split", "sources": list(sources)}


def of_documents(sources: list[str], items) -> dict:
    hashes = [digest(x) for x in items]
    return {"kind": "documents", "sources": list(sources), "documents": len(hashes), "sha256": hashes}


def of_rule(sources: list[str], validation_fraction: float) -> dict:
    return {"kind": "hashed", "sources": list(sources), "validation_fraction": validation_fraction}


def write(folder: str | Path, record: dict) -> None:
    (Path(folder) / FILE).write_text(json.dumps(record, indent=1) + "\n")


def read(folder: str | Path) -> dict | None:
    path = Path(folder) / FILE
    return json.loads(path.read_text()) if path.is_file() else None


def pick(items, record: dict) -> tuple[list[int], list[int]]:
    """Indices of the (kept, held-out) items: held out are those the record lists, as many times as it lists
    each. A listed document that is no longer there means the sources changed: one line, not a wrong figure."""
    wanted = Counter(record["sha256"])
    kept, held = [], []
    for i, item in enumerate(items):
        d = digest(item)
        if wanted[d] > 0:
            wanted[d] -= 1
            held.append(i)
        else:
            kept.append(i)
    missing = sum(wanted.values())
    if missing:
        raise UserError(f"{missing} of the {len(record['sha256'])} held-out documents are not in "
                        f"{', '.join(record['sources'])} any more: the sources changed since that stage ran")
    return kept, held
