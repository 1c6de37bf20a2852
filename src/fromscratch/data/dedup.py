"""Deduplication: exact (hash of the normalized words) and near-duplicate (MinHash LSH); keep the first of
each cluster.

Vectorised with numpy over a whole batch of documents instead of datasketch's per-document `MinHash.update`
loop, because per-word Python calls were the cost (measured: ~1,000 docs/s for 330-word documents with a
per-word hash). Here a batch is lowercased and encoded once; word boundaries, word hashes (a polynomial hash via
prefix sums, mod 2^64), shingle hashes, the exact-match key and all permutations (one multiply-add matrix
reduced per document with `np.minimum.reduceat`) are array operations. Hashes depend only on the text, so
fingerprints made in `datasets.map(num_proc=...)` workers agree. benchmarks/bench_data.py measures this against
datasketch's MinHash + MinHashLSH on the same documents.

Words are runs of ASCII letters/digits/underscore or any non-ASCII byte (so "café" is one word); case,
punctuation and whitespace differences do not make a new document. LSH candidates (documents sharing one band
of `rows_per_band` signature values) are verified by their estimated Jaccard similarity before removal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import checked
U64 = np.uint64
_P = U64(0x100000001B3)  # FNV prime: odd, so invertible mod 2^64
_P_INV = U64(pow(0x100000001B3, -1, 2**64))
_Q = (U64(0x9E3779B97F4A7C15), U64(0xC2B2AE3D27D4EB4F))  # two bases for a 128-bit exact key
_Q_INV = tuple(U64(pow(int(q), -1, 2**64)) for q in _Q)
_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"0123456789_abcdefghijklmnopqrstuvwxyz":
    _WORD_BYTE[_c] = True
_WORD_BYTE[128:] = True


@dataclass
class DedupArguments:
    exact_dedup: bool = True
    near_dedup: bool = True
    shingle_size: int = checked(5, ge=1)
    num_bands: int = checked(20, ge=1)
    rows_per_band: int = checked(5, ge=1)
    near_threshold: float = checked(0.7, gt=0, le=1)
    minhash_seed: int = 1


_POWERS: dict[int, np.ndarray] = {}
_POWERS_CACHED = 1 << 24  # entries kept per base (128 MB at most); a longer batch computes its own


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) mod 2^64 (read-only). Filled by doubling (p[k:2k] = p[:k] * base**k, one vector
    multiply per step) and cached per base: a sequential cumprod over every byte of every batch was a fifth of
    the word hashing time."""
    have = _POWERS.get(int(base))
    if have is not None and len(have) >= n:
        return have[:n]
    size = n if n > _POWERS_CACHED else min(max(n, 1 << 16, 2 * len(have) if have is not None else 0),
                                            _POWERS_CACHED)
    p = np.empty(size, dtype=U64)
    p[0], k = 1, 1
    while k < size:
        m = min(k, size - k)
        np.multiply(p[:m], U64(pow(int(base), k, 2**64)), out=p[k:k + m])  # wraps mod 2^64, as we want
        k += m
    p.flags.writeable = False
    if size <= _POWERS_CACHED:
        _POWERS[int(base)] = p
    return p[:n]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads every input bit over the high half used by the permutations."""
    x = (x ^ (x >> U64(30))) * U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> U64(27))) * U64(0x94D049BB133111EB)
    return x ^ (x >> U64(31))


def _span_hash(values: np.ndarray, base: np.uint64, inv: np.uint64, starts: np.ndarray, ends: np.ndarray
               ) -> np.ndarray:
    """Polynomial hash of values[s:e] for many spans at once: prefix sums of v_j * base^j, rescaled."""
    n = len(values)
    prefix = np.empty(n + 1, dtype=U64)  # in place: each temporary the size of a batch's bytes cost ~5 ms
    prefix[0] = 0
    np.multiply(values, _powers(base, n), out=prefix[1:])
    np.cumsum(prefix[1:], out=prefix[1:])
    h = prefix[ends] - prefix[starts]
    h *= _powers(inv, n + 1)[starts]
    return h


def words(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes of a batch, concatenated, and each document's [start, end) into them (n + 1 offsets)."""
    hashes, _, offsets = word_spans(texts)
    return hashes, offsets


def text_bytes(texts: list[str]) -> np.ndarray:
    """A batch as one lowercased UTF-8 byte array, documents separated by NUL (never inside a text). `lower()`
    of non-ASCII text is the costly part: steps that read the same batch share this array."""
    return np.frombuffer("\x00".join(texts).lower().encode("utf-8"), dtype=np.uint8)


def word_bounds(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) in `b` (a batch's `text_bytes`) of every word, in order."""
    is_word = np.concatenate(([False], _WORD_BYTE[b], [False]))
    edges = np.diff(is_word.view(np.int8))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def word_spans(texts: list[str], b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word hashes, word lengths in bytes, and per-document offsets, for a batch (`b`: its `text_bytes`)."""
    b = text_bytes(texts) if b is None else b
    starts, ends = word_bounds(b)
    values = b.astype(U64)
    values += U64(1)
    hashes = _mix(_span_hash(values, _P, _P_INV, starts, ends) + (ends - starts).astype(U64))
    doc_starts = np.concatenate(([0], np.flatnonzero(b == 0) + 1))  # NUL never occurs inside a text
    offsets = np.searchsorted(starts, np.concatenate((doc_starts, [len(b) + 1])))
    return hashes, ends - starts, offsets


class HashSet:
    """Sorted unique 64-bit hashes, and a bitmap of their top bits: most values of a large batch are absent, and
    the bitmap rules them out with one gather from a table that fits in the cache, leaving the binary search
    (measured: 30 ms for 500,000 words against 11,000 eval n-grams) to the few candidates."""

    def __init__(self, values: np.ndarray):
        self.values = np.unique(np.asarray(values, dtype=U64))
        bits = int(min(max(16, np.ceil(np.log2(max(len(self.values), 1) * 8))), 24))  # ~1/8 of the bits set
        self.shift = U64(64 - bits)
        self.table = np.zeros(1 << bits, dtype=bool)
        self.table[self.values >> self.shift] = True

    def __len__(self) -> int:
        return len(self.values)

    def find(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices into x of the values in the set, the position of each in `values`)."""
        cand = np.flatnonzero(self.table[x >> self.shift])
        if not len(cand) or not len(self.values):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pos = np.minimum(np.searchsorted(self.values, x[cand]), len(self.values) - 1)
        hit = self.values[pos] == x[cand]
        return cand[hit], pos[hit]

    def contains(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x), dtype=bool)
        out[self.find(x)[0]] = True
        return out


class MinHasher:
    """Permutations x -> (a_i * x + b_i) mod 2^32 (a_i odd: a bijection) of well-mixed 32-bit shingle hashes.
    uint32 arithmetic halves the memory traffic of the 64-bit multiply-shift family; measured on 300 random
    pairs, the Jaccard estimates have the same bias (~0.001) and spread (~0.045 at 100 permutations)."""

    def __init__(self, args: DedupArguments):
        rng = np.random.default_rng(args.minhash_seed)
        self.num_perm = args.num_bands * args.rows_per_band
        self.a = (rng.integers(0, 2**31, self.num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1))
        self.b = rng.integers(0, 2**32, self.num_perm, dtype=np.uint32)
        self.k = args.shingle_size

    def shingles(self, hashes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """32-bit hashes of word k-grams and the document each belongs to (sorted by document). A document
        shorter than k words is one shingle of all its words (an empty one, one shingle of nothing)."""
        k, n_docs = self.k, len(offsets) - 1
        lengths = np.diff(offsets)
        m = max(len(hashes) - k + 1, 0)
        rolled = np.zeros(m, dtype=U64)
        for j in range(k):
            rolled = rolled * U64(0x9E3779B97F4A7C15) + hashes[j:j + m]
        doc_of = np.repeat(np.arange(n_docs), lengths)[:m]
        ok = np.arange(m) + k <= offsets[1:][doc_of] if m else np.zeros(0, bool)
        sh, docs = [rolled[ok]], [doc_of[ok]]
        short = np.flatnonzero(lengths < k)
        if len(short):  # rare: one polynomial over all of a short document's words
            sh.append(np.array([np.sum(hashes[offsets[d]:offsets[d + 1]] * _powers(U64(31), lengths[d]),
                                       dtype=U64) for d in short], dtype=U64))
            docs.append(short)
        sh_all, doc_all = np.concatenate(sh), np.concatenate(docs)
        order = np.argsort(doc_all, kind="stable")
        return (_mix(sh_all[order]) >> U64(32)).astype(np.uint32), doc_all[order]

    def signatures(self, shingles: np.ndarray, doc_of: np.ndarray, n_docs: int, chunk: int = 4096
                   ) -> np.ndarray:
        """(n_docs, num_perm) uint32, a chunk of permutations x shingles at a time. Permutation-major with
        chunks that fit in the L2 cache: each permutation's row of the chunk is then a contiguous run for
        `minimum.reduceat` (measured: 5x faster than shingle-major chunks of 40,000)."""
        out = np.empty((self.num_perm, n_docs), dtype=np.uint32)
        firsts = np.searchsorted(doc_of, np.arange(n_docs + 1))
        a, b = self.a[:, None], self.b[:, None]
        d0 = 0
        while d0 < n_docs:
            d1 = int(np.searchsorted(firsts, firsts[d0] + chunk, side="right")) - 1
            d1 = min(max(d1, d0 + 1), n_docs)
            h = a * shingles[None, firsts[d0]:firsts[d1]]
            h += b
            np.minimum.reduceat(h, firsts[d0:d1] - firsts[d0], axis=1, out=out[:, d0:d1])
            d0 = d1
        return np.ascontiguousarray(out.T)


def fingerprints(texts: list[str], args: DedupArguments, hasher: MinHasher | None = None,
                 spans: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per document: a 128-bit exact key of its normalized words (n, 2) and its MinHash signature (n, P).
    `spans`: the texts' `words(texts)` if an earlier step computed them."""
    hashes, offsets = spans if spans is not None else words(texts)
    starts, ends = offsets[:-1], offsets[1:]
    lengths = (ends - starts).astype(U64)
    keys = np.stack([_mix(_span_hash(hashes, q, qi, starts, ends) + lengths) for q, qi in zip(_Q, _Q_INV)], 1)
    if not args.near_dedup:
        return keys, None
    hasher = hasher or MinHasher(args)
    sh, doc_of = hasher.shingles(hashes, offsets)
    return keys, hasher.signatures(sh, doc_of, len(texts))


def _find(parent: dict, i: int) -> int:
    root = i
    while parent.get(root, root) != root:
        root = parent[root]
    while parent.get(i, i) != root:
        parent[i], i = root, parent[i]
    return root


def lsh_clusters(sigs: np.ndarray, num_bands: int, rows: int, threshold: float) -> tuple[dict, int]:
    """{member: root} over verified candidate pairs; the earliest document is its cluster's root. Band keys
    are hashed and sorted, and neighbours in sorted order compared, instead of buckets in a Python dict."""
    parent: dict = {}
    mix = np.random.default_rng(0).integers(0, 2**63, rows, dtype=U64) * U64(2) + U64(1)
    candidates = 0
    for b in range(num_bands):
        keys = (sigs[:, b * rows:(b + 1) * rows].astype(U64) * mix).sum(axis=1, dtype=U64)
        order = np.argsort(keys, kind="stable")
        same = np.flatnonzero(keys[order][1:] == keys[order][:-1])
        if not len(same):
            continue
        i, j = order[same], order[same + 1]
        candidates += len(i)
        agree = (sigs[i] == sigs[j]).mean(axis=1) >= threshold
        for x, y in zip(i[agree].tolist(), j[agree].tolist()):
            rx, ry = _find(parent, x), _find(parent, y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
    return {i: _find(parent, i) for i in list(parent)}, candidates


def duplicate_reasons(keys: np.ndarray, sigs: np.ndarray | None, args: DedupArguments,
                      duplicate_of: list[int] | None = None) -> tuple[list[str], dict]:
    """'' for a keeper, 'exact duplicate' or 'near duplicate' otherwise (first occurrence kept). If a list is
    passed as `duplicate_of`, it is filled with the kept document each removed one duplicates (-1 if kept)."""
    n = len(keys)
    reasons = [""] * n
    dup_of = duplicate_of if duplicate_of is not None else []
    dup_of[:] = [-1] * n
    info = {"exact_duplicates": 0, "near_duplicates": 0, "lsh_candidate_pairs": 0}
    alive = np.arange(n)
    if args.exact_dedup and n:
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        is_first = np.zeros(n, dtype=bool)
        is_first[first] = True
        for i in np.flatnonzero(~is_first).tolist():
            reasons[i] = "exact duplicate"
            dup_of[i] = int(first[inverse.reshape(-1)[i]])
        info["exact_duplicates"] = int(n - len(first))
        alive = np.flatnonzero(is_first)
    if args.near_dedup and sigs is not None and len(alive) > 1:
        roots, info["lsh_candidate_pairs"] = lsh_clusters(sigs[alive], args.num_bands, args.rows_per_band,
                                                          args.near_threshold)
        for member, root in roots.items():
            if member != root:
                reasons[int(alive[member])] = "near duplicate"
                dup_of[int(alive[member])] = int(alive[root])
                info["near_duplicates"] += 1
    return reasons, info


def deduplicate(texts: list[str], args: DedupArguments, batch_size: int = 1000,
                duplicate_of: list[int] | None = None) -> tuple[list[str], dict]:
    """Fingerprint in batches, then cluster the whole corpus at once."""
    hasher = MinHasher(args)
    parts = [fingerprints(texts[i:i + batch_size], args, hasher) for i in range(0, len(texts), batch_size)]
    keys = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 2), U64)
    sigs = np.concatenate([p[1] for p in parts]) if parts and args.near_dedup else None
    return duplicate_reasons(keys, sigs, args, duplicate_of)
