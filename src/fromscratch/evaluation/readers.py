"""Readers for the evaluation sets' own file formats. Each returns (rows, skipped): malformed rows are
counted with their location, never silently dropped (the caller reports them)."""

from __future__ import annotations

import bz2
import csv
import json
import re
from pathlib import Path

# Malformed rows seen by the lm-eval task loaders in this process, per file. lm-eval imports the loader
# module from its path (a fresh module per task), so the record lives here, where the recipe can read it.
SKIPPED: dict[str, list[str]] = {}


def read_jsonl(path: str | Path) -> tuple[list[dict], list[str]]:
    rows, skipped = [], []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                skipped.append(f"{Path(path).name}:{i}")
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                skipped.append(f"{Path(path).name}:{i}")
    return rows, skipped



def read_gsm8k(path: str | Path) -> tuple[list[dict], list[str]]:
    """GSM8K in either layout (`openai/gsm8k`: {question, answer "... #### n"}; llm-foundry: {context,
    chain_of_thought, answer}) -> {question, rationale, answer} with answer the final number as a string."""
    from fromscratch.alignment.flan import normalize

    rows, skipped = read_jsonl(path)
    out = []
    for i, row in enumerate(rows, 1):
        try:
            out.append(normalize(row))
        except ValueError as err:
            skipped.append(f"{Path(path).name}: row {i} ({err})")
    return out, skipped

def read_hellaswag(path: str | Path) -> tuple[list[dict], list[str]]:
    """HellaSwag in the 6-lines-per-item text format: `activity: context`, gold index, 4 endings.
    The context already joins activity label and ctx_a/ctx_b as lm-eval's own hellaswag preprocessing does.
    A .jsonl path (the shipped subset, already converted) is read as JSONL."""
    if str(path).endswith(".jsonl"):
        return read_jsonl(path)
    opener = bz2.open if str(path).endswith(".bz2") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    rows, skipped = [], []
    for start in range(0, len(lines) - len(lines) % 6, 6):
        context, gold, *endings = lines[start:start + 6]
        if not gold.strip().isdigit() or int(gold) >= len(endings):
            skipped.append(f"{Path(path).name}:{start + 1}")
            continue
        rows.append({"query": context.strip(), "choices": [e.strip() for e in endings], "gold": int(gold)})
    if len(lines) % 6:
        skipped.append(f"{Path(path).name}:{len(lines) - len(lines) % 6 + 1} (incomplete item)")
    return rows, skipped


def read_crows_pairs(path: str | Path) -> tuple[list[dict], list[str]]:
    """CrowS-Pairs: sent_more is always the more stereotyping sentence (stereo_antistereo says whether it
    shows or violates a stereotype about the disadvantaged group); JSONL subsets in the same columns also load."""
    if str(path).endswith(".jsonl"):
        rows, skipped = read_jsonl(path)
    else:
        with open(path, encoding="utf-8", newline="") as f:
            rows, skipped = list(csv.DictReader(f)), []
    keep = []
    for i, row in enumerate(rows, 1):
        if all(row.get(k) for k in ("sent_more", "sent_less", "bias_type")):
            keep.append({k: row.get(k, "") for k in ("sent_more", "sent_less", "stereo_antistereo", "bias_type")})
        else:
            skipped.append(f"{Path(path).name}:row {i}")
    return keep, skipped


HEADING = re.compile(r"^ = [^=].* = $")


def read_wikitext(path: str | Path) -> tuple[list[dict], list[str]]:
    """WikiText in its raw line format, split into articles at top-level ` = Title = ` headings (lm-eval's
    wikitext task is document level too); each row is {"page": text}."""
    pages, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if HEADING.match(line.rstrip("\n")) and any(x.strip() for x in current):
                pages.append("".join(current))
                current = []
            current.append(line)
    if any(x.strip() for x in current):
        pages.append("".join(current))
    return [{"page": p} for p in pages], []


def read_text(path: str | Path) -> tuple[list[dict], list[str]]:
    """A held-out text file or JSONL with a text column, as {"page": text} documents (blank-line separated)."""
    if str(path).endswith(".jsonl"):
        rows, skipped = read_jsonl(path)
        docs = [{"page": r["text"]} for r in rows if isinstance(r.get("text"), str) and r["text"].strip()]
        skipped += [f"{Path(path).name}: row without text"] * (len(rows) - len(docs))
        return docs, skipped
    text = Path(path).read_text(encoding="utf-8")
    return [{"page": p} for p in re.split(r"\n\s*\n", text) if p.strip()], []


def read_bold(folder: str | Path) -> tuple[list[dict], list[str]]:
    """BOLD prompts: one {domain: {group: {name: [prompts]}}} JSON per domain, or a JSONL subset of rows."""
    folder = Path(folder)
    if folder.suffix == ".jsonl":
        return read_jsonl(folder)
    rows, skipped = [], []
    for path in sorted(folder.glob("*_prompt.json")):
        domain = path.name.removesuffix("_prompt.json")
        for group, people in json.loads(path.read_text(encoding="utf-8")).items():
            for name, prompts in people.items():
                for prompt in prompts:
                    if isinstance(prompt, str) and prompt.strip():
                        rows.append({"domain": domain, "group": group, "name": name, "prompt": prompt.strip()})
                    else:
                        skipped.append(f"{path.name}:{group}/{name}")
    return rows, skipped
