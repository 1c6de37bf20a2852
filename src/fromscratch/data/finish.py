"""The data stage after the clusters: dedup filter + decontaminate, validation hold-out, counterfactual
augmentation, and the mixture as a sharded sampling step. Each is a datatrove step over one processing task's
documents (so memory follows a task's share); the few global facts they need (removed ids, per-source counts
and hold-out thresholds, the mixture's epochs) are small files that every task reads.

- Hold-out: a document goes to validation when a hash of (seed, id) is among the smallest `fraction` of its
  source's hashes. Each task writes its hashes sorted; one tiny task finds each source's threshold by binary
  search over those memory-mapped files. Exact counts (as the one-process version), whatever the task count.
- Mixture: a document of a source with `epochs` e is written floor(e) times, plus once more with probability
  frac(e) (a hash of (seed, id, copy), so the draw does not depend on tasks). Shares of characters are then
  the weights in expectation; stats.json reports the actual shares and the epochs.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.pipeline.base import PipelineStep

from . import mix
from .augment import Swapper, load_pairs
from .decontaminate import REASON
from .dedup import _mix
from .sharded_dedup import EXACT, removed
from .steps import Ledger, save_npy, write_json

DEDUP_REASON = {EXACT: "exact duplicate", 2: "near duplicate"}


def _hash01(gids: np.ndarray, seed: int, salt: int = 0) -> np.ndarray:
    """A uniform 64-bit hash of (seed, salt, id): the same draw in any task."""
    x = gids.astype(np.uint64) ^ _mix(np.full(len(gids), seed * 1_000_003 + salt, dtype=np.uint64))
    return _mix(_mix(x))


def _parquet_batches(path: Path, batch_size: int):
    """Arrow record batches: the texts stay in arrow (filtered, taken, written) and never become Python strings,
    which was most of these steps' time."""
    if not path.exists():
        return
    yield from pq.ParquetFile(str(path)).iter_batches(batch_size=batch_size)


def _per_source(index: np.ndarray, *weights: np.ndarray) -> dict[int, list]:
    """source index -> [rows, sum of each weight] over the rows, sources in order of first appearance (as the
    dicts the per-row loops built, so the JSON files keep their order)."""
    found, first = np.unique(index, return_index=True)
    sums = [np.bincount(index)] + [np.bincount(index, weights=w) for w in weights]
    return {int(k): [int(x[k]) for x in sums] for k in found[np.argsort(first)]}


class _Writer:
    """A parquet file written in batches under a temporary name, renamed when closed (only if not empty)."""

    def __init__(self, path: Path, schema):
        self.path, self.schema, self.w, self.rows = path, schema, None, 0

    def write(self, columns: dict) -> None:
        if not len(next(iter(columns.values()))):
            return
        if self.w is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.w = pq.ParquetWriter(str(self.path) + ".part", self.schema)
        self.w.write_table(pa.table(columns, schema=self.schema))
        self.rows += len(next(iter(columns.values())))

    def close(self) -> None:
        if self.w is not None:
            self.w.close()
            Path(str(self.path) + ".part").replace(self.path)


def _schema(*cols):
    types = {"gid": pa.int64(), "source": pa.string(), "text": pa.string(), "hold": pa.uint64()}
    return pa.schema([(c, types[c]) for c in cols])


class DedupAndDecontaminate(PipelineStep):
    name, type = "dedup filter + decontaminate", "🫂 - DEDUP"

    def __init__(self, work: str, specs: list[str], xargs, seed: int, batch_size: int):
        super().__init__()
        self.work, self.specs, self.xargs, self.seed, self.batch_size = work, specs, xargs, seed, batch_size

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        work = Path(self.work)
        gone, why = removed(work)
        on = bool(self.xargs.decontaminate_against)  # the hits were found by the processing tasks (`evals`)
        ledger = Ledger(["dedup", "decontaminate"] if on else ["dedup"])
        out = _Writer(work / "kept" / f"{rank:05d}.parquet", _schema("gid", "source", "text", "hold"))
        holds: dict[int, list] = {}
        index = {s: i for i, s in enumerate(self.specs)}
        for b in _parquet_batches(work / "docs" / f"{rank:05d}.parquet", self.batch_size):
            g, src = b.column("gid").to_numpy(), b.column("source").to_pylist()
            pos = np.minimum(np.searchsorted(gone, g), max(len(gone) - 1, 0))
            hit = (gone[pos] == g) if len(gone) else np.zeros(len(g), bool)
            reasons = [DEDUP_REASON[w] if h else "" for w, h in zip((why[pos] if len(gone) else pos).tolist(),
                                                                     hit.tolist())]
            ledger.record("dedup", src, reasons)
            keep = ~hit
            if on:
                tainted = pc.list_value_length(b.column("evals")).to_numpy(zero_copy_only=False) > 0
                hits = b.column("evals").filter(pa.array(keep & tainted)).to_pylist()
                ledger.record("decontaminate", [s for s, k in zip(src, keep.tolist()) if k],
                              [REASON if t else "" for t in tainted[keep].tolist()],
                              extra={"documents_hit_per_task": dict(Counter(t for h in hits for t in h))})
                keep &= ~tainted
            g, sources = g[keep], np.array([index[s] for s, k in zip(src, keep.tolist()) if k], np.int64)
            h = _hash01(g, self.seed)
            for s in np.unique(sources).tolist():
                holds.setdefault(s, []).append(h[sources == s])
            mask = pa.array(keep)
            out.write({"gid": g, "source": b.column("source").filter(mask), "text": b.column("text").filter(mask),
                       "hold": h})
        out.close()
        for s in range(len(self.specs)):
            save_npy(work / "holdkeys" / f"{rank:05d}" / f"{s:03d}.npy",
                     np.sort(np.concatenate(holds.get(s, []) + [np.zeros(0, np.uint64)])))
        write_json(work / "stats" / "finish" / f"{rank:05d}.json", {"steps": ledger.entries()})
        return iter(())


class HoldOutThresholds(PipelineStep):
    """One small task: per source, the hash below which `fraction` of its documents (at least one where it has
    two or more) go to validation."""

    name, type = "hold-out thresholds", "📊 - STATS"

    def __init__(self, work: str, n_sources: int, tasks: int, fraction: float):
        super().__init__()
        self.work, self.n_sources, self.tasks, self.fraction = work, n_sources, tasks, fraction

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        work, out = Path(self.work), {}
        for s in range(self.n_sources):
            arrs = [np.load(work / "holdkeys" / f"{t:05d}" / f"{s:03d}.npy", mmap_mode="r") for t in range(self.tasks)]
            n = sum(len(a) for a in arrs)
            k = min(n - 1, max(1, round(n * self.fraction))) if self.fraction > 0 and n > 1 else 0
            if k == 0:
                out[s] = None
                continue
            lo, hi = 0, 2**64 - 1  # smallest x with k hashes <= x
            while lo < hi:
                mid = (lo + hi) // 2
                if sum(int(np.searchsorted(a, np.uint64(mid), side="right")) for a in arrs) >= k:
                    hi = mid
                else:
                    lo = mid + 1
            out[s] = lo
        write_json(work / "thresholds.json", {str(k): v for k, v in out.items()})
        return iter(())


class HoldOutAndAugment(PipelineStep):
    name, type = "hold-out + counterfactual", "✂️ - SPLIT"

    def __init__(self, work: str, tmp: str, specs: list[str], aargs, batch_size: int):
        super().__init__()
        self.work, self.tmp, self.specs, self.aargs, self.batch_size = work, tmp, specs, aargs, batch_size

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        work = Path(self.work)
        thr = {int(k): v for k, v in json.loads((work / "thresholds.json").read_text()).items()}
        mode = self.aargs.counterfactual_augmentation
        ledger = Ledger(["hold_out"] + (["counterfactual"] if mode != "none" else []))
        swapper = Swapper(load_pairs(self.aargs.counterfactual_pairs_file)) if mode != "none" else None
        val = _Writer(Path(self.tmp) / "validation" / f"{rank:05d}.parquet", _schema("text", "source"))
        pool = _Writer(work / "pool" / f"{rank:05d}.parquet", _schema("gid", "source", "text"))
        terms, changed_by = Counter(), Counter()
        index = {s: i for i, s in enumerate(self.specs)}
        has = np.array([thr[i] is not None for i in range(len(self.specs))], bool)
        below = np.array([thr[i] or 0 for i in range(len(self.specs))], np.uint64)
        val_rows, pool_rows = [], []  # (source indices, characters) per batch
        for b in _parquet_batches(work / "kept" / f"{rank:05d}.parquet", self.batch_size):
            sources = np.array([index[s] for s in b.column("source").to_pylist()], np.int64)
            to_val = has[sources] & (b.column("hold").to_numpy() <= below[sources])
            ledger.record("hold_out", b.column("source").to_pylist(),
                          ["moved to validation split" if v else "" for v in to_val.tolist()])
            mask, rest = pa.array(to_val), pa.array(~to_val)
            chars = pc.utf8_length(b.column("text")).to_numpy()  # code points, as len() of the str
            val.write({"text": b.column("text").filter(mask), "source": b.column("source").filter(mask)})
            val_rows.append((sources[to_val], chars[to_val]))
            g, text, source = (b.column(c).filter(rest) for c in ("gid", "text", "source"))
            if swapper is None:
                pool.write({"gid": g, "source": source, "text": text})
                pool_rows.append((sources[~to_val], chars[~to_val]))
                continue
            g, src, texts = g.to_pylist(), source.to_pylist(), text.to_pylist()
            # the train pool only: validation stays natural text
            added, copies = [], {"gid": [], "source": [], "text": []}
            for i, t in enumerate(texts):
                new, counts = swapper.swap(t)
                if not counts:
                    continue
                terms.update(counts)
                changed_by[src[i]] += 1
                if mode == "replace":
                    texts[i] = new
                else:
                    added.append(src[i])
                    copies["gid"].append(-1 - g[i])  # a copy's id: negative, its original's mirrored
                    copies["source"].append(src[i])
                    copies["text"].append(new)
            ledger.record("counterfactual", src, [""] * len(src), added=added)
            g, src, texts = g + copies["gid"], src + copies["source"], texts + copies["text"]
            pool_rows.append((np.array([index[s] for s in src], np.int64), np.array([len(t) for t in texts])))
            pool.write({"gid": np.asarray(g, np.int64), "source": src, "text": texts})
        val.close()
        pool.close()
        held, available = ({self.specs[k]: v for k, v in _per_source(
            np.concatenate([r[0] for r in rows] + [np.zeros(0, np.int64)]),
            np.concatenate([r[1] for r in rows] + [np.zeros(0)])).items()} for rows in (val_rows, pool_rows))
        entries = ledger.entries()
        if swapper is not None:
            entries[-1].update({"mode": mode, "documents_changed": sum(changed_by.values()),
                                "documents_changed_by_source": dict(changed_by), "swaps": sum(terms.values()),
                                "swaps_per_term": dict(terms)})
        write_json(work / "stats" / "augment" / f"{rank:05d}.json", {"steps": entries, "available": available,
                                                                    "validation": held})
        return iter(())


def mixture_plan(work: Path, specs: list[str], weights: list[float], total_chars: int | None) -> list[mix.MixPlan]:
    available = {s: [0, 0] for s in specs}
    for f in sorted((work / "stats" / "augment").glob("*.json")):
        for s, (d, c) in json.loads(f.read_text())["available"].items():
            available[s][0] += d
            available[s][1] += c
    return mix.plan({s: tuple(v) for s, v in available.items()}, dict(zip(specs, weights)), total_chars)


class Mix(PipelineStep):
    name, type = "mix", "🔀 - MIX"

    def __init__(self, work: str, tmp: str, specs: list[str], weights: list[float], total_chars, seed: int,
                 batch_size: int):
        super().__init__()
        self.work, self.tmp, self.specs, self.weights = work, tmp, specs, weights
        self.total_chars, self.seed, self.batch_size = total_chars, seed, batch_size

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        work = Path(self.work)
        epochs = {p.source: p.epochs for p in mixture_plan(work, self.specs, self.weights, self.total_chars)}
        index = {s: i for i, s in enumerate(self.specs)}
        parts = []
        for b in _parquet_batches(work / "pool" / f"{rank:05d}.parquet", self.batch_size):
            g, src = b.column("gid").to_numpy(), b.column("source").to_pylist()
            e = np.array([epochs[s] for s in src])
            extra = _hash01(g, self.seed, salt=1) / 2.0**64 < e - np.floor(e)
            n = (np.floor(e) + extra).astype(int)
            copies = np.repeat(np.arange(len(n)), n)  # each document n times, in place
            parts.append((pa.Table.from_batches([b.select(["text", "source"])]).take(copies),
                          np.array([index[s] for s in src], np.int64)[copies]))
        table = pa.concat_tables([p[0] for p in parts]) if parts else _schema("text", "source").empty_table()
        # interleave the sources within the shard (tasks hold a few files each: ~1/tasks of the train split)
        order = list(range(table.num_rows))
        random.Random(self.seed + rank).shuffle(order)
        out = _Writer(Path(self.tmp) / "train" / f"{rank:05d}.parquet", _schema("text", "source"))
        # typed: an empty list would be a null array, which take() refuses (a task all of whose documents went)
        out.write({c: table[c].take(pa.array(order, pa.int64())) for c in ("text", "source")})
        out.close()
        counts = _per_source(np.concatenate([p[1] for p in parts] + [np.zeros(0, np.int64)]),
                             pc.utf8_length(table["text"]).to_numpy(), pc.binary_length(table["text"]).to_numpy())
        write_json(work / "stats" / "mix" / f"{rank:05d}.json",
                   {s: counts.get(i, [0, 0, 0]) for i, s in enumerate(self.specs)})
        return iter(())
