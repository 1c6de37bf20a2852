"""Stage 01: collect, clean, filter, select by classifiers, deduplicate, decontaminate, augment and mix a
pretraining corpus.

    python recipes/01_data/run.py --config recipes/01_data/config_tiny.yaml [--key value ...]

Reads: text sources (`default[:name]`, local files/folders, save_to_disk folders, Hub dataset ids) with weights,
and the eval sets to decontaminate against.
Writes: <output_dir>/ as a `save_to_disk` DatasetDict (train, validation; columns text, source) that the
tokenizer and pretraining recipes read with `--sources <output_dir>`, plus stats.json (per source and step:
in = kept + dropped per reason), a dataset card README.md with every source's licence, config.yaml and
run_info.json. Written in <output_dir>.tmp and renamed when complete.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import datasets
import numpy as np

from fromscratch import artifacts, cards, hub, runinfo
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.data import augment, classifiers, clean, dedup, mix, shards
from fromscratch.data.augment import AugmentArguments
from fromscratch.data.classifiers import ClassifierArguments
from fromscratch.data.clean import CleanArguments
from fromscratch.data.decontaminate import DecontaminationArguments, Decontaminator, eval_files
from fromscratch.data.dedup import DedupArguments
from fromscratch.data.filters import FilterArguments, QualityFilter
from fromscratch.data.stats import StepStats
from fromscratch.sources import check_sources, is_local, load_corpus

# What the embedded corpora are under; any other source needs its licence in `licenses`.
EMBEDDED_LICENSES = {
    "default:tinyshakespeare": "public domain text (karpathy/char-rnn repository: MIT)",
    "default:us_speeches": "public domain (US presidential addresses, via nltk_data)",
    "default": "public domain (tinyshakespeare, US presidential addresses)",
}


@dataclass
class DataArguments:
    sources: list[str] = field(default_factory=lambda: ["default:tinyshakespeare", "default:us_speeches"])
    weights: list[float] = checked(default_factory=list, ge=0)
    licenses: list[str] = field(default_factory=list)
    text_column: str = "text"
    validation_fraction: float = checked(0.02, gt=0, lt=0.5, why="the next stages evaluate on it")
    total_chars: int | None = checked(None, ge=1)
    seed: int = 0
    num_proc: int = checked(1, ge=1)
    batch_size: int = checked(1000, ge=1)
    num_shards: int = checked(1, ge=1)
    shard_index: int = checked(0, ge=0)
    from_shards: str | None = None
    output_dir: str = "outputs/01_data"
    overwrite: bool = False
    push_to_hub: bool = False
    hub_dataset_id: str | None = None
    hub_private_repo: bool = False


def _kept(ds: datasets.Dataset, reasons: list[str]) -> datasets.Dataset:
    return ds.select([i for i, r in enumerate(reasons) if not r])


@cli
def main():
    started = time.time()
    args, cargs, fargs, kargs, dargs, xargs, aargs = parse(
        (DataArguments, CleanArguments, FilterArguments, ClassifierArguments, DedupArguments,
         DecontaminationArguments, AugmentArguments))
    all_args = (args, cargs, fargs, kargs, dargs, xargs, aargs)

    # 1. Check everything that can be checked before any work.
    check_sources(args.sources)
    weights = args.weights or [1.0] * len(args.sources)
    if len(weights) != len(args.sources):
        raise UserError(f"weights: {len(weights)} values for {len(args.sources)} sources")
    if len(set(args.sources)) != len(args.sources):
        raise UserError("sources: a source is listed twice (give it a larger weight instead)")
    if args.licenses and len(args.licenses) != len(args.sources):
        raise UserError(f"licenses: {len(args.licenses)} values for {len(args.sources)} sources")
    licenses = {s: (args.licenses[i] if args.licenses else EMBEDDED_LICENSES.get(s, "unknown: check the source"))
                for i, s in enumerate(args.sources)}
    eval_files(xargs.decontaminate_against)  # a missing eval path fails here, not after the work
    quality_model = classifiers.check(kargs)  # a missing classifier folder, too
    augment.check(aargs)  # and an unreadable pairs file
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        raise UserError(f"shard_index must be in [0, num_shards), got {args.shard_index} of {args.num_shards}")
    if args.push_to_hub and not args.hub_dataset_id:
        raise UserError("push_to_hub needs hub_dataset_id")
    tmp = artifacts.prepare(args.output_dir, overwrite=args.overwrite)
    stats = StepStats()
    mapkw = dict(batched=True, batch_size=args.batch_size, num_proc=args.num_proc if args.num_proc > 1 else None)

    # 2-5a run here, or ran in the jobs of a scheduler array (num_shards > 1), whose outputs this run merges.
    if args.from_shards:
        ds, lineage, stats = shards.load(args.from_shards)
        unknown = set(ds.unique("source")) - set(args.sources)
        if unknown:
            raise UserError(f"from_shards: sources {sorted(unknown)} are not in 'sources' (use the shards' config)")
    else:
        # 2. Collect: every source into one table (text, source). Unreadable rows are counted, not fatal.
        ds, lineage = load_corpus(args.sources, args.text_column)
        if args.num_shards > 1:  # this job's share of the documents
            ds = ds.select(shards.select(len(ds), args.num_shards, args.shard_index))
        load_reasons, load_sources = [""] * len(ds), list(ds["source"])
        for item in lineage:
            print(f"[data] {item.summary()}")
            if item.repaired_encoding:
                print(f"[data] not UTF-8, read as cp1252: {', '.join(item.repaired_encoding[:5])}")
            for why, n in (item.skipped.items() if args.shard_index == 0 else ()):  # count once, not per shard
                load_reasons += [f"unreadable row: {why}"] * n
                load_sources += [item.spec] * n
        stats.record("load", load_sources, load_reasons,
                     extra={"lines_read_as_cp1252": sum(x.repaired_lines for x in lineage)})

        # 3. Clean: encoding, markup, unicode, emoji, control characters, boilerplate lines, PII, whitespace.
        def clean_fn(batch):
            texts, reasons, changed = clean.clean_batch(batch["text"], cargs)
            # "changed" as one string per document: a list column would be typed from the first batch only
            return {"text": texts, "drop": reasons, "changed": ["|".join(c) for c in changed]}

        ds = ds.map(clean_fn, desc="clean", **mapkw)
        changes = Counter(c for cs in ds["changed"] if cs for c in cs.split("|"))
        reasons = ds["drop"]
        stats.record("clean", ds["source"], reasons, changes=changes)
        ds = _kept(ds, reasons).remove_columns(["drop", "changed"])

        # 4. Quality filters (Gopher, C4, bad words): the first failing rule is the reason counted.
        quality = QualityFilter(fargs)
        ds = ds.map(lambda b: {"drop": quality.batch(b["text"])}, desc="filter", **mapkw)
        reasons = ds["drop"]
        stats.record("filter", ds["source"], reasons)
        ds = _kept(ds, reasons).remove_columns(["drop"])

        # 4b. Toxicity filter (alt-profanity-check): drop documents scoring >= toxicity_threshold.
        if classifiers.toxicity_on(kargs):
            ds = ds.map(lambda b: dict(zip(("drop", "score"), classifiers.toxicity_batch(
                b["text"], kargs.toxicity_threshold))), desc="toxicity", **mapkw)
            reasons = ds["drop"]
            stats.record("toxicity", ds["source"], reasons,
                         extra={"scores": classifiers.score_summary(ds["score"], reasons)})
            ds = _kept(ds, reasons).remove_columns(["drop", "score"])

        # 4c. Quality classifier: keep documents above a threshold, or sample by score (GPT-3's Pareto rule).
        if quality_model is not None:
            ds = ds.map(lambda b: dict(zip(("drop", "score"), classifiers.quality_batch(
                b["text"], quality_model, kargs, args.seed))), desc="quality classifier", **mapkw)
            reasons = ds["drop"]
            stats.record("quality_classifier", ds["source"], reasons, extra={
                "classifier": kargs.quality_classifier, "sampling": kargs.quality_sampling,
                "scores": classifiers.score_summary(ds["score"], reasons)})
            ds = _kept(ds, reasons).remove_columns(["drop", "score"])

        # 5a. Fingerprint every document (exact key + MinHash signature), in parallel like the steps above.
        hasher, both = dedup.MinHasher(dargs), dataclasses.replace(dargs, near_dedup=True)

        def fp_fn(batch):
            keys, sigs = dedup.fingerprints(batch["text"], both, hasher)
            return {"exact_key": keys.view(np.int64), "minhash": sigs}  # arrow: no unsigned 64-bit from Python

        ds = ds.map(fp_fn, desc="fingerprint", **mapkw)
        if args.num_shards > 1:  # a shard job stops here; the merge run does the rest
            shards.save(tmp, ds, stats, args.num_shards, args.shard_index)
            runinfo.write_run_info(tmp, stage="01_data shard", config=to_dict(*all_args),
                                   lineage=lineage, metrics={"documents": len(ds)}, started=started)
            print(f"[done] shard {args.shard_index} of {args.num_shards}: {len(ds)} documents in "
                  f"{artifacts.finish(tmp, args.output_dir)}")
            return

    # 5b. Deduplicate over the whole corpus at once (the first document of a cluster is kept: list the
    #     sources you trust most first).
    fp = ds.select_columns(["exact_key", "minhash"]).with_format("numpy")
    keys = np.asarray(fp["exact_key"], dtype=np.int64).reshape(len(ds), 2).view(np.uint64)
    sigs = np.asarray(fp["minhash"], dtype=np.uint32).reshape(len(ds), -1) if dargs.near_dedup else None
    reasons, info = dedup.duplicate_reasons(keys, sigs, dargs) if dargs.exact_dedup or dargs.near_dedup else (
        [""] * len(ds), {})
    stats.record("dedup", ds["source"], reasons, extra=info)
    ds = _kept(ds, reasons).remove_columns(["exact_key", "minhash"])

    # 6. Decontaminate: drop documents sharing an n-gram with an eval item; count hits per task.
    if xargs.decontaminate_against:
        decon = Decontaminator(xargs)
        ds = ds.map(lambda b: {"hits": ["|".join(h) for h in decon.hits(b["text"])]}, desc="decontaminate", **mapkw)
        hits = [h.split("|") if h else [] for h in ds["hits"]]
        reasons = [f"{xargs.ngram_size}-gram overlap with eval data" if h else "" for h in hits]
        per_task = Counter(t for h in hits for t in h)
        stats.record("decontaminate", ds["source"], reasons, extra={
            "documents_hit_per_task": {t: per_task.get(t, 0) for t in decon.tasks},
            "eval_items_per_task": decon.items, "eval_items_shorter_than_n": decon.too_short,
            "eval_rows_unreadable": dict(decon.skipped)})
        print(f"[decontaminate] {sum(1 for r in reasons if r)} documents hit: "
              f"{dict(per_task) or 'no eval task'}")
        ds = _kept(ds, reasons).remove_columns(["hits"])

    # 7. Hold out validation documents per source, before mixing, so a repeated document never lands in both.
    #    Counted as a step ("moved to validation"), so that what augmentation and mixing start from reconciles.
    val_idx, pool = mix.hold_out(ds["source"], args.sources, args.validation_fraction, args.seed)
    in_val = set(val_idx)
    stats.record("hold_out", ds["source"], ["moved to validation split" if i in in_val else ""
                                            for i in range(len(ds))])

    # 7b. Counterfactual augmentation of the train pool only (validation stays natural text, and no swapped
    #     copy of a validation document can reach train): add a gender-swapped copy, or swap in place.
    if aargs.counterfactual_augmentation != "none":
        pool_sources = [s for s, idx in pool.items() for _ in idx]
        ds, pool, added, info = augment.augment_pool(ds, pool, aargs, mapkw)
        stats.record("counterfactual", pool_sources, [""] * len(pool_sources), added=added, extra=info)
        print(f"[counterfactual] {info['documents_changed']} documents swapped ({info['swaps']} swaps), "
              f"{len(added)} copies added")
    stats.check()
    sources, texts = ds["source"], ds["text"]

    # 8. Mix: weights are shares of output characters; up-sample (repeat) or down-sample (subset) to match.
    plans = mix.plan({s: (len(idx), sum(len(texts[i]) for i in idx)) for s, idx in pool.items()},
                     dict(zip(args.sources, weights)), args.total_chars)
    train_idx: list[int] = []
    for k, p in enumerate(plans):
        picked = mix.sample([len(texts[i]) for i in pool[p.source]], p.epochs, args.seed + k)
        train_idx += [pool[p.source][j] for j in picked]
    random.Random(args.seed).shuffle(train_idx)  # interleave the sources
    out = datasets.DatasetDict({"train": ds.select(train_idx), "validation": ds.select(val_idx)})
    mixture = mix.report(plans, train_idx, sources, texts, licenses)
    for m in mixture:
        print(f"[mix] {m['source']}: target {m['target_share']:.3f}, actual {m['actual_share']['characters']:.3f}"
              f" of characters, {m['epochs']:.2f} epochs, {m['documents']} documents")

    # 9. Save the dataset, stats, card and run record; then publish atomically (and push if asked).
    out.save_to_disk(str(tmp))
    for e in stats.steps:  # means for the reader, from the sums that shards add up
        if "scores" in e:
            e["scores"]["mean"] = classifiers.mean_scores(e["scores"])
    summary = {"steps": stats.to_dict(), "mixture": mixture,
               "splits": {k: {"documents": len(v), "characters": sum(len(t) for t in v["text"])}
                          for k, v in out.items()},
               "validation_by_source": dict(Counter(out["validation"]["source"]))}
    (tmp / "stats.json").write_text(json.dumps(summary, indent=2))
    config = to_dict(*all_args)
    cards.render_dataset(
        tmp, "dataset.md.jinja", pretty_name=args.hub_dataset_id or "fromscratch pretraining corpus",
        licenses=list(licenses.values()), tags=["pretraining"], n_documents=len(out["train"]),
        source_datasets=[s.removeprefix("hub:").split(":")[0] for s in args.sources
                         if not s.startswith("default") and not is_local(s)],
        load_path=args.hub_dataset_id or args.output_dir, stats=summary, lineage=lineage, config=config,
        versions=runinfo.stack_versions(), ngram_size=xargs.ngram_size,
        eval_paths=xargs.decontaminate_against, dedup_args=dargs)
    metrics = {"train_documents": len(out["train"]), "validation_documents": len(out["validation"]),
               "train_characters": summary["splits"]["train"]["characters"]}
    runinfo.write_run_info(tmp, stage="01_data", config=config, lineage=lineage, metrics=metrics, started=started)
    final = artifacts.finish(tmp, args.output_dir)
    print(f"[done] {len(out['train'])} train + {len(out['validation'])} validation documents in {final} "
          f"({time.time() - started:.1f} s)")
    if args.push_to_hub:
        print(f"[hub] {hub.push_folder(final, args.hub_dataset_id, private=args.hub_private_repo, repo_type='dataset')}")


if __name__ == "__main__":
    main()
