"""Decontamination: drop training documents that share a word n-gram (13 by default, as GPT-3 did) with an
evaluation item, and report which eval tasks were hit and how often.

Eval items are read from the project's eval sets (JSONL rows {query, choices, gold}, {context, continuation},
{context_options, continuation, gold}, {context, chain_of_thought, answer}, or HellaSwag's 6-line text format,
optionally .bz2/.gz); the task name is the file name. An item is its prompt plus its gold answer, with the
prompt labels ("Question:", "Answer:", ...) removed so a template word cannot make a match.

The n of each eval set follows GPT-3 (Brown et al. 2020, appendix C): the 5th percentile of its items' lengths
in words, at most `ngram_size` (13) and at least 8, so the short items of PIQA, ARC or COPA are checked too (at
13 most of them could never match); below 8 words a shared n-gram is mostly common phrasing. Items still shorter
than their set's n are counted per task, not silently ignored.

Words and n-gram hashes are the same vectorised ones as dedup (`dedup.words`), so a whole batch of documents
is checked with one sorted-array lookup.
"""

from __future__ import annotations

import bz2
import gzip
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..config import UserError, checked
from .dedup import U64, HashSet, words

_LABELS = re.compile(r"\b(?:Question|Answer|Passage|Context|Choices|Sentence|Q|A):")
_MULT = U64(0xD6E8FEB86659FD93)
REASON = "n-gram overlap with eval data"


@dataclass
class DecontaminationArguments:
    decontaminate_against: list[str] = field(default_factory=list)
    ngram_size: int = checked(13, ge=1)


def _open_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".bz2":
        raw = bz2.decompress(raw)
    elif path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def _task_name(path: Path) -> str:
    name = path.name
    for suffix in (".bz2", ".gz", ".jsonl", ".json", ".txt"):
        name = name.removesuffix(suffix)
    return name.removesuffix("_val_full")


def item_text(row: dict) -> str:
    """Prompt + gold answer of one eval row, labels removed."""
    parts = []
    if "query" in row:
        parts.append(row["query"])
        choices, gold = row.get("choices"), row.get("gold")
        if isinstance(choices, list) and isinstance(gold, int) and 0 <= gold < len(choices):
            if len(str(choices[gold])) > 1:  # "A"/"B" labels carry no text (the query lists the options)
                parts.append(str(choices[gold]))
    elif "context_options" in row:
        gold = row.get("gold", 0)
        parts.append(row["context_options"][gold])
    elif "context" in row:
        parts.append(row["context"])
    for key in ("continuation", "chain_of_thought", "answer"):
        if isinstance(row.get(key), str):
            parts.append(row[key])
    return _LABELS.sub(" ", " ".join(str(p) for p in parts))


def read_eval_items(path: Path, skipped: Counter) -> list[str]:
    """The items of one eval file; malformed rows are counted in `skipped` under 'file:line'."""
    text = _open_text(path)
    if ".jsonl" in path.name or ".json" in path.name:
        items = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(item_text(json.loads(line)))
            except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
                skipped[f"{path.name}:{i}"] += 1
        return items
    lines = text.splitlines()  # HellaSwag text: "label: context", gold index, 4 endings
    items = []
    for i in range(0, len(lines) - 5, 6):
        context = lines[i].split(": ", 1)[-1]
        try:
            items.append(context + " " + lines[i + 2 + int(lines[i + 1])])
        except (ValueError, IndexError):
            skipped[f"{path.name}:{i + 1}"] += 1
    return items


HUB_PREFIX = "hub:"  # hub:org/name[:config][@split], e.g. hub:allenai/ai2_arc:ARC-Challenge@test


def hub_item_text(row: dict) -> str:
    """Prompt + gold answer of a benchmark row as published on the Hub (PIQA, ARC, OpenBookQA, HellaSwag,
    WinoGrande, BoolQ, COPA, SIQA, CommonsenseQA, GSM8K, LAMBADA, WSC); other schemas: all their text fields."""
    r = row
    if "goal" in r and "sol1" in r:  # PIQA
        return f"{r['goal']} {r['sol1'] if int(r.get('label', 0)) == 0 else r['sol2']}"
    if isinstance(r.get("choices"), dict) and "answerKey" in r:  # ARC, OpenBookQA, CommonsenseQA
        labels, texts = r["choices"]["label"], r["choices"]["text"]
        gold = texts[labels.index(r["answerKey"])] if r["answerKey"] in labels else ""
        return f"{r.get('question', r.get('question_stem', ''))} {gold}"
    if "ctx" in r and "endings" in r:  # HellaSwag
        return f"{r['ctx']} {r['endings'][int(r['label'])] if str(r.get('label', '')).isdigit() else ''}"
    if "sentence" in r and "option1" in r:  # WinoGrande
        return r["sentence"].replace("_", r["option1"] if str(r.get("answer")) == "1" else r["option2"])
    if "premise" in r and "choice1" in r:  # COPA
        return f"{r['premise']} {r['choice1'] if int(r.get('label', 0)) == 0 else r['choice2']}"
    if "passage" in r and "question" in r:  # BoolQ
        return f"{r['passage']} {r['question']}"
    if "context" in r and "answerA" in r:  # SIQA
        gold = {"1": "answerA", "2": "answerB", "3": "answerC"}.get(str(r.get("label")), "answerA")
        return f"{r['context']} {r['question']} {r[gold]}"
    return " ".join(v for v in r.values() if isinstance(v, str))  # GSM8K, LAMBADA, WSC, ...


def hub_eval_items(spec: str) -> tuple[str, list[str]]:
    """(task name, items) of `hub:org/name[:config][@split]` (split default: test, else validation)."""
    import datasets

    body, _, split = spec.removeprefix(HUB_PREFIX).partition("@")
    repo, _, config = body.partition(":")
    try:
        dd = datasets.load_dataset(repo, config or None)
        ds = dd[split or next(s for s in ("test", "validation", "train") if s in dd)]
    except Exception as err:  # offline, not found, gated: one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"decontaminate_against: cannot load {spec}: {reason}") from None
    name = repo.split("/")[-1] + (f"_{config}" if config and config not in ("default", "main") else "")
    return name.lower(), [hub_item_text(r) for r in ds]


def eval_files(paths: list[str]) -> list[Path]:
    """The local eval files among `paths` (Hub ids, `hub:...`, are loaded by the Decontaminator)."""
    files: list[Path] = []
    for p in paths:
        if p.startswith(HUB_PREFIX):
            continue
        # `default`: the evaluation items the project ships (the eval recipe's tiny suite), so a fresh checkout
        # is decontaminated against what it will be evaluated on without any download.
        path = (Path(str(resources.files("fromscratch") / "eval_tasks" / "data")) if p == "default"
                else Path(p).expanduser())
        if not path.exists():
            raise UserError(f"decontaminate_against: path not found: {p}")
        found = sorted(f for f in (path.rglob("*") if path.is_dir() else [path])
                       if f.is_file() and re.search(r"\.(jsonl|json|txt)(\.(bz2|gz))?$", f.name))
        if not found:
            raise UserError(f"decontaminate_against: no .jsonl/.json/.txt(.bz2) eval files in {p}")
        files += found
    return files


def ngram_hashes(texts: list[str], n: int, spans: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word n-gram inside each text, and the index of the text it came from. `spans`: the texts'
    `words(texts)` if already computed (one n-gram size after another need not hash the words again)."""
    hashes, offsets = spans if spans is not None else words(texts)
    m = max(len(hashes) - n + 1, 0)
    rolled = np.zeros(m, dtype=U64)
    for j in range(n):
        rolled = rolled * _MULT + hashes[j:j + m]
    doc_of = np.repeat(np.arange(len(texts)), np.diff(offsets))[:m]
    ok = np.arange(m) + n <= offsets[1:][doc_of] if m else np.zeros(0, bool)
    return rolled[ok], doc_of[ok]


class Decontaminator:
    """Index of eval n-grams (sorted hashes, each with its task) and a batch lookup against it."""

    def __init__(self, args: DecontaminationArguments):
        self.n = args.ngram_size  # the largest n; each task's own is in n_per_task
        self.tasks: list[str] = []
        self.items: dict[str, int] = {}
        self.too_short: dict[str, int] = {}
        self.skipped: Counter = Counter()
        texts: dict[str, list[str]] = {}
        for f in eval_files(args.decontaminate_against):
            task = _task_name(f)
            texts.setdefault(task, []).extend(read_eval_items(f, self.skipped))
        for spec in (p for p in args.decontaminate_against if p.startswith(HUB_PREFIX)):
            task, items = hub_eval_items(spec)
            texts.setdefault(task, []).extend(items)
        self.tasks = list(texts)
        self.n_per_task = {t: task_ngram_size(items, self.n) for t, items in texts.items()}
        self.index: dict[int, tuple[HashSet, np.ndarray]] = {}  # n -> (the n-gram hashes, task of each)
        for n in sorted(set(self.n_per_task.values())):
            grams, owners = [], []
            for t, task in enumerate(self.tasks):
                if self.n_per_task[task] != n:
                    continue
                g, item_of = ngram_hashes(texts[task], n)
                grams.append(g)
                owners.append(np.full(len(g), t, dtype=np.int32))
            allg, allo = np.concatenate(grams), np.concatenate(owners)
            uniq, first = np.unique(allg, return_index=True)  # a shared n-gram is credited to one task
            self.index[n] = (HashSet(uniq), allo[first])
        for task, items in texts.items():
            n = self.n_per_task[task]
            self.items[task] = len(items)
            self.too_short[task] = int((np.diff(words(items)[1]) < n).sum()) if items else 0
        self.reason = REASON

    def hits(self, texts: list[str], spans: tuple[np.ndarray, np.ndarray] | None = None) -> list[list[str]]:
        """For each text, the tasks whose items share at least one n-gram with it ([] = clean). `spans`: the
        texts' `words(texts)` if already computed."""
        out: list[list[str]] = [[] for _ in texts]
        if not texts:
            return out
        found_pairs: set = set()
        spans = words(texts) if spans is None else spans
        for n, (grams, owner) in self.index.items():
            if not len(grams):
                continue
            g, doc_of = ngram_hashes(texts, n, spans)
            at, pos = grams.find(g)
            found_pairs |= set(zip(doc_of[at].tolist(), owner[pos].tolist()))
        for d, t in sorted(found_pairs):
            out[d].append(self.tasks[t])
        return out


def task_ngram_size(items: list[str], largest: int, floor: int = 8) -> int:
    """GPT-3's n for one eval set: the 5th percentile of its item lengths in words, within [floor, largest]."""
    if not items:
        return largest
    lengths = np.diff(words(items)[1])
    return int(max(min(floor, largest), min(largest, np.percentile(lengths, 5))))
