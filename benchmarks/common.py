"""Shared helpers for the benchmarks: medians, peak memory, a measured matmul peak, a result line, and the
corpus builders of the data benchmarks (real documents from ../shared/data, planted near copies, JSONL corpora
of a chosen size in the shapes users bring: many files, or one large file)."""

from __future__ import annotations

import gzip
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median(xs):
    return statistics.median(xs)


def flops_per_token(parameters: int, layers: int, hidden: int, context: int) -> float:
    """Training FLOPs per token: 6 N for the weights (forward + backward) plus 12 L H T for attention scores."""
    return 6 * parameters + 12 * layers * hidden * context


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def matmul_peak_flops(n: int = 1024, reps: int = 20, dtype=None) -> float:
    """Best achieved FLOP/s of a square fp32 matmul on this machine: the denominator of our MFU on CPU."""
    import torch

    dtype = dtype or torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def emit(rows: list[dict]) -> None:
    """One JSON line per figure on stdout, read by run_all.py: name, value, unit, baseline, baseline value."""
    for row in rows:
        row.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
        print("BENCH " + json.dumps(row), flush=True)
    sys.stdout.flush()


# --- corpora of the data benchmarks (bench_data.py, bench_data_scale.py) ------------------------------------

SHARED = ROOT.parent / "shared" / "data"
def real_documents() -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from fromscratch.sources import load_documents

    docs, _ = load_documents("default:tinyshakespeare")
    speeches, _ = load_documents("default:us_speeches")
    docs += [p for s in speeches for p in s.split("\n\n") if p.strip()]
    wiki = (SHARED / "wikitext-2" / "valid.txt").read_text(encoding="utf-8")
    docs += [p.strip() for p in wiki.split("\n") if len(p.split()) > 20]
    with gzip.open(SHARED / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as fh:
        docs += [json.loads(line)["chosen"].strip() for line in fh]
    for name, key in (("boolq.jsonl", "query"), ("lambada_openai.jsonl", "context")):
        rows = (SHARED / "eval-tasks" / name).read_text(encoding="utf-8").splitlines()
        docs += [json.loads(r)[key] for r in rows]
    return docs


def near_copy(text: str, rng: random.Random) -> str:
    w = text.split()
    for _ in range(max(1, len(w) // 100)):
        w[rng.randrange(len(w))] = rng.choice(["nation", "people", "government", "liberty"])
    del w[rng.randrange(len(w))]
    return " ".join(w) + "\nShare this page"


def build_corpus(n_planted: int, seed: int = 0) -> tuple[list[str], dict[int, int]]:
    """Real documents plus planted copies, shuffled; returns the corpus and {copy position: original position}."""
    rng = random.Random(seed)
    docs = real_documents()
    long_docs = [i for i, d in enumerate(docs) if len(d.split()) >= 80]
    originals = rng.sample(long_docs, n_planted) + rng.sample(long_docs, n_planted // 10)
    planted = [near_copy(docs[i], rng) for i in originals[:n_planted]]
    planted += ["  " + docs[i].upper() + " " for i in originals[n_planted:]]
    corpus = docs + planted
    positions = list(range(len(corpus)))
    rng.shuffle(positions)  # copies may come before or after their original, as in a crawl
    new_of = {old: new for new, old in enumerate(positions)}
    pairs = {new_of[len(docs) + k]: new_of[orig] for k, orig in enumerate(originals)}
    return [corpus[i] for i in positions], pairs




FILE_BYTES = 8_000_000  # the many-files shape: JSONL files of ~8 MB


def generate(folder: Path, megabytes: float, docs: list[str], seed: int = 0, one_file: bool = False
             ) -> tuple[int, int]:
    """~2 KB documents (random runs of real paragraphs, 2% near copies of recent ones) into JSONL: files of
    ~8 MB, or all in one file; returns (documents, bytes)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    target, written, n, k = megabytes * 1e6, 0, 0, 0
    fh, in_file, recent = None, 0, []
    while written < target:
        if fh is None or in_file >= FILE_BYTES and not one_file:
            if fh is not None:
                fh.close()
            fh = open(folder / f"part{k:04d}.jsonl", "w", encoding="utf-8")
            k, in_file = k + 1, 0
        if recent and rng.random() < 0.02:
            text = near_copy(rng.choice(recent), rng)
        else:
            parts, size = [], 0
            while size < 2000:
                p = docs[rng.randrange(len(docs))]
                parts.append(p)
                size += len(p) + 2
            text = "\n\n".join(parts)
            recent = (recent + [text])[-200:]
        line = json.dumps({"text": text}) + "\n"
        fh.write(line)
        written += len(line.encode("utf-8"))
        in_file += len(line)
        n += 1
    fh.close()
    return n, int(written)
