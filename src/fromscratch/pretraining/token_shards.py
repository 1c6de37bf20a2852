"""Pretraining data from a tokenized folder (`make tokenize`): map-style datasets of fixed windows over
memory-mapped token shards, and token-level mixtures of several folders.

Nothing is read at start but metadata.json, each shard's size and a few sampled blocks: a window is sliced from
the OS-mapped file when the Trainer asks for it, so start-up and memory do not grow with the corpus. Each MiB
block of a shard is checked against the digest make tokenize recorded the first time a process reads it (one
more pass over bytes the run reads anyway), so a damaged or edited shard stops the run in one line. Windows are non-overlapping
runs of `block_size` tokens within a shard (the shard's last partial window is dropped, as packing drops one
per map batch); labels are made by the collator, as for the in-memory packed blocks. Being map-style, the
Trainer's seeded sampler orders them, its batch skipping resumes without reading a token, and accelerate gives
DDP ranks disjoint slices of each global batch.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import UserError
from ..sources import Lineage
from .token_writer import FORMAT, block_digest, tokenizer_sha256

METADATA = "metadata.json"
START_CHECKS = 16  # sampled blocks verified at start, whatever the corpus size (the rest when first read)


def is_token_folder(spec: str) -> bool:
    path = Path(spec).expanduser() / METADATA
    try:
        return path.is_file() and json.loads(path.read_text()).get("format") == FORMAT
    except ValueError:
        return False


class Windows(torch.utils.data.Dataset):
    """Windows of `block_size` tokens over a list of shards; each item {"input_ids": LongTensor[block_size]}.

    A shard is (path, tokens) or (path, tokens, record): a record with `blocks` (make tokenize's digests per
    `block_bytes`) has each block verified the first time this process reads it."""

    def __init__(self, shards: list[tuple], dtype: str, block_size: int):
        self.dtype, self.block_size = np.dtype(dtype), block_size
        self.shards = [(s[0], s[1]) for s in shards]
        self.records = [s[2] if len(s) > 2 else {} for s in shards]
        for path, tokens in self.shards:  # a stat per shard: a truncated or swapped file fails here, not mid-run
            size = Path(path).stat().st_size if Path(path).is_file() else -1
            if size != tokens * self.dtype.itemsize:
                raise UserError(f"{path}: {size} bytes, metadata.json says {tokens} tokens of {self.dtype.itemsize} "
                                "bytes: the folder is incomplete or was changed (rerun make tokenize)")
        self.ends = np.cumsum([tokens // block_size for _, tokens in self.shards]).tolist()
        self._maps: dict[int, np.memmap] = {}
        self._checked: set[tuple[int, int]] = set()
        blocks = [(s, b) for s, r in enumerate(self.records) for b in range(len(r.get("blocks", ())))]
        for k in np.random.default_rng(0).permutation(len(blocks))[:START_CHECKS]:
            self._check(*blocks[k])

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def _map(self, s: int) -> np.memmap:
        if s not in self._maps:  # opened lazily, per process (dataloader workers open their own)
            self._maps[s] = np.memmap(self.shards[s][0], dtype=self.dtype, mode="r")
        return self._maps[s]

    def _check(self, s: int, b: int) -> None:
        record = self.records[s]
        step = record["block_bytes"]
        raw = self._map(s).view(np.uint8)[b * step:(b + 1) * step].tobytes()
        if block_digest(raw) != record["blocks"][b]:
            raise UserError(f"{self.shards[s][0]}: bytes {b * step}-{b * step + len(raw)} differ from what make "
                            "tokenize wrote (metadata.json's block digests): the shard is damaged; rerun make "
                            "tokenize into a new folder")
        self._checked.add((s, b))

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        s = bisect_right(self.ends, i)
        start = (i - (self.ends[s - 1] if s else 0)) * self.block_size
        if self.records[s].get("blocks"):
            step, size = self.records[s]["block_bytes"], self.dtype.itemsize
            for b in range(start * size // step, ((start + self.block_size) * size - 1) // step + 1):
                if (s, b) not in self._checked:
                    self._check(s, b)
        return {"input_ids": torch.from_numpy(self._map(s)[start:start + self.block_size].astype(np.int64))}

    def __getstate__(self):  # never pickle mapped pages into dataloader workers
        return {**self.__dict__, "_maps": {}}


class Mixture(torch.utils.data.Dataset):
    """Source k contributes `lengths[k]` items: whole passes over its windows, then an evenly strided subset
    (starting at a seeded offset) for the fraction of a pass left; computed per index, nothing stored."""

    def __init__(self, parts: list[torch.utils.data.Dataset], lengths: list[int], seed: int = 0):
        self.parts, self.lengths = parts, lengths
        self.ends = np.cumsum(lengths).tolist()
        rng = np.random.default_rng(seed)
        self.offsets = [int(rng.integers(len(p))) if len(p) else 0 for p in parts]

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def index(self, i: int) -> tuple[int, int]:
        """(source, window) of mixture item i."""
        k = bisect_right(self.ends, i)
        j, n = i - (self.ends[k - 1] if k else 0), len(self.parts[k])
        full = self.lengths[k] // n * n
        if j < full:
            return k, j % n
        rest = self.lengths[k] - full
        return k, (self.offsets[k] + (j - full) * n // rest) % n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k, w = self.index(i)
        return self.parts[k][w]


@dataclass
class TokenData:
    train: torch.utils.data.Dataset
    validation: torch.utils.data.Dataset
    validation_tokens: int
    validation_bytes: int
    lineage: list[Lineage]
    fingerprint: list[dict]  # what fixes the data: each shard's name, size and sha256, and the mixture
    mixture: list[dict]


def _folder(spec: str, tokenizer_dir: str) -> dict:
    meta = json.loads((Path(spec).expanduser() / METADATA).read_text())
    ours = tokenizer_sha256(tokenizer_dir)
    if meta["tokenizer_sha256"] != ours:
        raise UserError(f"{spec} was tokenized with another tokenizer (sha256 {meta['tokenizer_sha256'][:12]}, "
                        f"{meta['tokenizer_dir']}) than {tokenizer_dir} ({ours[:12]}): rerun make tokenize with it")
    return meta


def _windows(spec: str, meta: dict, split: str, block_size: int) -> Windows:
    root = Path(spec).expanduser()
    return Windows([(str(root / s["file"]), s["tokens"], s) for s in meta["splits"][split]["shards"]], meta["dtype"],
                   block_size)


def load(specs: list[str], tokenizer_dir: str, block_size: int, weights: list[float] | None = None,
         mix_tokens: int = 0, seed: int = 0) -> TokenData:
    """Train and validation windows of one tokenized folder, or a token-level mixture of several.

    weights: shares of the training tokens per folder (default: as the folders hold them); mix_tokens: the
    mixture's size in tokens (0: as many as the folders hold). A folder drawn more than it holds is repeated in
    whole passes (counted in `mixture` as epochs), one drawn less is subsampled evenly.
    """
    weights = list(weights or [])
    if weights and len(weights) != len(specs):
        raise UserError(f"weights: {len(weights)} values for {len(specs)} sources")
    if weights and (any(w < 0 for w in weights) or sum(weights) <= 0):
        raise UserError("weights must be >= 0 and not all 0")
    metas = [_folder(s, tokenizer_dir) for s in specs]
    if len({m["dtype"] for m in metas}) > 1:
        raise UserError("sources: token folders with different dtypes cannot be one tokenizer's output")
    train = [_windows(s, m, "train", block_size) for s, m in zip(specs, metas)]
    val = [_windows(s, m, "validation", block_size) for s, m in zip(specs, metas)]
    for s, t, v in zip(specs, train, val):
        if len(t) == 0 or len(v) == 0:
            raise UserError(f"{s}: too little text for block_size {block_size}: {len(t)} train / {len(v)} "
                            "validation windows")
    available = [len(t) for t in train]
    total = mix_tokens // block_size if mix_tokens else sum(available)
    shares = [w / sum(weights) for w in weights] if weights else [n / sum(available) for n in available]
    lengths = [round(share * total) for share in shares]
    mixture = [{"source": s, "share": round(share, 4), "windows": n, "available_windows": a,
                "epochs": round(n / a, 4)} for s, share, n, a in zip(specs, shares, lengths, available)]
    lineage = []
    for s, m in zip(specs, metas):
        lin = Lineage(spec=s, resolved=str(Path(s).expanduser().resolve()),
                      sha256=hashlib.sha256(json.dumps(m["splits"], sort_keys=True).encode()).hexdigest(),
                      documents=m["splits"]["train"]["documents"], bytes=m["splits"]["train"]["bytes"])
        lineage.append(lin)
    fingerprint = [{"source": s, "shards": [[x["file"], x["tokens"], x["sha256"]] for x in m["splits"]["train"]["shards"]]}
                   for s, m in zip(specs, metas)] + [{"mixture": [[x["source"], x["windows"]] for x in mixture]}]
    return TokenData(
        train=train[0] if len(specs) == 1 and lengths[0] == available[0] else Mixture(train, lengths, seed),
        validation=torch.utils.data.ConcatDataset(val),
        validation_tokens=sum(m["splits"]["validation"]["tokens"] for m in metas),
        validation_bytes=sum(m["splits"]["validation"]["bytes"] for m in metas),
        lineage=lineage, fingerprint=fingerprint, mixture=mixture)


def validation_texts(spec: str, tokenizer, max_bytes: int) -> list[str]:
    """The validation documents of a tokenized folder, decoded (for 07_eval's held-out perplexity)."""
    meta = json.loads((Path(spec).expanduser() / METADATA).read_text())
    out, used = [], 0
    for shard in meta["splits"]["validation"]["shards"]:
        tokens = np.memmap(Path(spec).expanduser() / shard["file"], dtype=np.dtype(meta["dtype"]), mode="r")
        ends = np.fromfile(str(Path(spec).expanduser() / shard["file"]) + ".index", dtype="<u8")
        start = 0
        for end in ends.tolist():
            text = tokenizer.decode(tokens[start:end].tolist(), skip_special_tokens=True)
            start = end
            out.append(text)
            used += len(text.encode("utf-8"))
            if used >= max_bytes:
                return out
    return out
