"""Scale mode of bench_tokenizer.py: the tokenizer recipe on generated corpora of growing size (see there).

For each size: wall time of the recipe process, its training time and MB/s (from run_info.json), and the peak
RSS of that process (os.wait4). The corpora are the data stage's parquet shards (`train/`, `validation/`,
columns text and source) built from one generated set of 50 MB shards: the smaller corpora are its first shards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fromscratch.sources import load_documents  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SHARD_MB = 50


def base_documents() -> list[str]:
    """Real paragraphs: the embedded corpora, plus WikiText-2 where ../shared/data is present."""
    docs = load_documents("default:tinyshakespeare")[0]
    docs += [p for s in load_documents("default:us_speeches")[0] for p in s.split("\n\n") if p.strip()]
    for name in ("train.txt", "valid.txt", "test.txt"):
        f = SHARED / "wikitext-2" / name
        if f.is_file():
            docs += [p.strip() for p in f.read_text(encoding="utf-8").split("\n") if len(p.split()) > 20]
    return docs


def perturb(doc: str, words: list[str], rng: random.Random) -> str:
    """The document with two new compounds put in at random places: the compounds are drawn Zipf-like from
    len(words)**2 possibilities, so the number of distinct words keeps growing, sublinearly, with the corpus."""
    for _ in range(2):
        a, b = (words[min(int(rng.paretovariate(0.7)), len(words)) - 1] for _ in range(2))
        at = rng.randrange(len(doc) + 1)
        doc = f"{doc[:at]} {a}{b}{doc[at:]}"
    return doc


def generate(folder: Path, total_mb: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    docs = base_documents()
    rng.shuffle(docs)
    n_val = len(docs) // 20
    validation, train = docs[:n_val], docs[n_val:]
    counts: dict[str, int] = {}
    for d in train:
        for w in re.findall(r"[a-z]+", d.lower()):
            counts[w] = counts.get(w, 0) + 1
    words = sorted(counts, key=counts.get, reverse=True)  # by frequency: Zipf draws favour common words
    (folder / "validation").mkdir(parents=True)
    (folder / "train").mkdir()
    pq.write_table(pa.table({"text": validation, "source": ["base"] * len(validation)}),
                   folder / "validation" / "part-00000.parquet")
    for shard in range(max(1, total_mb // SHARD_MB)):
        out, size = [], 0
        while size < SHARD_MB * 1e6:
            d = perturb(train[rng.randrange(len(train))], words, rng)
            out.append(d)
            size += len(d.encode("utf-8"))
        pq.write_table(pa.table({"text": out, "source": ["generated"] * len(out)}),
                       folder / "train" / f"part-{shard:05d}.parquet", row_group_size=10_000)


def corpus_of(root: Path, mb: int) -> Path:
    """A data-stage-like folder holding the first mb/SHARD_MB shards (links, no copies)."""
    folder = root / f"corpus-{mb}mb"
    (folder / "train").mkdir(parents=True)
    (folder / "validation").symlink_to(root / "full" / "validation")
    for shard in sorted((root / "full" / "train").glob("*.parquet"))[:max(1, mb // SHARD_MB)]:
        (folder / "train" / shard.name).symlink_to(shard)
    return folder


def run_recipe(sources: Path, out: Path, vocab: int, *extra: str) -> dict:
    cmd = [sys.executable, str(ROOT / "recipes" / "02_tokenizer" / "run.py"), "--config",
           str(ROOT / "recipes" / "02_tokenizer" / "config_tiny.yaml"), "--sources", str(sources),
           "--output_dir", str(out), "--vocab_size", str(vocab), *extra]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "true",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with open(out.with_suffix(".log"), "w") as log:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"recipe failed on {sources}: see {out.with_suffix('.log')}")
    metrics = json.loads((out / "run_info.json").read_text())["metrics"]
    return {**metrics, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description="tokenizer recipe at three corpus sizes")
    ap.add_argument("--scale", action="store_true")
    ap.add_argument("--sizes", default="50,200,800", help="corpus sizes in MB, comma-separated")
    ap.add_argument("--vocab_size", type=int, default=8192)
    ap.add_argument("--bpe_trainer", default="tokenizers", help="the recipe's bpe_trainer: tokenizers or rustbpe")
    ap.add_argument("--sample_rate", type=float, default=0.25, help="train_sample_rate compared at the largest size")
    ap.add_argument("--keep", default=None, help="folder to keep the corpora in (default: a temporary one)")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="fromscratch-tokscale-") as tmp:
        root = Path(args.keep or tmp)
        t = time.perf_counter()
        if not (root / "full").exists():
            generate(root / "full", sizes[-1])
        print(f"generated {sizes[-1]} MB of parquet shards in {time.perf_counter() - t:.0f} s", flush=True)
        rows, common = [], ["--overwrite", "true", "--bpe_trainer", args.bpe_trainer]
        for mb in sizes:
            folder = corpus_of(root, mb) if not (root / f"corpus-{mb}mb").exists() else root / f"corpus-{mb}mb"
            r = run_recipe(folder, root / f"tok-{mb}mb-{args.bpe_trainer}", args.vocab_size, *common)
            rows.append((mb, r))
            print(f"{mb:>5} MB  train {r['train_bytes'] / 1e6:7.1f} MB in {r['train_seconds']:7.1f} s"
                  f" ({r['mb_per_s']:5.2f} MB/s), wall {r['wall_s']:6.1f} s, peak RSS {r['peak_rss_mb']:6.0f} MB,"
                  f" {r.get('distinct_words', '?')} distinct words, held-out {r['bytes_per_token']:.4f} bytes/token",
                  flush=True)
        (small, a), (big, b) = rows[0], rows[-1]
        print(f"growth {small} -> {big} MB ({big / small:.0f}x data):"
              f" training time {b['train_seconds'] / a['train_seconds']:.2f}x,"
              f" wall {b['wall_s'] / a['wall_s']:.2f}x, peak RSS {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x"
              + (f", distinct words {b['distinct_words'] / a['distinct_words']:.2f}x" if "distinct_words" in a else ""))
        s = run_recipe(root / f"corpus-{big}mb", root / f"tok-{big}mb-{args.bpe_trainer}-sample", args.vocab_size,
                       *common, "--train_sample_rate", str(args.sample_rate))
        diff = (s["bytes_per_token"] / b["bytes_per_token"] - 1) * 100
        print(f"sample {args.sample_rate} of {big} MB: train {s['train_bytes'] / 1e6:.1f} MB"
              f" in {s['train_seconds']:.1f} s,"
              f" peak RSS {s['peak_rss_mb']:.0f} MB, held-out {s['bytes_per_token']:.4f} bytes/token"
              f" ({diff:+.2f}% vs all)", flush=True)
