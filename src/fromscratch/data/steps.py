"""The per-document steps of the data stage as datatrove pipeline steps: read -> clean -> filter -> classify ->
fingerprint + write. One task runs them over its share of the source units (`reading.Unit`), so its memory
follows its share, not the corpus.

Our batched implementations (clean.clean_batch, filters.QualityFilter, classifiers, dedup.fingerprints) do the
work; these classes only adapt them to datatrove's `BaseFilter.filter_batch`, and count every document in a
`Ledger` (stats.StepStats per step) that the last step writes beside the task's output. The driver merges the
tasks' ledgers into stats.json, so the books balance as in one process: in = kept + dropped per reason.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas  # noqa: F401  (pyarrow imports it at its first parquet write, 0.25-0.5 CPU-s: once, not per worker)
import pyarrow as pa  # at the top, not in the tasks: the launcher imports it once and forked tasks share it
import pyarrow.parquet as pq
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from . import classifiers, clean, dedup, reading
from .decontaminate import DecontaminationArguments, Decontaminator
from .filters import QualityFilter
from .stats import StepStats
from ..sources import Lineage


class Ledger:
    """Per-step counts of one task, each step recorded batch by batch and summed when written."""

    def __init__(self, steps: list[str]):
        self.steps = {s: StepStats() for s in steps}

    def record(self, step: str, sources: list[str], reasons: list[str], **kw) -> None:
        self.steps[step].record(step, sources, reasons, **kw)

    def entries(self) -> list[dict]:
        out = []
        for name, st in self.steps.items():
            e = StepStats.merge([[x] for x in st.steps]).steps[0] if st.steps else None
            out.append(e or {"step": name, "in": 0, "kept": 0, "dropped": {}, "by_source": {}})
        return out


def write_json(path: Path, obj) -> None:
    """Atomically: a killed task leaves no half-written file that looks finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


class ReadSources(PipelineStep):
    """Reader for every source kind: this task's units (round-robin), each document with its global id."""

    name, type = "sources", "📖 - READER"

    def __init__(self, specs: list[str], units: list[reading.Unit], column: str, ledger: Ledger):
        super().__init__()
        self.specs, self.units, self.column, self.ledger = specs, units, column, ledger
        self.lineages: dict[str, dict] = {}

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        for unit in self.units[rank::world_size]:
            spec = self.specs[unit.source]
            lin = Lineage(spec=spec, resolved="", sha256="")
            n = 0
            for row, text in reading.read_unit(unit, self.column, lin):
                n += 1
                self.stat_update("documents")
                yield Document(text=text, id=str(reading.gid(unit, row)),
                               metadata={"source": spec, "gid": reading.gid(unit, row)})
            # unreadable rows are counted as dropped by `load`, so the books start from every row read
            reasons = [""] * n + [f"unreadable row: {why}" for why, k in lin.skipped.items() for _ in range(k)]
            self.ledger.record("load", [spec] * len(reasons), reasons,
                               extra={"lines_read_as_cp1252": lin.repaired_lines})
            resolved = (f"hub:{unit.path}" if unit.kind == "hub" else "package:fromscratch/embedded"
                        if spec.startswith("default") else str(Path(os.path.expanduser(spec)).resolve()))
            part = self.lineages.setdefault(spec, reading.lineage_dict(Lineage(spec, "", ""), resolved, []))
            for k in ("documents", "bytes"):
                part[k] += getattr(lin, k)
            for why, k in lin.skipped.items():
                part["skipped"][why] = part["skipped"].get(why, 0) + k
            part["skipped_examples"] = (part["skipped_examples"] + lin.skipped_examples)[:5]
            part["repaired_encoding"] = (part["repaired_encoding"] + lin.repaired_encoding)[:5]
            part["repaired_lines"] += lin.repaired_lines
            part["hashes"].append([unit.index, reading.unit_hash(unit)])


class _Counted(BaseFilter):
    """A BaseFilter whose batch verdicts are also counted per source in the ledger."""

    step = ""

    def __init__(self, ledger: Ledger, batch_size: int):
        super().__init__(batch_size=batch_size)
        self.ledger = ledger

    def reasons(self, batch: list[Document]) -> tuple[list[str], dict]:
        raise NotImplementedError

    def filter(self, doc: Document):  # datatrove calls filter_batch; one document is a batch of one
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch):
        reasons, kw = self.reasons(batch)
        self.ledger.record(self.step, [d.metadata["source"] for d in batch], reasons, **kw)
        return [(False, r) if r else True for r in reasons]


class Clean(_Counted):
    name, step = "clean", "clean"

    def __init__(self, ledger, batch_size, args: clean.CleanArguments):
        super().__init__(ledger, batch_size)
        self.args = args

    def reasons(self, batch):
        texts, reasons, changed = clean.clean_batch([d.text for d in batch], self.args)
        for d, t in zip(batch, texts):
            d.text = t
        return reasons, {"changes": Counter(c for cs in changed for c in cs)}


class RuleFilter(_Counted):
    """Gopher, C4 and bad-word rules (filters.QualityFilter): the first failing rule is the reason."""

    name, step = "gopher/c4/ldnoobw", "filter"

    def __init__(self, ledger, batch_size, args):
        super().__init__(ledger, batch_size)
        self.args, self._quality = args, None

    def reasons(self, batch):
        self._quality = self._quality or QualityFilter(self.args)  # built in the task, not pickled to it
        texts = [d.text for d in batch]
        b = dedup.text_bytes(texts)
        spans = dedup.word_spans(texts, b)
        keep_words(batch, spans)  # for the fingerprints and the eval n-grams: the words are hashed once
        return self._quality.batch(texts, b=b, spans=spans), {}


_WORDS = "_words"  # metadata of a document between the rule filter and the last step: its word hashes


def keep_words(batch: list[Document], spans: tuple) -> None:
    """Each document keeps its slice of the batch's word hashes (views: no copy), read by `batch_words`."""
    hashes, _, offsets = spans
    for i, d in enumerate(batch):
        d.metadata[_WORDS] = hashes[offsets[i]:offsets[i + 1]]


def batch_words(batch: list[Document], texts: list[str], pop: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(word hashes, offsets) of a batch as `dedup.words` gives them: the rule filter's, else hashed here. The
    last reader pops them."""
    parts = [d.metadata.pop(_WORDS, None) if pop else d.metadata.get(_WORDS) for d in batch]
    if any(p is None for p in parts):
        return dedup.words(texts)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return (np.concatenate(parts) if parts else np.zeros(0, dedup.U64)), offsets


class Toxicity(_Counted):
    name, step = "toxicity", "toxicity"

    def __init__(self, ledger, batch_size, threshold: float):
        super().__init__(ledger, batch_size)
        self.threshold = threshold
        # alt-profanity-check loads its model on import and initialises on its first call (measured: ~4 CPU
        # seconds, then 0.3 s per 1,000 documents of 2.8 KB): do both once here, in the launching process, so
        # forked local workers share them instead of paying them in every task
        classifiers.toxicity_batch(["warm up"], threshold)

    def reasons(self, batch):
        texts = [d.text for d in batch]
        reasons, scores = classifiers.toxicity_batch(texts, self.threshold, batch_words(batch, texts, pop=False)[0])
        return reasons, {"extra": {"scores": classifiers.score_summary(scores, reasons)}}


class QualityClassifier(_Counted):
    name, step = "quality classifier", "quality_classifier"

    def __init__(self, ledger, batch_size, args: classifiers.ClassifierArguments, seed: int):
        super().__init__(ledger, batch_size)
        self.args, self.seed, self._model = args, seed, None

    def reasons(self, batch):
        self._model = self._model or classifiers.check(self.args)
        reasons, scores = classifiers.quality_batch([d.text for d in batch], self._model, self.args, self.seed)
        return reasons, {"extra": {"scores": classifiers.score_summary(scores, reasons)}}


class FingerprintAndWrite(PipelineStep):
    """Last step of a processing task: the surviving documents to work/docs/<rank>.parquet (gid order) with the
    eval sets each shares an n-gram with (column `evals`; the decontaminate stage drops them after dedup), their
    exact keys and MinHash signatures, each LSH band's hashes sorted (what the bucket tasks read by hash
    range), then the ledger and lineage. Everything is written under a temporary name first. Fingerprints and
    eval n-grams come from the word hashes the rule filter made (no step between changes the text)."""

    name, type = "fingerprint + write", "💽 - WRITER"

    def __init__(self, work: str, ledger: Ledger, reader: ReadSources, dargs: dedup.DedupArguments,
                 xargs: DecontaminationArguments, batch_size: int):
        super().__init__()
        self.work, self.ledger, self.reader, self.dargs, self.batch_size = work, ledger, reader, dargs, batch_size
        self.xargs = xargs

    def run(self, data, rank: int = 0, world_size: int = 1):
        from datatrove.utils.batching import batched

        work, hasher = Path(self.work), dedup.MinHasher(self.dargs)
        decon = Decontaminator(self.xargs) if self.xargs.decontaminate_against else None
        rows_per_band = self.dargs.rows_per_band
        docs_path = work / "docs" / f"{rank:05d}.parquet"
        docs_path.parent.mkdir(parents=True, exist_ok=True)
        schema = pa.schema([("gid", pa.int64()), ("source", pa.string()), ("text", pa.string()),
                            ("evals", pa.list_(pa.string()))])
        gids, keys, bands = [], [], []
        sig_path = work / "sigs" / f"{rank:05d}.u32"
        sig_path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(str(docs_path) + ".part", schema) as writer, open(str(sig_path) + ".part", "wb") as sf:
            for batch in batched(data, self.batch_size):
                texts = [d.text for d in batch]
                spans = batch_words(batch, texts)
                k, sigs = dedup.fingerprints(texts, dataclass_near(self.dargs), hasher, spans)
                evals = decon.hits(texts, spans) if decon is not None else [[] for _ in texts]
                sf.write(np.ascontiguousarray(sigs).tobytes())
                gids.append(np.array([d.metadata["gid"] for d in batch], dtype=np.int64))
                keys.append(k)
                bands.append(band_hashes(sigs, self.dargs.num_bands, rows_per_band))
                writer.write_table(pa.table({"gid": gids[-1], "source": [d.metadata["source"] for d in batch],
                                             "text": texts, "evals": evals}, schema=schema))
                self.stat_update("documents", value=len(batch))
        gid_all = np.concatenate(gids) if gids else np.zeros(0, np.int64)
        key_all = np.concatenate(keys) if keys else np.zeros((0, 2), np.uint64)
        band_all = np.concatenate(bands) if bands else np.zeros((0, self.dargs.num_bands), np.uint64)
        # band b's hashes sorted, with the row of each: band "exact" is the exact key's first word
        for b, h in enumerate([key_all[:, 0]] + [band_all[:, i] for i in range(band_all.shape[1])]):
            order = np.argsort(h, kind="stable")
            save_npy(work / "bands" / f"{rank:05d}" / f"{b:03d}.npy",
                     np.stack([h[order], order.astype(np.uint64)], axis=1))
        save_npy(work / "keys" / f"{rank:05d}.npy", key_all)
        save_npy(work / "gids" / f"{rank:05d}.npy", gid_all)
        os.replace(str(sig_path) + ".part", sig_path)
        os.replace(str(docs_path) + ".part", docs_path)
        write_json(work / "stats" / "process" / f"{rank:05d}.json",
                   {"steps": self.ledger.entries(), "lineage": list(self.reader.lineages.values()),
                    "documents": int(len(gid_all))})
        return iter(())


def dataclass_near(dargs: dedup.DedupArguments) -> dedup.DedupArguments:
    import dataclasses

    return dataclasses.replace(dargs, near_dedup=True)  # signatures are cheap; the switch acts in the buckets


_BAND_MIX = np.random.default_rng(0).integers(0, 2**63, 64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def band_hashes(sigs: np.ndarray, num_bands: int, rows: int) -> np.ndarray:
    """(n, num_bands) 64-bit keys: a band's `rows` signature values mixed into one number (as dedup.lsh_clusters)."""
    mix = _BAND_MIX[:rows]
    return np.stack([(sigs[:, b * rows:(b + 1) * rows].astype(np.uint64) * mix).sum(axis=1, dtype=np.uint64)
                     for b in range(num_bands)], axis=1) if len(sigs) else np.zeros((0, num_bands), np.uint64)
