"""Where a JSON Lines file is broken, as `line: what`: datasets' json loader names no line ("An error occurred
while generating the dataset") and loads bytes that are not UTF-8 into a string column, so the first read of that
row raises far from the file. The chat data loader (stages 04-06) asks here before and after loading."""

from __future__ import annotations

import codecs
import gzip
import json
from pathlib import Path


def not_utf8_line(path: Path) -> int | None:
    """The line of the first byte that is not UTF-8, or None; in 16 MB blocks (a multi-GB file is not read
    whole). JSON loads such bytes into a string column, and the row's first read raises UnicodeDecodeError."""
    decoder, lines, opener = codecs.getincrementaldecoder("utf-8")(), 1, gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            while block := f.read(16 << 20):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as err:
                    return lines + block.count(b"\n", 0, err.start)
                lines += block.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return lines  # the file ends inside a character
    except (OSError, EOFError):
        return None  # a .gz cut short: the loader says so
    return None


def first_bad_line(path: Path) -> str | None:
    """`N: what` for the first JSONL line the json loader choked on (its own message names no line): not JSON,
    or not an object. (A row of the wrong shape loads, and check_sft / check_preferences name it.)"""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw.decode("utf-8", errors="replace"))
                except ValueError as err:
                    return f"{n}: not JSON ({err}) (fix or remove this line)"
                if not isinstance(row, dict):
                    return f"{n}: a JSON {type(row).__name__}, not an object of columns (fix or remove this line)"
    except (OSError, EOFError) as err:  # a .gz cut short
        return f" cannot read ({err})"
    return None
