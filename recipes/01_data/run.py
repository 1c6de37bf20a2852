"""Stage 01: sources -> clean -> filter -> deduplicate -> decontaminate -> mix -> write a pretraining corpus.

    python recipes/01_data/run.py --config recipes/01_data/config_tiny.yaml [--key value ...]

Reads: text sources (`default[:name]`, local files/folders, save_to_disk folders, Hub dataset ids streamed) with
weights, and the eval sets to decontaminate against.
Writes: <output_dir>/train/*.parquet and <output_dir>/validation/*.parquet (columns text, source: what
`datasets.load_dataset("parquet", data_dir=<output_dir>)` and `--sources <output_dir>` read, and what
`push_to_hub` publishes), stats.json (per source and step: in = kept + dropped per reason), a dataset card
README.md with every source's licence, config.yaml and run_info.json. Written in <output_dir>.tmp and renamed
when complete; the tasks' logs and completion markers stay in <output_dir>.logs.

The work is a chain of datatrove pipelines run by one executor (`executor: local | slurm | ray`): each stage
is split into tasks over shares of the source files, and a task that finished is not redone after a kill
(`--resume true`). Nothing whose size follows the corpus is held in one process.
"""

from __future__ import annotations

import shutil
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

from fromscratch import artifacts, executors, hub
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.data import augment, classifiers, mix, reading
from fromscratch.data.augment import AugmentArguments
from fromscratch.data.classifiers import ClassifierArguments
from fromscratch.data.clean import CleanArguments
from fromscratch.data.decontaminate import DecontaminationArguments, eval_files
from fromscratch.data.dedup import DedupArguments
from fromscratch.data.filters import FilterArguments
from fromscratch.data.finish import DedupAndDecontaminate, HoldOutAndAugment, HoldOutThresholds, Mix, mixture_plan
from fromscratch.data.publish import Publish, merged_stats
from fromscratch.data.sharded_dedup import Buckets, Clusters, bucket_tasks
from fromscratch.data.steps import (Clean, FingerprintAndWrite, Ledger, QualityClassifier, ReadSources, RuleFilter,
                                    Toxicity)
from fromscratch.executors import ExecutorArguments
from fromscratch.sources import check_sources, is_local

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
    text_unit: list[str] = checked(default_factory=list, choices=("file", "paragraph", "line"))
    unit_mb: float = checked(16.0, gt=0, why="larger files are cut at document edges into units of this size")
    validation_fraction: float = checked(0.02, gt=0, lt=0.5, why="the next stages evaluate on it")
    total_chars: int | None = checked(None, ge=1)
    seed: int = 0
    batch_size: int = checked(1000, ge=1)
    output_dir: str = "outputs/01_data"
    overwrite: bool = False
    resume: bool = False
    push_to_hub: bool = False
    hub_dataset_id: str | None = None
    hub_private_repo: bool = False


@dataclass
class Settings:
    """Every setting of the stage, one dataclass per concern (each is a block of the YAML)."""

    data: DataArguments
    cleaning: CleanArguments
    rules: FilterArguments
    classifiers: ClassifierArguments
    dedup: DedupArguments
    decontamination: DecontaminationArguments
    augmentation: AugmentArguments
    executor: ExecutorArguments

    @classmethod
    def parse(cls) -> "Settings":
        return cls(*parse(tuple(typing.get_type_hints(cls).values())))

    def as_config(self) -> dict:
        return to_dict(*self.__dict__.values())


def check(s: Settings) -> dict[str, str]:
    """Everything that can be checked before any work; returns each source's licence."""
    d = s.data
    check_sources(d.sources)
    if len(set(d.sources)) != len(d.sources):
        raise UserError("sources: a source is listed twice (give it a larger weight instead)")
    d.weights = d.weights or [1.0] * len(d.sources)
    for key in ("weights", "licenses"):
        if getattr(d, key) and len(getattr(d, key)) != len(d.sources):
            raise UserError(f"{key}: {len(getattr(d, key))} values for {len(d.sources)} sources")
    mix.check_weights(d.weights)  # here, not only when mixing: that comes after the whole corpus is processed
    if not 0.0 <= d.validation_fraction < 0.5:
        raise UserError(f"validation_fraction must be in [0, 0.5), got {d.validation_fraction}")
    if not 0.0 < s.dedup.near_threshold <= 1.0 or s.dedup.shingle_size < 1:
        raise UserError("near_threshold must be in (0, 1] and shingle_size >= 1")
    eval_files(s.decontamination.decontaminate_against)  # a missing eval path fails here, not after the work
    classifiers.check(s.classifiers)  # a missing classifier folder, too
    augment.check(s.augmentation)  # and an unreadable pairs file
    executors.check(s.executor)
    if d.push_to_hub and not d.hub_dataset_id:
        raise UserError("push_to_hub needs hub_dataset_id")
    return {src: (d.licenses[i] if d.licenses else EMBEDDED_LICENSES.get(src, "unknown: check the source"))
            for i, src in enumerate(d.sources)}


@cli
def main():
    started = time.time()
    s = Settings.parse()
    d = s.data
    licenses = check(s)
    # units of at most unit_mb (files cut at document edges, row groups, blocks, Hub shards): the tasks' shares
    units = reading.list_units(d.sources, d.text_column, d.text_unit, int(d.unit_mb * 2**20))
    tmp = artifacts.prepare(d.output_dir, overwrite=d.overwrite, resume=d.resume)
    logs = Path(d.output_dir).with_name(Path(d.output_dir).name + ".logs")
    if not d.resume and logs.exists():
        shutil.rmtree(logs)  # completion markers of an older run must not skip this one's tasks
    unit_bytes = int(d.unit_mb * 2**20)
    work, tasks = str(tmp / "_work"), s.executor.tasks or executors.tasks_for(
        [reading.size_of(u, unit_bytes) for u in units], unit_bytes, s.executor.workers or executors.default_workers())
    ranges = max(1, tasks // 4)  # hash ranges per LSH band: a bucket task holds 1/ranges of a band
    ledger = Ledger(["load", "clean", "filter"] + (["toxicity"] if classifiers.toxicity_on(s.classifiers) else [])
                    + (["quality_classifier"] if s.classifiers.quality_classifier else []))
    bs = d.batch_size

    # 1. Sources: every unit of every source, read by the task it was dealt to (Hub datasets streamed).
    reader = ReadSources(d.sources, units, d.text_column, ledger)
    # 2. Clean: encoding, markup, unicode, emoji, control characters, boilerplate lines, PII, whitespace.
    cleaning = [Clean(ledger, bs, s.cleaning)]
    # 3. Filter: Gopher/C4 rules and bad words, then the classifiers (toxicity, quality) where switched on.
    filtering = [RuleFilter(ledger, bs, s.rules)]
    if classifiers.toxicity_on(s.classifiers):
        filtering.append(Toxicity(ledger, bs, s.classifiers.toxicity_threshold))
    if s.classifiers.quality_classifier:
        filtering.append(QualityClassifier(ledger, bs, s.classifiers, d.seed))
    # 4. Deduplicate: exact keys and MinHash signatures per task (which also looks up each document's n-grams
    #    in the eval sets: its words are hashed once) -> buckets per band and hash range -> clusters (one task,
    #    duplicate pairs only) -> the filter in step 5 (the smallest id of a cluster is kept).
    fingerprint = FingerprintAndWrite(work, ledger, reader, s.dedup, s.decontamination, bs)
    buckets = [Buckets(work, tasks, s.dedup, ranges)]
    clusters = [Clusters(work, s.dedup, ranges)]
    # 5. Decontaminate: drop the survivors sharing an n-gram with an eval item (n per eval set, GPT-3's rule).
    decontaminate = [DedupAndDecontaminate(work, d.sources, s.decontamination, d.seed, bs)]
    # 6. Mix: hold out validation per source (exact counts), augment the train pool if asked, then sample each
    #    source to its share of characters (counted epochs).
    hold_out = [HoldOutThresholds(work, len(d.sources), tasks, d.validation_fraction)]
    augmentation = [HoldOutAndAugment(work, str(tmp), d.sources, s.augmentation, bs)]
    mixing = [Mix(work, str(tmp), d.sources, d.weights, d.total_chars, d.seed, bs)]
    # 7. Write: stats.json merged from the tasks, the dataset card, the run record; publish atomically.
    publish = [Publish(str(tmp), d.output_dir, {
        "sources": d.sources, "weights": d.weights, "total_chars": d.total_chars, "licenses": licenses,
        "xargs": s.decontamination, "kargs": s.classifiers, "aargs": s.augmentation, "dargs": s.dedup,
        "config": s.as_config(), "started": started, "output_dir": d.output_dir,
        "hub_dataset_id": d.hub_dataset_id, "source_datasets": [
            x.removeprefix("hub:").split(":")[0] for x in d.sources
            if not x.startswith("default") and not is_local(x)]})]

    stages = [("process", [reader, *cleaning, *filtering, fingerprint], tasks),
              ("buckets", buckets, bucket_tasks(s.dedup, ranges)), ("clusters", clusters, 1),
              ("decontaminate", decontaminate, tasks), ("hold_out", hold_out, 1),
              ("augment", augmentation, tasks), ("mix", mixing, tasks), ("publish", publish, 1)]
    print(f"[data] {len(units)} units of {len(d.sources)} sources in {tasks} tasks on executor {s.executor.executor}")
    # A step that emptied the whole corpus stops the run here in one line, not in a later stage's task; its
    # settings must change, so nothing is kept to resume.
    def stop_if(check):
        try:
            check()
        except UserError:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(logs, ignore_errors=True)
            raise

    executors.run_chain(stages, s.executor, str(logs), checks={
        "process": lambda: stop_if(merged_stats(Path(work), "process").check_not_emptied),
        "decontaminate": lambda: stop_if(merged_stats(Path(work), "finish").check_not_emptied),
        "augment": lambda: stop_if(lambda: mixture_plan(Path(work), d.sources, d.weights, d.total_chars))})
    if s.executor.executor == "slurm":
        print(f"[slurm] submitted; the output appears in {d.output_dir} when the last job ends (logs: {logs})")
        return
    final = Path(d.output_dir)
    print(f"[done] {final} ({time.time() - started:.1f} s)")
    if d.push_to_hub:
        print(f"[hub] {hub.push_folder(final, d.hub_dataset_id, private=d.hub_private_repo, repo_type='dataset')}")


if __name__ == "__main__":
    main()
