"""The tokenizer stage's sample rule (`train_sample_rate`) on real text: held-out bytes/token of a tokenizer trained
on a seeded sample of the documents against one trained on all of them, with distinct words and peak RSS.

    python benchmarks/tokenizer_sample_rule.py [--rates 1 0.5 0.25 0.1] [--vocab_size 4096]

Corpus: every real English text this checkout can read (the embedded plays and speeches; WikiText-2, hh-rlhf,
the NLTK inaugural and State of the Union speeches and self-instruct from ../shared/data when present), cut
into ~2 KB documents in reading order and written as the data stage writes (train/ and validation/ parquet;
every 20th document is validation, the held-out text all runs measure on).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tokenizer_scale import ROOT, SHARED, run_recipe  # noqa: E402

from fromscratch.sources import load_documents  # noqa: E402


def real_paragraphs() -> list[str]:
    out = [p for d in load_documents("default")[0] for p in d.split("\n\n")]
    if (SHARED / "wikitext-2" / "valid.txt").is_file():
        out += (SHARED / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").split("\n")
    if (SHARED / "hh-rlhf" / "harmless-base-test.jsonl.gz").is_file():
        with gzip.open(SHARED / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt") as fh:
            out += [json.loads(line)["chosen"] for line in fh]
    for f in sorted((SHARED / "nltk-pd-speeches").glob("*/*.txt")):
        out += f.read_text(encoding="utf-8", errors="replace").split("\n\n")
    for f in sorted((SHARED / "self-instruct").glob("*.jsonl")):
        out += [json.dumps(json.loads(line), ensure_ascii=False) for line in f.read_text().splitlines() if line]
    return [p.strip() for p in out if p.strip()]


def write_corpus(folder: Path) -> int:
    docs, cur = [], []
    for p in real_paragraphs():
        cur.append(p)
        if sum(map(len, cur)) >= 2000:
            docs.append("\n\n".join(cur))
            cur = []
    docs += ["\n\n".join(cur)] if cur else []
    for split, rows in (("train", [d for i, d in enumerate(docs) if i % 20]), ("validation", docs[::20])):
        (folder / split).mkdir(parents=True)
        pq.write_table(pa.table({"text": rows, "source": ["real"] * len(rows)}), folder / split / "00000.parquet")
    return sum(len(d.encode("utf-8")) for d in docs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.1])
    ap.add_argument("--vocab_size", type=int, default=4096)
    ap.add_argument("--bpe_trainer", default="tokenizers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fromscratch-samplerule-") as tmp:
        size = write_corpus(Path(tmp) / "corpus")
        print(f"real corpus: {size / 1e6:.1f} MB of text", flush=True)
        rows = []
        for rate in args.rates:
            r = run_recipe(Path(tmp) / "corpus", Path(tmp) / f"tok-{rate}", args.vocab_size, "--overwrite", "true",
                           "--bpe_trainer", args.bpe_trainer, "--train_sample_rate", str(rate))
            rows.append((rate, r))
            print(f"rate {rate:<5} train {r['train_bytes'] / 1e6:6.2f} MB, {r.get('distinct_words', '?')} distinct "
                  f"words, peak RSS {r['peak_rss_mb']:5.0f} MB, held-out {r['bytes_per_token']:.4f} bytes/token "
                  f"({(r['bytes_per_token'] / rows[0][1]['bytes_per_token'] - 1) * 100:+.2f}% vs rate {rows[0][0]})",
                  flush=True)


if __name__ == "__main__":
    main()
