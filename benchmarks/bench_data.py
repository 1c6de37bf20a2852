"""Throughput of the data stage: documents/s for clean + filter + dedup and for dedup alone, beside a plain
baseline (datasketch MinHash + MinHashLSH, the library way) in the same run, with near-duplicate recall and
false removals on planted duplicates. Medians of several runs, one process (so the figures are per core).

    make bench-data [ARGS="--repeats 5 --planted 3000"]
    make bench-data ARGS="--scale 50 200 800"    # the recipe at corpus scale: see bench_data_scale.py

The corpus is built from the real data in ../shared/data (Shakespeare speeches, presidential-address paragraphs,
WikiText-2 paragraphs, hh-rlhf dialogues, BoolQ passages, LAMBADA contexts), at least 20,000 documents, plus
planted near-duplicates: copies of documents of 80+ words with ~1% of words replaced, one deleted and a
footer line appended (true 5-shingle Jaccard >= ~0.75), and planted exact duplicates (case and spacing).
A false removal is a removed document that was not planted and whose true Jaccard with the document it was
clustered with is below 0.5 (real corpora contain real near-duplicates; those are not false).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fromscratch.data.clean import CleanArguments, clean_batch  # noqa: E402
from fromscratch.data.dedup import DedupArguments, deduplicate  # noqa: E402
from fromscratch.data.filters import FilterArguments, QualityFilter  # noqa: E402
from common import build_corpus  # noqa: E402  (the corpus builders the scale mode shares)

_WORDS = re.compile("[0-9_a-z\u0080-\U0010ffff]+")


def shingles(text: str, k: int = 5) -> set:
    w = _WORDS.findall(text.lower())
    return {tuple(w[i:i + k]) for i in range(max(len(w) - k + 1, 1))}


def quality(texts: list[str], removed: set[int], dup_of: list[int], pairs: dict[int, int]) -> dict:
    """Recall over planted pairs (a copy and its original are interchangeable: removing either one counts),
    and false removals: removed documents outside the planted pairs that are not similar to what they were
    clustered with (true Jaccard < 0.5)."""
    caught = sum(1 for c, o in pairs.items() if c in removed or o in removed)
    in_pairs = set(pairs) | set(pairs.values())
    false = 0
    for i in removed - in_pairs:
        j = dup_of[i]
        a, b = shingles(texts[i]), shingles(texts[j]) if j >= 0 else set()
        if not b or len(a & b) / len(a | b) < 0.5:
            false += 1
    return {"recall": caught / max(len(pairs), 1), "false_removals": false, "removed": len(removed)}


def datasketch_dedup(texts: list[str], args: DedupArguments) -> tuple[list[str], list[int]]:
    """The plain way: hashlib for exact matches, datasketch MinHash per document, MinHashLSH insert + query."""
    import hashlib

    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=args.num_bands * args.rows_per_band, params=(args.num_bands, args.rows_per_band))
    seen: dict = {}
    reasons, dup_of = [""] * len(texts), [-1] * len(texts)
    sigs = {}
    for i, t in enumerate(texts):
        words = _WORDS.findall(t.lower())
        key = hashlib.blake2b(" ".join(words).encode(), digest_size=16).digest()
        if key in seen:
            reasons[i], dup_of[i] = "exact duplicate", seen[key]
            continue
        seen[key] = i
        m = MinHash(num_perm=args.num_bands * args.rows_per_band, seed=args.minhash_seed)
        k = args.shingle_size
        m.update_batch([" ".join(words[j:j + k]).encode() for j in range(max(len(words) - k + 1, 1))])
        best = None
        for c in lsh.query(m):
            if m.jaccard(sigs[c]) >= args.near_threshold and (best is None or c < best):
                best = c
        if best is not None:
            reasons[i], dup_of[i] = "near duplicate", best
        else:
            lsh.insert(i, m)
            sigs[i] = m
    return reasons, dup_of


def ours_dedup(texts, args):
    dup_of: list[int] = []
    reasons, _ = deduplicate(texts, args, duplicate_of=dup_of)
    return reasons, dup_of


def pipeline(texts: list[str], dedup_fn, cargs, quality_filter, dargs) -> tuple[dict, list[str], list[int], list[int]]:
    c0 = time.process_time()
    t0 = time.perf_counter()
    cleaned, reasons, _ = clean_batch(texts, cargs)
    t1 = time.perf_counter()
    kept = [i for i, r in enumerate(reasons) if not r]
    fr = quality_filter.batch([cleaned[i] for i in kept])
    kept = [i for i, r in zip(kept, fr) if not r]
    t2 = time.perf_counter()
    dr, dup_of = dedup_fn([cleaned[i] for i in kept], dargs)
    t3 = time.perf_counter()
    times = {"clean": t1 - t0, "filter": t2 - t1, "dedup": t3 - t2, "total": t3 - t0, "cpu": time.process_time() - c0}
    return times, dr, kept, dup_of


def map_pipeline(texts, cargs, qf, dargs, num_proc: int) -> float:
    """The recipe's way: one datasets.map per step (batched), with num_proc worker processes."""
    import datasets

    from fromscratch.data.dedup import MinHasher, fingerprints

    datasets.disable_progress_bars()
    ds = datasets.Dataset.from_dict({"text": texts})
    kw = dict(batched=True, batch_size=1000, num_proc=num_proc if num_proc > 1 else None)
    hasher = MinHasher(dargs)
    t0 = time.perf_counter()
    ds = ds.map(lambda b: dict(zip(("text", "drop"), clean_batch(b["text"], cargs)[:2])), **kw)
    ds = ds.map(lambda b: {"drop": qf.batch(b["text"])}, **kw)
    ds = ds.filter(lambda d: [not x for x in d], input_columns="drop", **kw)
    ds.map(lambda b: {"minhash": fingerprints(b["text"], dargs, hasher)[1]}, remove_columns=ds.column_names, **kw)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planted", type=int, default=3000, help="planted near-duplicates (+10%% exact copies)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported")
    ap.add_argument("--min_words", type=int, default=5, help="filter threshold (the tiny config's)")
    ap.add_argument("--num_proc", type=int, nargs="*", default=[1, 2],
                    help="also run clean+filter+fingerprint through datasets.map with these num_proc values")
    ap.add_argument("--scale", type=float, nargs="*", default=None,
                    help="scale mode: the data recipe on generated corpora of these sizes in MB (e.g. 50 200 800)")
    ap.add_argument("--scale_dir", default="outputs/bench_data_scale", help="scale mode: where corpora are written")
    ap.add_argument("--shapes", nargs="*", default=["many", "one"],
                    help="scale mode: input shapes, many (files of ~8 MB) and/or one (a single file)")
    ap.add_argument("--skip_recall", action="store_true", help="scale mode: skip the planted-recall runs")
    ap.add_argument("--workers", type=int, default=2, help="scale mode: tasks running at once")
    args = ap.parse_args()
    if args.scale is not None:
        import bench_data_scale

        work = Path(args.scale_dir)
        if not args.skip_recall:
            bench_data_scale.planted_recall(args.planted, [1, 4], args.workers, work)
        bench_data_scale.scale(args.scale or [50, 200, 800], args.workers, work, tuple(args.shapes))
        return

    texts, pairs = build_corpus(args.planted)
    n = len(texts)
    print(f"corpus: {n} documents ({sum(map(len, texts)) / 1e6:.1f} M characters), {len(pairs)} planted "
          f"duplicates; one process; median of {args.repeats} runs")
    cargs, dargs = CleanArguments(), DedupArguments()
    qf = QualityFilter(FilterArguments(min_words=args.min_words, min_stop_words=1, max_bad_words=3))

    results = {}
    for name, fn in (("ours (numpy MinHash)", ours_dedup), ("baseline (datasketch)", datasketch_dedup)):
        times, cpu, out = [], [], None
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(texts, dargs)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        reasons, dup_of = out
        removed = {i for i, r in enumerate(reasons) if r}
        results[name] = {"dedup_s": statistics.median(times), "dedup_cpu": statistics.median(cpu),
                         **quality(texts, removed, dup_of, pairs)}

    pipes = {}
    for name, fn in (("ours (numpy MinHash)", ours_dedup), ("baseline (datasketch)", datasketch_dedup)):
        runs = [pipeline(texts, fn, cargs, qf, dargs) for _ in range(args.repeats)]
        med = {k: statistics.median(r[0][k] for r in runs) for k in runs[0][0]}
        _, dr, kept, dup_of = runs[-1]
        pos = {i: j for j, i in enumerate(kept)}
        kept_pairs = {pos[c]: pos[o] for c, o in pairs.items() if c in pos and o in pos}
        removed = {j for j, r in enumerate(dr) if r}
        q = quality([texts[i] for i in kept], removed, dup_of, kept_pairs)
        pipes[name] = {**med, **q, "filtered_out": n - len(kept)}

    base, ours = "baseline (datasketch)", "ours (numpy MinHash)"
    print("docs/s: wall clock, and per CPU second of this process (the per-core figure when the machine is shared)")
    print(f"\n{'dedup alone':<28}{'docs/s':>10}{'per cpu-s':>11}{'recall':>9}{'false':>7}{'removed':>9}")
    for name, r in results.items():
        print(f"{name:<28}{n / r['dedup_s']:>10,.0f}{n / r['dedup_cpu']:>11,.0f}{r['recall']:>9.3f}"
              f"{r['false_removals']:>7}{r['removed']:>9}")
    print(f"{'ratio ours / baseline':<28}{results[base]['dedup_s'] / results[ours]['dedup_s']:>10.1f}x"
          f"{results[base]['dedup_cpu'] / results[ours]['dedup_cpu']:>10.1f}x")
    print(f"\n{'clean + filter + dedup':<28}{'docs/s':>10}{'per cpu-s':>11}{'clean':>8}{'filter':>8}{'dedup':>8}"
          f"{'recall':>9}{'false':>7}")
    for name, r in pipes.items():
        print(f"{name:<28}{n / r['total']:>10,.0f}{n / r['cpu']:>11,.0f}{r['clean']:>7.2f}s{r['filter']:>7.2f}s"
              f"{r['dedup']:>7.2f}s{r.get('recall', float('nan')):>9.3f}{r.get('false_removals', -1):>7}")
    print(f"{'ratio ours / baseline':<28}{pipes[base]['total'] / pipes[ours]['total']:>10.1f}x"
          f"{pipes[base]['cpu'] / pipes[ours]['cpu']:>10.1f}x")
    if args.num_proc:
        print(f"\n{'datasets.map (as the recipe)':<28}{'docs/s':>10}   clean+filter+fingerprint; dedup clustering excluded")
        plain = pipes[ours]["clean"] + pipes[ours]["filter"]
        for k in args.num_proc:
            secs = statistics.median(map_pipeline(texts, cargs, qf, dargs, k) for _ in range(args.repeats))
            print(f"{'num_proc=' + str(k):<28}{n / secs:>10,.0f}   ({secs:.2f} s; plain loop clean+filter "
                  f"{plain:.2f} s + fingerprint)")
    wall, per_cpu = n / pipes[ours]["total"], n / pipes[ours]["cpu"]
    print(f"\ntarget >= 3,000 documents/s per core for clean+filter+dedup: {wall:,.0f} wall, {per_cpu:,.0f} per "
          f"CPU second ({'met' if per_cpu >= 3000 else 'NOT met'} per core); near-dup recall "
          f"{results[ours]['recall']:.3f} (target >= 0.97), false removals {results[ours]['false_removals']} (target 0)")
    print(f"({pipes[ours]['filtered_out']} documents filtered out before dedup; pipeline recall is over the planted "
          f"pairs whose two documents both survived the filters)")


if __name__ == "__main__":
    main()
