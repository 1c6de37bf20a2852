"""`make bench-eval-cost`: what one evaluation costs as the corpus grows, with and without the eval cap.

    python benchmarks/bench_eval_cost.py [--sizes 50 200 800] [--work /tmp/fromscratch-bench-eval]

A 50 MB corpus (~2 KB documents of real paragraphs, scale_tokens.make_corpus) is tokenized once with `make
tokenize`'s recipe; the 200 and 800 MB folders are its shards hard-linked 4 and 16 times, the validation split
too, so the held-out share grows with the corpus as a data stage's validation_fraction makes it (the shape of
the issue: 0.5% of 20B tokens is 100M tokens per evaluation). At each size, stage 03 trains a nano model for 2
steps with the step-0 evaluation and the final one: once scoring the whole validation split (eval_tokens 0,
final_eval_tokens 0: what every evaluation did before the cap) and once with the cap (eval_tokens and
final_eval_tokens below). Printed: wall and CPU seconds of each run, peak RSS, the windows scored, and each
path's ratio of the largest and the middle size to the smallest, measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import scale_tokens as st

# 256 and 384 windows of 256 tokens: below the smallest corpus's held-out split (495 windows at 50 MB), so every
# size scores the same windows, as a run at real scale does (its split is far above any cap)
CAP = ["--eval_tokens", "65536", "--final_eval_tokens", "98304"]
WHOLE = ["--eval_tokens", "0", "--final_eval_tokens", "0"]


def run(tokens: Path, tokenizer_dir: Path, work: Path, keys: list[str]) -> dict:
    out = work / "pt"
    r = st.run_measured([sys.executable, "recipes/03_pretrain/run.py", *st.PRETRAIN, "--sources", str(tokens),
                         "--tokenizer_dir", str(tokenizer_dir), "--output_dir", str(out), *keys])
    metrics = json.loads((out / "run_info.json").read_text())["metrics"]
    return {"wall_s": round(r["seconds"], 1), "cpu_s": round(r["cpu_seconds"], 1), "peak_rss_mb": round(r["peak_rss_mb"]),
            "windows": metrics["eval_windows"], "bits_per_byte": round(metrics["bits_per_byte"], 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs=3, default=[50, 200, 800], help="corpus sizes in MB of text")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "fromscratch-bench-eval"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = st.train_tokenizer(work, st.paragraphs())
    small = args.sizes[0]
    base = work / f"tokens_{small}mb"
    if not (base / "metadata.json").is_file():
        corpus = st.make_corpus(work / f"corpus_{small}mb", small, st.paragraphs())
        st.run_measured([sys.executable, "recipes/03_pretrain/tokenize_corpus.py", "--config",
                         "recipes/03_pretrain/config_tokenize_tiny.yaml", "--sources", str(corpus), "--tokenizer_dir",
                         str(tokenizer_dir), "--output_dir", str(base), "--overwrite", "true"])
    rows = []
    for mb in args.sizes:
        tokens = base if mb == small else st.replicate(base, work / f"tokens_{mb}mb", round(mb / small), validation=True)
        val = json.loads((tokens / "metadata.json").read_text())["splits"]["validation"]["tokens"]
        row = {"MB": mb, "validation_tokens": val, "whole": run(tokens, tokenizer_dir, work, WHOLE),
               "capped": run(tokens, tokenizer_dir, work, CAP)}
        rows.append(row)
        print("EVAL " + json.dumps(row), flush=True)
    print(f"\n{'MB':>6}{'val tokens':>12}{'whole s':>9}{'CPU s':>8}{'RSS MB':>8}{'capped s':>10}{'CPU s':>8}{'RSS MB':>8}"
          f"{'windows (capped: during/final of held)':>42}")
    for r in rows:
        w, c = r["whole"], r["capped"]
        print(f"{r['MB']:>6}{r['validation_tokens']:>12,}{w['wall_s']:>9}{w['cpu_s']:>8}{w['peak_rss_mb']:>8}"
              f"{c['wall_s']:>10}{c['cpu_s']:>8}{c['peak_rss_mb']:>8}"
              f"{c['windows']['during_training']:>20}/{c['windows']['final']} of {c['windows']['held_out']}")
    first = rows[0]
    for r in rows[1:]:
        print(f"{r['MB']} MB / {first['MB']} MB: whole split x{r['whole']['wall_s'] / first['whole']['wall_s']:.2f} wall "
              f"(x{r['whole']['cpu_s'] / first['whole']['cpu_s']:.2f} CPU); capped "
              f"x{r['capped']['wall_s'] / first['capped']['wall_s']:.2f} wall "
              f"(x{r['capped']['cpu_s'] / first['capped']['cpu_s']:.2f} CPU; target <= 1.5x)")


if __name__ == "__main__":
    main()
