"""Deduplication across tasks, the datatrove way: signatures -> buckets -> clusters -> filter.

- Signatures: each processing task wrote its documents' exact keys and MinHash signatures, and per LSH band the
  band hashes sorted (steps.FingerprintAndWrite).
- Buckets (one task per band and hash range): read that hash range of the band from every processing task
  (a slice of a sorted, memory-mapped file), sort by (hash, document id), and verify neighbours with equal
  hashes: the same 128-bit key (band 0, exact), or estimated Jaccard >= near_threshold from the two signatures
  (read from the tasks' memory-mapped signature files). Verified pairs go to pairs/<band>_<range>.npy.
- Clusters (one task, the only global step): it holds the duplicate pairs and nothing else: 16 bytes per pair
  read (two int64 ids) plus numpy's working arrays over the ids that occur in a pair. Exact pairs first (every
  document but the smallest id of an exact group is an 'exact duplicate'), then near pairs between the exact
  groups' roots: every member but the smallest id of a connected component is a 'near duplicate'. The
  removed ids go to removed.npy, sorted.
- Filter: each finishing task drops the removed ids from its documents (finish.Finish).

Document ids come from (source, unit, row), so the smallest id is the first document in source order (list the
sources you trust most first), and the result does not depend on how many tasks ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datatrove.pipeline.base import PipelineStep

from .dedup import DedupArguments
from .steps import save_npy, write_json

EXACT, NEAR = 1, 2


def bucket_tasks(dargs: DedupArguments, ranges: int) -> int:
    return (1 + dargs.num_bands) * ranges


class Buckets(PipelineStep):
    name, type = "buckets", "🫂 - DEDUP"

    def __init__(self, work: str, process_tasks: int, dargs: DedupArguments, ranges: int):
        super().__init__()
        self.work, self.process_tasks, self.dargs, self.ranges = work, process_tasks, dargs, ranges

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        work, band, part = Path(self.work), rank // self.ranges, rank % self.ranges
        exact = band == 0
        out = work / "pairs" / f"{band:03d}_{part:05d}.npy"
        if (exact and not self.dargs.exact_dedup) or (not exact and not self.dargs.near_dedup):
            save_npy(out, np.zeros((0, 2), np.int64))
            return iter(())
        lo = (part << 64) // self.ranges
        hi = ((part + 1) << 64) // self.ranges
        hashes, tasks, rows = [], [], []
        for t in range(self.process_tasks):
            arr = np.load(work / "bands" / f"{t:05d}" / f"{band:03d}.npy", mmap_mode="r")
            h = arr[:, 0]
            a, b = np.searchsorted(h, np.uint64(lo)), (np.searchsorted(h, np.uint64(hi)) if hi < 1 << 64 else len(h))
            hashes.append(np.asarray(h[a:b]))
            rows.append(np.asarray(arr[a:b, 1]).astype(np.int64))
            tasks.append(np.full(b - a, t, dtype=np.int64))
        h, t, r = (np.concatenate(x) for x in (hashes, tasks, rows))
        gids = {k: np.load(work / "gids" / f"{k:05d}.npy", mmap_mode="r") for k in range(self.process_tasks)}
        g = np.empty(len(h), np.int64)
        for k in np.unique(t):
            sel = t == k
            g[sel] = gids[int(k)][r[sel]]
        order = np.lexsort((g, h))
        same = np.flatnonzero(h[order][1:] == h[order][:-1])
        i, j = order[same], order[same + 1]
        self.stat_update("candidate_pairs", value=len(i))
        if exact:
            keep = self._second_word(t[i], r[i]) == self._second_word(t[j], r[j])
        else:
            keep = self._jaccard(t[i], r[i], t[j], r[j]) >= self.dargs.near_threshold
        pairs = np.stack([g[i][keep], g[j][keep]], axis=1)
        save_npy(out, pairs)
        write_json(work / "stats" / "buckets" / f"{rank:05d}.json", {"candidates": int(len(i)),
                                                                    "pairs": int(len(pairs)), "exact": bool(exact)})
        return iter(())

    def _second_word(self, tasks: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), np.uint64)
        for k in np.unique(tasks):
            keys = np.load(Path(self.work) / "keys" / f"{int(k):05d}.npy", mmap_mode="r")
            sel = tasks == k
            out[sel] = keys[rows[sel], 1]
        return out

    def _signatures(self, tasks: np.ndarray, rows: np.ndarray) -> np.ndarray:
        perms = self.dargs.num_bands * self.dargs.rows_per_band
        out = np.empty((len(rows), perms), np.uint32)
        for k in np.unique(tasks):
            path = Path(self.work) / "sigs" / f"{int(k):05d}.u32"
            sigs = np.memmap(path, dtype=np.uint32, mode="r").reshape(-1, perms)
            sel = tasks == k
            out[sel] = sigs[rows[sel]]
        return out

    def _jaccard(self, ti, ri, tj, rj) -> np.ndarray:
        if not len(ri):
            return np.zeros(0)
        return (self._signatures(ti, ri) == self._signatures(tj, rj)).mean(axis=1)


def _components(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, root of each): connected components of the pair graph, each rooted at its smallest id. Minimum-label
    propagation with pointer jumping, in numpy over the ids that occur in a pair (a few passes: the diameter of
    a duplicate cluster is small)."""
    ids, inv = np.unique(pairs, return_inverse=True)  # sorted: the smallest id has the smallest index
    inv = inv.reshape(-1, 2)
    label = np.arange(len(ids))
    while True:
        low = np.minimum(label[inv[:, 0]], label[inv[:, 1]])
        new = label.copy()
        np.minimum.at(new, inv[:, 0], low)
        np.minimum.at(new, inv[:, 1], low)
        new = new[new]
        if np.array_equal(new, label):
            return ids, ids[label]
        label = new


class Clusters(PipelineStep):
    name, type = "clusters", "🫂 - DEDUP"

    def __init__(self, work: str, dargs: DedupArguments, ranges: int):
        super().__init__()
        self.work, self.dargs, self.ranges = work, dargs, ranges

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import tracemalloc

        tracemalloc.start()  # numpy reports its buffers to tracemalloc: the step's own peak, in bytes per pair
        work = Path(self.work)
        files = sorted((work / "pairs").glob("*.npy"))
        exact = [np.load(f) for f in files if f.name.startswith("000_")]
        near = [np.load(f) for f in files if not f.name.startswith("000_")]
        exact = np.concatenate(exact) if exact else np.zeros((0, 2), np.int64)
        near = np.concatenate(near) if near else np.zeros((0, 2), np.int64)
        held = exact.nbytes + near.nbytes
        ids, roots = _components(exact) if len(exact) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        exact_dups = ids[ids != roots]
        if len(near) and len(ids):  # a near pair between exact copies is a pair between their groups' roots
            pos = np.clip(np.searchsorted(ids, near), 0, max(len(ids) - 1, 0))
            near = np.where(ids[pos] == near, roots[pos], near)
        near = near[near[:, 0] != near[:, 1]]
        nids, nroots = _components(near) if len(near) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        near_dups = nids[nids != nroots]
        removed = np.concatenate([exact_dups, near_dups])
        reason = np.concatenate([np.full(len(exact_dups), EXACT, np.int8), np.full(len(near_dups), NEAR, np.int8)])
        order = np.argsort(removed)
        save_npy(work / "removed_gid.npy", removed[order])
        save_npy(work / "removed_why.npy", reason[order])
        buckets = [json.loads(f.read_text()) for f in sorted((work / "stats" / "buckets").glob("*.json"))]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        n_pairs = int(len(exact) + len(near))
        write_json(work / "stats" / "clusters.json", {
            "exact_duplicates": int(len(exact_dups)), "near_duplicates": int(len(near_dups)),
            "lsh_candidate_pairs": sum(b["candidates"] for b in buckets if not b["exact"]),
            "verified_pairs": n_pairs, "pair_bytes_read": int(held),
            "cluster_peak_bytes_per_pair": round(peak / n_pairs, 1) if n_pairs else None})
        return iter(())


def removed(work: Path) -> tuple[np.ndarray, np.ndarray]:
    return np.load(work / "removed_gid.npy"), np.load(work / "removed_why.npy")
