"""Scale mode of `make bench-data`: the data recipe (datatrove pipeline) on generated corpora of ~2 KB real-text
documents at several sizes and in the two shapes users bring, many files of ~8 MB and one file holding it all,
with the wall time, CPU time and peak RSS of the whole process tree per stage, and near-duplicate recall on the
planted set of bench_data with 1 task and with several.

    make bench-data ARGS="--scale 50 200 800"      # sizes in MB; --shapes many one, --workers N, --skip_recall

Documents are random runs of real paragraphs (common.real_documents) joined up to ~2 KB, so they are unique
text with real word statistics; 2% are planted near copies (common.generate). The recipe chooses its tasks from
its units (files, or the one file cut at line edges into units of unit_mb), so both shapes get the same. The
process tree is sampled every 0.1 s with psutil; a stage's peak is the largest sum of RSS over the recipe
process and all its children while that stage's log folder was the newest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, build_corpus, generate, real_documents

def run_measured(args: list[str], logs: Path) -> dict:
    """Run the recipe; wall seconds and per-stage peak RSS (MB) of the process tree."""
    import psutil

    import resource

    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen([sys.executable, str(ROOT / "recipes/01_data/run.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "src")})
    root, peaks, walls, cpus, last_cpu, last_t = psutil.Process(proc.pid), {}, {}, {}, 0.0, time.perf_counter()
    while proc.poll() is None:
        try:
            tree = [root] + root.children(recursive=True)
            rss = sum(p.memory_info().rss for p in tree if p.is_running())
            # CPU of the tree: the live processes' own, plus what the launcher's reaped children used
            t = root.cpu_times()
            cpu = t.children_user + t.children_system + sum(sum(p.cpu_times()[:2]) for p in tree if p.is_running())
        except psutil.Error:
            continue
        stages = sorted(logs.glob("*"), key=lambda p: p.stat().st_mtime) if logs.exists() else []
        stage = stages[-1].name if stages else "start"
        now = time.perf_counter()
        peaks[stage] = max(peaks.get(stage, 0), rss / 1e6)
        walls[stage] = walls.get(stage, 0) + now - last_t
        cpus[stage] = cpus.get(stage, 0) + max(cpu - last_cpu, 0)
        last_cpu, last_t = max(cpu, last_cpu), now
        time.sleep(0.1)
    if proc.returncode:
        raise SystemExit(f"recipe failed ({proc.returncode}): {' '.join(args)}")
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # every finished descendant, waited for by its parent
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": cpu, "peak_mb": peaks, "stage_wall_s": walls,
            "stage_cpu_s": cpus}


def recipe_args(src: Path, out: Path, tasks: int | None, workers: int) -> list[str]:
    """tasks None: the recipe's own choice from the units (at most 4 per worker)."""
    return ["--config", "recipes/01_data/config_tiny.yaml", "--sources", str(src), "--weights", "1",
            "--licenses", "bench", "--decontaminate_against", "default", "--workers", str(workers),
            *(["--tasks", str(tasks)] if tasks else []), "--output_dir", str(out), "--overwrite", "true"]


def scale(sizes: list[float], workers: int, work: Path, shapes: tuple[str, ...] = ("many", "one")) -> None:
    """The recipe at each size, for each input shape: `many` files of ~8 MB, or `one` file holding it all (cut
    into units by the reader). Tasks are the recipe's own choice from its units, so both shapes get the same."""
    docs = [d for d in real_documents() if len(d) > 200]
    rows = []
    for shape in shapes:
        for mb in sizes:
            src, out = work / f"corpus_{shape}_{mb:g}MB", work / f"out_{shape}_{mb:g}MB"
            n, size = generate(src, mb, docs, one_file=shape == "one")
            files = len(list(src.glob("*.jsonl")))
            r = run_measured(recipe_args(src, out, None, workers), Path(str(out) + ".logs"))
            stats = json.loads((out / "stats.json").read_text())
            dedup = next(s for s in stats["steps"] if s["step"] == "dedup")
            info = json.loads((out / "run_info.json").read_text())
            tasks = len(list((Path(str(out) + ".logs") / "process" / "completions").glob("*")))
            rows.append((shape, mb, n, size, files, r, info))
            print(f"{shape} {mb:g} MB per stage: " + "; ".join(
                f"{k} {r['stage_wall_s'][k]:.0f} s wall, {r['stage_cpu_s'][k]:.0f} s CPU, {r['peak_mb'][k]:.0f} MB"
                for k in r["peak_mb"]), flush=True)
            print(f"{shape} {mb:g} MB: {n} documents in {files} files, {tasks} tasks; "
                  f"{r['wall_s']:.1f} s, {size / 1e6 / r['wall_s']:.2f} MB/s wall, {size / 1e6 / r['cpu_s']:.2f} MB per "
                  f"CPU second ({n / r['cpu_s']:,.0f} docs); peak RSS of the tree {max(r['peak_mb'].values()):.0f} MB; "
                  f"cluster step: {dedup.get('verified_pairs', 0)} pairs", flush=True)
            shutil.rmtree(src)  # the corpus is regenerated on the next run: keep the disk for the next size
    for shape in shapes:
        mine = [row for row in rows if row[0] == shape]
        base = mine[0]
        for row in mine[1:]:
            s0, r0, s1, r1 = base[3], base[5], row[3], row[5]
            print(f"{shape}: {row[1]:g} MB vs {base[1]:g} MB: size x{s1 / s0:.1f}, wall x{r1['wall_s'] / r0['wall_s']:.2f}, "
                  f"CPU x{r1['cpu_s'] / r0['cpu_s']:.2f}, peak RSS x{max(r1['peak_mb'].values()) / max(r0['peak_mb'].values()):.2f} "
                  f"({max(r0['peak_mb'].values()):.0f} -> {max(r1['peak_mb'].values()):.0f} MB)")
    if len(shapes) == 2:
        for mb in sizes:
            a, b = (next(row for row in rows if row[0] == sh and row[1] == mb) for sh in shapes)
            print(f"{mb:g} MB, one file vs many: wall x{b[5]['wall_s'] / a[5]['wall_s']:.2f}, peak RSS "
                  f"x{max(b[5]['peak_mb'].values()) / max(a[5]['peak_mb'].values()):.2f}")


def planted_recall(n_planted: int, task_counts: list[int], workers: int, work: Path) -> None:
    """bench_data's planted corpus through the recipe: recall and removals outside the planted pairs, per task
    count (the kept count must not depend on it)."""
    import pyarrow.parquet as pq

    import yaml

    from fromscratch.data.clean import CleanArguments, clean_batch
    from fromscratch.data.filters import FilterArguments, QualityFilter

    texts, pairs = build_corpus(n_planted)
    src = work / "planted"
    src.mkdir(parents=True, exist_ok=True)
    for k in range(8):  # eight files: up to eight tasks
        (src / f"part{k}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[k::8]))
    order = [i for k in range(8) for i in range(k, len(texts), 8)]
    (work / "no_evals").mkdir(exist_ok=True)  # decontamination on, against an item no document contains
    (work / "no_evals" / "none.jsonl").write_text(json.dumps({"context": "xq " * 20}) + "\n")
    cleaned = clean_batch(texts, CleanArguments())[0]
    overrides = {"min_words": 1, "min_stop_words": 0, "max_bad_words": -1, "min_terminal_punct_lines": 0}
    tiny = yaml.safe_load((ROOT / "recipes/01_data/config_tiny.yaml").read_text())
    fargs = FilterArguments(**{**{k: tiny[k] for k in FilterArguments.__dataclass_fields__ if k in tiny}, **overrides})
    passed = [bool(c) and not r for c, r in zip(cleaned, QualityFilter(fargs).batch(cleaned))]
    pairs = {c: o for c, o in pairs.items() if passed[c] and passed[o]}  # as bench_data: both survive the filters
    for tasks in task_counts:
        out = work / f"planted_out_{tasks}"
        r = run_measured(recipe_args(src, out, tasks, workers)[:-2] + [
            *(x for k, v in overrides.items() for x in (f"--{k}", str(v))), "--toxicity_threshold", "-1",
            "--decontaminate_against", str(work / "no_evals"),
            "--overwrite", "true"], Path(str(out) + ".logs"))
        # the recipe holds out a validation split (a fraction of 0 is refused): those documents are kept too
        kept = {t for split in ("train", "validation") for f in (out / split).glob("*.parquet")
                for t in pq.read_table(f)["text"].to_pylist()}
        stats = {s["step"]: s for s in json.loads((out / "stats.json").read_text())["steps"]}
        removed = {i for i in order if passed[i] and cleaned[i] not in kept}
        caught = sum(1 for c, o in pairs.items() if c in removed or o in removed)
        in_pairs = set(pairs) | set(pairs.values())
        print(f"planted set, {tasks} task(s): recall {caught / len(pairs):.3f} ({caught}/{len(pairs)}), dedup removed "
              f"{sum(stats['dedup']['dropped'].values())} ({stats['dedup']['dropped']}), removed outside planted "
              f"pairs {len(removed - in_pairs)}, kept {stats['dedup']['kept']}, {r['wall_s']:.1f} s, "
              f"{len(texts) / r['cpu_s']:,.0f} docs per CPU second")
