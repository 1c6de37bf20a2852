"""The last task of the data stage: merge the tasks' counts into stats.json, write the dataset card and run
record, drop the intermediate files and publish the folder atomically (artifacts.finish).

A task, not the launching process, so a Slurm run (whose launcher exits after submitting) finishes the same way.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from .. import artifacts, cards, runinfo
from . import classifiers, mix, reading
from .decontaminate import Decontaminator
from .stats import StepStats


def merged_stats(work: Path, stage: str) -> StepStats:
    """The books of one stage's tasks, summed."""
    runs = [json.loads(f.read_text())["steps"] for f in sorted((work / "stats" / stage).glob("*.json"))]
    return StepStats.merge(runs)


def _merged(work: Path, stage: str) -> list[dict]:
    return merged_stats(work, stage).steps


def merge_stats(work: Path, specs: list[str], weights: list[float], total_chars, licenses: dict, settings) -> dict:
    steps = _merged(work, "process") + _merged(work, "finish") + _merged(work, "augment")
    by = {e["step"]: e for e in steps}
    by["dedup"].update(json.loads((work / "stats" / "clusters.json").read_text()))
    xargs = settings["xargs"]
    if "decontaminate" in by:  # constants of the eval sets: once, not summed over tasks
        decon = Decontaminator(xargs)
        hits = by["decontaminate"].get("documents_hit_per_task", {})
        by["decontaminate"].update({"documents_hit_per_task": {t: hits.get(t, 0) for t in decon.tasks},
                                    "eval_items_per_task": decon.items, "ngram_size_per_task": decon.n_per_task,
                                    "eval_items_shorter_than_n": decon.too_short,
                                    "eval_rows_unreadable": dict(decon.skipped)})
    if "quality_classifier" in by:
        kargs = settings["kargs"]
        by["quality_classifier"].update({"classifier": kargs.quality_classifier, "sampling": kargs.quality_sampling})
    if "counterfactual" in by:
        c = by["counterfactual"]
        c["mode"] = settings["aargs"].counterfactual_augmentation
        c["swaps_per_term"] = dict(Counter(c.get("swaps_per_term", {})).most_common(20))
    for e in steps:
        if "scores" in e:
            e["scores"]["mean"] = classifiers.mean_scores(e["scores"])
    merged = StepStats()
    merged.steps = steps
    merged.check()
    rows = {s: [0, 0, 0] for s in specs}
    for f in sorted((work / "stats" / "mix").glob("*.json")):
        for s, r in json.loads(f.read_text()).items():
            rows[s] = [a + b for a, b in zip(rows[s], r)]
    plans = __import__("fromscratch.data.finish", fromlist=["mixture_plan"]).mixture_plan(work, specs, weights,
                                                                                          total_chars)
    actual = mix.proportions({s: tuple(r) for s, r in rows.items()})
    mixture = [{"source": p.source, "license": licenses[p.source], "target_share": p.weight,
                "available_documents": p.available_docs, "available_characters": p.available_chars,
                "epochs": round(p.epochs, 4), "documents": rows[p.source][0], "characters": rows[p.source][1],
                "actual_share": actual[p.source]} for p in plans]
    return {"steps": steps, "mixture": mixture}


class Publish(PipelineStep):
    name, type = "publish", "💽 - WRITER"

    def __init__(self, tmp: str, output_dir: str, settings: dict):
        super().__init__()
        self.tmp, self.output_dir, self.s = tmp, output_dir, settings

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        s, tmp = self.s, Path(self.tmp)
        work = tmp / "_work"
        summary = merge_stats(work, s["sources"], s["weights"], s["total_chars"], s["licenses"], s)
        val: Counter = Counter()
        val_chars = 0
        for f in sorted((work / "stats" / "augment").glob("*.json")):
            for src, (n, c) in json.loads(f.read_text())["validation"].items():
                val[src] += n
                val_chars += c
        summary["splits"] = {"train": {"documents": sum(m["documents"] for m in summary["mixture"]),
                                       "characters": sum(m["characters"] for m in summary["mixture"])},
                             "validation": {"documents": sum(val.values()), "characters": val_chars}}
        summary["validation_by_source"] = dict(val)
        lineage = reading.merge_lineages(s["sources"], [p for f in sorted((work / "stats" / "process").glob("*.json"))
                                                        for p in json.loads(f.read_text())["lineage"]])
        report(summary, lineage)
        (tmp / "stats.json").write_text(json.dumps(summary, indent=2))
        n_train = summary["splits"]["train"]["documents"]
        cards.render_dataset(
            tmp, "dataset.md.jinja", pretty_name=s["hub_dataset_id"] or "fromscratch pretraining corpus",
            licenses=[s["licenses"][x] for x in s["sources"]], tags=["pretraining"], n_documents=n_train,
            source_datasets=s["source_datasets"], load_path=s["hub_dataset_id"] or s["output_dir"], stats=summary,
            lineage=lineage, config=s["config"], versions=runinfo.stack_versions(),
            ngram_size=s["xargs"].ngram_size, eval_paths=s["xargs"].decontaminate_against, dedup_args=s["dargs"])
        metrics = {"train_documents": n_train, "validation_documents": summary["splits"]["validation"]["documents"],
                   "train_characters": summary["splits"]["train"]["characters"]}
        shutil.rmtree(work)  # intermediate files and the task logs: the output holds only the dataset
        runinfo.write_run_info(tmp, stage="01_data", config=s["config"], lineage=lineage, metrics=metrics,
                               started=s["started"])
        artifacts.finish(tmp, self.output_dir)
        return iter(())


def report(summary: dict, lineage) -> None:
    """What the one-process stage printed: each source's lineage and the mixture."""
    for item in lineage:
        print(f"[data] {item.summary()}")
        if item.repaired_encoding:
            print(f"[data] not UTF-8, read as cp1252: {', '.join(item.repaired_encoding[:5])}")
    for m in summary["mixture"]:
        print(f"[mix] {m['source']}: target {m['target_share']:.3f}, actual {m['actual_share']['characters']:.3f}"
              f" of characters, {m['epochs']:.2f} epochs, {m['documents']} documents")
