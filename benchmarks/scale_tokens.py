"""`make bench-scale`: tokenize-once and pretraining start-up at three corpus sizes, and training tokens/s from
token shards vs the in-memory packed dataset, in one run.

    python benchmarks/scale_tokens.py [--sizes 50 200 800] [--work /tmp/fromscratch-bench-scale] [--encode_mb 20]

Corpora: ~2 KB documents, each a run of real paragraphs (the embedded plays and speeches, plus WikiText-2 and
hh-rlhf from ../shared/data when present) drawn at random, written as the data stage writes its output
(train/*.parquet in row groups of 1,000 documents, validation/*.parquet). The validation split has the same
200 documents at every size, so the step-0 evaluation the recipe runs costs the same everywhere.

First, in this process, CPU seconds per MB of text of the encode step alone on the smallest corpus: the Rust
tokenizer's `encode_batch_fast` (one thread, then Rayon on all cores) vs the tiktoken encoder `make tokenize` uses
(src/fromscratch/pretraining/fast_encode.py), alternating, ids checked identical.
Per size: `recipes/03_pretrain/tokenize_corpus.py` (local executor, one task per core): wall time, CPU seconds
of the whole process tree (getrusage of the waited-for children) and MB of text per CPU second (what one core
does when it is not shared), peak RSS of the process tree (sampled every 50 ms); then `recipes/03_pretrain/run.py
--sources <tokens>` for 2 steps: launch to the first training step logged (wall and CPU seconds), and peak RSS.
On a shared machine wall times follow the other jobs; CPU seconds much less. At the smallest size the same
start-up for today's path (text sources tokenized and packed in memory) is the baseline. Last, in this process,
tokens/s of the same nano model trained from shards and from packed in-memory blocks, alternating runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED = ROOT.parent / "shared" / "data"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def paragraphs() -> list[str]:
    import gzip

    from fromscratch.sources import load_documents

    docs, _ = load_documents("default")
    out = [p.strip() for d in docs for p in d.split("\n\n") if len(p.split()) > 5]
    if (SHARED / "wikitext-2" / "valid.txt").is_file():
        out += [p.strip() for p in (SHARED / "wikitext-2" / "valid.txt").read_text().split("\n") if len(p.split()) > 20]
    if (SHARED / "hh-rlhf" / "harmless-base-test.jsonl.gz").is_file():
        with gzip.open(SHARED / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt") as fh:
            out += [json.loads(line)["chosen"].strip() for line in fh]
    return out


def make_corpus(folder: Path, mb: int, paras: list[str], seed: int = 0) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    done = folder.with_suffix(".done")  # beside it: the folder holds only what a data stage writes
    if done.is_file():
        return folder
    rng = random.Random(seed)
    (folder / "train").mkdir(parents=True, exist_ok=True)
    (folder / "validation").mkdir(exist_ok=True)

    def doc():  # ~2,000 characters: paragraphs joined, cut at the first space after 2,000
        parts, n = [], 0
        while n < 2000:
            p = rng.choice(paras)
            parts.append(p)
            n += len(p) + 2
        text = "\n\n".join(parts)
        cut = text.find(" ", 2000)
        return text if cut < 0 else text[:cut]

    val = [doc() for _ in range(200)]
    pq.write_table(pa.table({"text": val, "source": ["bench"] * 200}), folder / "validation" / "00000.parquet")
    written, k = 0, 0
    per_file = int(min(12_500, max(500, mb * 1e6 / 2000 / 16)))  # >= 16 files up to 25 MB each, as many tasks write
    while written < mb * 1e6:
        rows = [doc() for _ in range(per_file)]
        written += sum(len(r) for r in rows)
        pq.write_table(pa.table({"text": rows, "source": ["bench"] * len(rows)}), folder / "train" / f"{k:05d}.parquet",
                       row_group_size=1000)
        k += 1
    done.write_text(str(written))
    return folder


def run_measured(cmd: list[str], first_line: str | None = None) -> dict:
    """Wall time, peak RSS of the process tree, and (optionally) seconds until a stdout line contains first_line."""
    import resource

    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    root = psutil.Process(proc.pid)
    peak, first, first_cpu, lines = 0, None, None, []
    os.set_blocking(proc.stdout.fileno(), False)
    while True:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            peak = max(peak, rss)
        except psutil.Error:
            pass
        for line in iter(proc.stdout.readline, ""):
            lines.append(line)
            if first is None and first_line and first_line in line:
                first = time.perf_counter() - t0
                try:  # CPU seconds of the tree so far: robust to the other jobs on a shared machine
                    tree = [root, *root.children(recursive=True)]
                    first_cpu = sum(p.cpu_times().user + p.cpu_times().system for p in tree) + \
                        root.cpu_times().children_user + root.cpu_times().children_system
                except psutil.Error:
                    pass
        if proc.poll() is not None:
            lines += proc.stdout.readlines()
            break
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{''.join(lines[-40:])}")
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime  # the whole tree, waited for
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": cpu, "peak_rss_mb": peak / 2**20, "first": first,
            "first_cpu": first_cpu}


def replicate(src: Path, dst: Path, times: int, validation: bool = False) -> Path:
    """A token folder whose train split is src's shards `times` over (hard links: no disk, no tokenizing), its
    validation split src's (or, with `validation`, src's `times` over too: a held-out share that grows with the
    corpus, as a data stage's validation_fraction gives): what pretraining opens, maps and samples from is that size."""
    import shutil

    meta = json.loads((src / "metadata.json").read_text())
    if dst.exists():
        shutil.rmtree(dst)
    shards = []
    for k in range(times):
        for shard in meta["splits"]["train"]["shards"]:
            name = f"train/{k:03d}_{Path(shard['file']).name}"
            (dst / "train").mkdir(parents=True, exist_ok=True)
            os.link(src / shard["file"], dst / name)
            shards.append({**shard, "file": name})
    if validation:
        held = []
        (dst / "validation").mkdir(parents=True, exist_ok=True)
        for k in range(times):
            for shard in meta["splits"]["validation"]["shards"]:
                name = f"validation/{k:03d}_{Path(shard['file']).name}"
                os.link(src / shard["file"], dst / name)
                os.link(str(src / shard["file"]) + ".index", str(dst / name) + ".index")
                held.append({**shard, "file": name})
        v = meta["splits"]["validation"]
        meta["splits"]["validation"] = {**{k: v[k] * times for k in ("tokens", "bytes", "documents")}, "shards": held}
    else:
        shutil.copytree(src / "validation", dst / "validation", copy_function=os.link)
    train = meta["splits"]["train"]
    meta["splits"]["train"] = {**{k: train[k] * times for k in ("tokens", "bytes", "documents")}, "shards": shards}
    (dst / "metadata.json").write_text(json.dumps(meta, indent=2))
    return dst


def train_tokenizer(work: Path, paras: list[str]) -> Path:
    out = work / "tokenizer"
    if not (out / "tokenizer.json").is_file():
        subprocess.run([sys.executable, "recipes/02_tokenizer/run.py", "--config", "recipes/02_tokenizer/config_tiny.yaml",
                        "--sources", "default", "--output_dir", str(out), "--overwrite", "true"], cwd=ROOT, env=ENV,
                       check=True, capture_output=True)
    return out


PRETRAIN = ["--config", "recipes/03_pretrain/config_tiny.yaml", "--preset", "nano", "--max_steps", "2",
            "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
            "--disable_tqdm", "true", "--overwrite", "true", "--per_device_eval_batch_size", "64"]


def throughput(tokens_dir: Path, corpus: Path, tokenizer_dir: Path, steps: int, repeats: int) -> dict:
    """Median tokens/s, and tokens per CPU second of this process (steadier on a shared machine), of one nano model
    trained from shard windows and from in-memory packed blocks."""
    import datasets
    import pyarrow.parquet as pq
    import torch
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainerCallback, TrainingArguments)

    from fromscratch.modeling import build_config
    from fromscratch.pretraining import token_shards
    from fromscratch.pretraining.packing import pack, tokenize

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    shards = token_shards.load([str(tokens_dir)], str(tokenizer_dir), 256).train
    texts = pq.ParquetFile(sorted((corpus / "train").glob("*.parquet"))[0]).read_row_group(0).column("text").to_pylist()
    packed = pack(tokenize(datasets.Dataset.from_dict({"text": texts * 2}), tok), 256)
    warm = 3

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warm:
                self.t0, self.c0 = time.perf_counter(), time.process_time()
            if state.global_step == warm + steps:
                self.t1, self.c1 = time.perf_counter(), time.process_time()

    def one(ds):
        torch.manual_seed(0)
        cfg = build_config("llama", "nano", len(tok), 256, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        args = TrainingArguments(output_dir=tempfile.mkdtemp(), max_steps=warm + steps, per_device_train_batch_size=16,
                                 learning_rate=1e-3, report_to="none", save_strategy="no", use_cpu=True,
                                 disable_tqdm=True, logging_strategy="no", seed=0, dataloader_num_workers=0)
        timer = Timer()
        Trainer(model=AutoModelForCausalLM.from_config(cfg), args=args, train_dataset=ds,
                data_collator=DataCollatorForLanguageModeling(tok, mlm=False), callbacks=[timer]).train()
        tokens = steps * 16 * 256
        return tokens / (timer.t1 - timer.t0), tokens / (timer.c1 - timer.c0)

    got = {"shards": [], "in-memory packed": []}
    for _ in range(repeats):
        got["shards"].append(one(shards))
        got["in-memory packed"].append(one(packed))
    return ({k: statistics.median(w for w, _ in v) for k, v in got.items()}
            | {f"{k} per CPU-s": statistics.median(c for _, c in v) for k, v in got.items()} | {"runs": got})


def encode_speed(corpus: Path, tokenizer_dir: Path, mb: float, repeats: int) -> dict:
    """CPU seconds per MB of text: the Rust tokenizer's batch encode (one thread, and Rayon on all cores) vs the
    tiktoken encoder `make tokenize` uses, alternating, in this process; the ids must be identical."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from fromscratch.pretraining.fast_encode import FastEncoder

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    texts, size = [], 0
    for f in sorted((corpus / "train").glob("*.parquet")):
        for t in pq.read_table(f, columns=["text"]).column(0).to_pylist():
            texts.append(t)
            size += len(t.encode("utf-8"))
        if size >= mb * 1e6:
            break
    batches = [texts[a:a + 1000] for a in range(0, len(texts), 1000)]  # as token_writer's READ_BATCH

    def rust(parallel: bool):
        os.environ["TOKENIZERS_PARALLELISM"] = "true" if parallel else "false"  # read by tokenizers per call
        return [e.ids for b in batches for e in tok.backend_tokenizer.encode_batch_fast(b, add_special_tokens=False)]

    paths = {"rust encode_batch_fast, 1 thread": lambda: rust(False),
             "rust encode_batch_fast, Rayon on all cores": lambda: rust(True),
             "tiktoken (make tokenize)": lambda: [ids for b in batches for ids in encoder(b)]}
    got = {k: [] for k in paths}
    reference = None
    for _ in range(repeats):
        encoder = FastEncoder(tok)  # fresh each time: its guard's check of the first documents is counted
        for name, fn in paths.items():
            c0, w0 = time.process_time(), time.perf_counter()
            ids = fn()
            got[name].append((time.process_time() - c0, time.perf_counter() - w0))
            reference = reference or ids
            if ids != reference:
                raise SystemExit(f"{name}: ids differ from the tokenizer's")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    mb = size / 1e6
    return {"MB": round(mb, 1), **{name: {"cpu_s_per_MB": round(statistics.median(c for c, _ in v) / mb, 3),
                                          "wall_s_per_MB": round(statistics.median(w for _, w in v) / mb, 3)}
                                   for name, v in got.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs=3, default=[50, 200, 800], help="corpus sizes in MB of text")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "fromscratch-bench-scale"))
    ap.add_argument("--steps", type=int, default=20, help="timed steps per tokens/s run")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs per path; the median is reported")
    ap.add_argument("--encode_mb", type=float, default=20, help="MB of text for the encode CPU-seconds comparison "
                    "(0: skip it)")
    ap.add_argument("--replicate", action="store_true", help="do not tokenize the larger sizes: their token folders "
                    "are the smallest's shards hard-linked size/smallest times (pretraining start-up and RSS only)")
    ap.add_argument("--reuse_tokens", action="store_true", help="keep a token folder already in --work (its "
                    "tokenize columns are then left out)")
    ap.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                    help="measure today's in-memory path at the smallest size")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    paras = paragraphs()
    tokenizer_dir = train_tokenizer(work, paras)
    cores = len(os.sched_getaffinity(0))
    enc = None
    if args.encode_mb > 0:
        enc = encode_speed(make_corpus(work / f"corpus_{args.sizes[0]}mb", args.sizes[0], paras), tokenizer_dir,
                           args.encode_mb, args.repeats)
        print("ENCODE " + json.dumps(enc), flush=True)
    rows = []
    for mb in args.sizes:
        row = {}
        if args.replicate and mb != args.sizes[0]:
            small = work / f"tokens_{args.sizes[0]}mb"
            tokens = replicate(small, work / f"tokens_{mb}mb_replicated", round(mb / args.sizes[0]))
            text_mb = json.loads((tokens / "metadata.json").read_text())["splits"]["train"]["bytes"] / 1e6
            corpus = None
        else:
            corpus = make_corpus(work / f"corpus_{mb}mb", mb, paras)
            text_mb = float(corpus.with_suffix(".done").read_text()) / 1e6
            tokens = work / f"tokens_{mb}mb"
            if not (args.reuse_tokens and (tokens / "metadata.json").is_file()):
                t = run_measured([sys.executable, "recipes/03_pretrain/tokenize_corpus.py", "--config",
                                  "recipes/03_pretrain/config_tokenize_tiny.yaml", "--sources", str(corpus),
                                  "--tokenizer_dir", str(tokenizer_dir), "--output_dir", str(tokens), "--overwrite",
                                  "true"])
                row = {"tokenize_s": round(t["seconds"], 1), "tokenize_cpu_s": round(t["cpu_seconds"], 1),
                       "tokenize_MB_per_cpu_s": round(text_mb / t["cpu_seconds"], 2),
                       "tokenize_peak_rss_mb": round(t["peak_rss_mb"])}
        p = run_measured([sys.executable, "recipes/03_pretrain/run.py", *PRETRAIN, "--sources", str(tokens),
                          "--tokenizer_dir", str(tokenizer_dir), "--output_dir", str(work / "pt")], "'loss'")
        meta = json.loads((tokens / "metadata.json").read_text())
        row = {"MB": round(text_mb), "train_tokens": meta["splits"]["train"]["tokens"], **row,
               "startup_s": round(p["first"], 1), "startup_cpu_s": round(p["first_cpu"], 1),
               "pretrain_peak_rss_mb": round(p["peak_rss_mb"]), "replicated": corpus is None}
        if mb == args.sizes[0] and args.baseline:
            b = run_measured([sys.executable, "recipes/03_pretrain/run.py", *PRETRAIN, "--sources", str(corpus),
                              "--tokenizer_dir", str(tokenizer_dir), "--output_dir", str(work / "pt_mem")], "'loss'")
            row |= {"in_memory_startup_s": round(b["first"], 1), "in_memory_startup_cpu_s": round(b["first_cpu"], 1),
                    "in_memory_peak_rss_mb": round(b["peak_rss_mb"])}
        rows.append(row)
        print("SCALE " + json.dumps(row), flush=True)
    small = args.sizes[0]
    tps = throughput(work / f"tokens_{small}mb", work / f"corpus_{small}mb", tokenizer_dir, args.steps, args.repeats)
    print("THROUGHPUT " + json.dumps(tps), flush=True)
    first, last = rows[0], rows[-1]
    print(f"\n{'MB':>6}{'tokens':>14}{'tokenize s':>12}{'CPU s':>8}{'MB/CPU-s':>10}{'tok RSS MB':>12}"
          f"{'start-up s':>12}{'CPU s':>8}{'train RSS MB':>14}")
    for r in rows:
        print(f"{r['MB']:>6}{r['train_tokens']:>14,}{r.get('tokenize_s', '-'):>12}{r.get('tokenize_cpu_s', '-'):>8}"
              f"{r.get('tokenize_MB_per_cpu_s', '-'):>10}{r.get('tokenize_peak_rss_mb', '-'):>12}{r['startup_s']:>12}"
              f"{r['startup_cpu_s']:>8}{r['pretrain_peak_rss_mb']:>14}" + ("  replicated" if r["replicated"] else ""))
    print(f"\nstart-up {last['MB']} MB / {first['MB']} MB: {last['startup_s'] / first['startup_s']:.2f}x wall, "
          f"{last['startup_cpu_s'] / first['startup_cpu_s']:.2f}x CPU (target <= 1.5x); "
          f"pretraining peak RSS: {last['pretrain_peak_rss_mb'] / first['pretrain_peak_rss_mb']:.2f}x (target <= 1.2x)")
    if "in_memory_startup_s" in first:
        print(f"in-memory path at {first['MB']} MB: start-up {first['in_memory_startup_s']} s "
              f"({first['in_memory_startup_cpu_s']} CPU s), peak RSS "
              f"{first['in_memory_peak_rss_mb']} MB (shards: {first['startup_s']} s, {first['pretrain_peak_rss_mb']} MB)")
    if enc:
        print(f"encode, CPU s per MB of text ({enc['MB']} MB, medians, identical ids): " + "; ".join(
            f"{k} {v['cpu_s_per_MB']} ({1 / v['cpu_s_per_MB']:.2f} MB per CPU s)" for k, v in enc.items() if k != "MB"))
    print(f"tokens/s, nano model, 16x256: shards {tps['shards']:.0f} vs in-memory packed {tps['in-memory packed']:.0f} "
          f"({tps['shards'] / tps['in-memory packed']:.2f}x); per CPU second of the trainer: "
          f"{tps['shards per CPU-s']:.0f} vs {tps['in-memory packed per CPU-s']:.0f} "
          f"({tps['shards per CPU-s'] / tps['in-memory packed per CPU-s']:.2f}x); {cores} cores")


if __name__ == "__main__":
    main()
