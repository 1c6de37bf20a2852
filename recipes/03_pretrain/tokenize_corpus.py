"""Stage 03, first half: tokenize the corpus once into memory-mapped token shards (`make tokenize`).

    python recipes/03_pretrain/tokenize_corpus.py --config recipes/03_pretrain/config_tokenize_tiny.yaml [--key value ...]

Reads: the data stage's output (train/ and validation/ of parquet, or a save_to_disk DatasetDict), or any source
`fromscratch.sources` names (small ones are read into memory), and the tokenizer of stage 02.
Writes: <output_dir>/ with train/ and validation/ token shards (datatrove's .ds layout), metadata.json (tokenizer
sha256, dtype, token/byte/document counts, each shard's sha256), a dataset card, config.yaml, run_info.json.
Tasks run on datatrove's local, Slurm or Ray executor; `--resume true` redoes only the unfinished tasks.

Named tokenize_corpus.py, not tokenize.py: a script named like the stdlib module shadows it (its folder comes
first on sys.path). Why here and not a numbered stage: its output is read by pretraining alone, and its one real parameter (the
tokenizer) is stage 02's output; the numbering of the stages stays as the design card fixes it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from fromscratch import artifacts, cards, executors, runinfo
from fromscratch.config import UserError, cli, parse, to_dict
from fromscratch.executors import ExecutorArguments
from fromscratch.pretraining.token_writer import TokenizeShards, list_units, merge
from fromscratch.sources import _hash_files, check_sources


@dataclass
class TokenizeArguments:
    sources: list[str] = field(default_factory=lambda: ["outputs/01_data"])
    text_column: str = "text"
    tokenizer_dir: str = "outputs/02_tokenizer"
    validation_fraction: float = 0.05
    output_dir: str = "outputs/03_tokens"
    overwrite: bool = False
    resume: bool = False


@cli
def main():
    started = time.time()
    args, exec_args = parse((TokenizeArguments, ExecutorArguments))

    # 1. Check inputs, executor and output location before any work.
    check_sources(args.sources)
    if not (Path(args.tokenizer_dir) / "tokenizer.json").is_file():
        raise UserError(f"tokenizer_dir: no tokenizer in {args.tokenizer_dir} (run `make tokenizer` first)")
    if not 0.0 < args.validation_fraction < 1.0:
        raise UserError(f"validation_fraction must be in (0, 1), got {args.validation_fraction}")
    executors.check(exec_args)
    tmp = artifacts.prepare(args.output_dir, args.overwrite, args.resume)

    # 2. Plan: units of work (parquet row groups, blocks of rows), dealt to tasks in contiguous runs.
    units, memory, lineage = list_units(args.sources, args.text_column)
    workers = exec_args.workers or executors.default_workers()
    tasks = exec_args.tasks or min(len(units), 4 * workers)
    plan = {"units": len(units), "tasks": tasks, "sources": args.sources, "tokenizer_dir": args.tokenizer_dir,
            "validation_fraction": args.validation_fraction, "text_column": args.text_column}
    plan_file = tmp / "plan.json"
    if plan_file.is_file() and json.loads(plan_file.read_text()) != plan:  # finished tasks would not fit
        raise UserError(f"--resume: {tmp} was started with another plan ({plan_file}): resume with the same "
                        "sources, tokenizer, tasks and validation_fraction, or pass --overwrite true")
    plan_file.write_text(json.dumps(plan, indent=2))
    print(f"[plan] {len(units)} units over {tasks} tasks, {min(workers, tasks)} at once ({exec_args.executor})")

    # 3. Tokenize in parallel; completion markers under logs/ let a rerun skip finished tasks.
    step = TokenizeShards(units, memory, str(tmp), args.tokenizer_dir, args.text_column, args.validation_fraction)
    executors.build([step], exec_args, str(tmp / "logs"), name="tokenize", tasks=tasks).run()
    if exec_args.executor == "slurm":
        print(f"[slurm] {tasks} tasks submitted; when they have finished, rerun this command with --resume true "
              "to write the metadata and card")
        if not all((tmp / "tasks" / f"{r:05d}.json").is_file() for r in range(tasks)):
            return

    # 4. Metadata, card, run record; publish atomically.
    meta = merge(tmp, tasks, args.tokenizer_dir)
    for spec in args.sources:  # a source whose every row was unreadable is an error, not an empty share
        if not meta.get("documents_by_source", {}).get(spec):
            raise UserError(f"data source '{spec}' has no usable documents ({meta['skipped'].get(spec, 0)} rows "
                            "skipped: see the [tokenize] lines above)")
    files = {}
    for u in units:
        if u.kind != "memory":
            files.setdefault(u.source, set()).update(Path(u.path).iterdir() if u.kind == "disk" else [Path(u.path)])
    lineage = [{"spec": x.spec, "resolved": x.resolved, "sha256": x.sha256} for x in lineage] + [
        {"spec": s, "resolved": str(Path(s).resolve()), "sha256": _hash_files(sorted(fs))} for s, fs in files.items()]
    lineage.append({"spec": args.tokenizer_dir, "role": "tokenizer", "resolved": str(Path(args.tokenizer_dir).resolve()),
                    "sha256": meta["tokenizer_sha256"]})
    seconds = time.time() - started
    train, val = meta["splits"]["train"], meta["splits"]["validation"]
    metrics = {"train_tokens": train["tokens"], "train_documents": train["documents"], "train_bytes": train["bytes"],
               "validation_tokens": val["tokens"], "validation_documents": val["documents"],
               "bytes_per_token": round((train["bytes"] + val["bytes"]) / max(1, train["tokens"] + val["tokens"]), 4),
               "skipped": meta["skipped"], "tasks": tasks, "seconds": round(seconds, 2),
               "mb_per_second": round((train["bytes"] + val["bytes"]) / 1e6 / seconds, 3)}
    config = to_dict(args, exec_args)
    cards.render_dataset(tmp, "tokens.md.jinja", pretty_name="fromscratch token shards", licenses=["other"],
                         n_documents=train["documents"], tags=["pretraining", "tokenized"], meta=meta,
                         load_path=args.output_dir, lineage=lineage, config=config, seconds=seconds, tasks=tasks,
                         versions=runinfo.stack_versions())
    runinfo.write_run_info(tmp, stage="03_tokenize", config=config, lineage=lineage, metrics=metrics, started=started)
    out = artifacts.finish(tmp, args.output_dir)
    print(f"[done] {train['tokens']:,} train + {val['tokens']:,} validation tokens ({train['documents']:,} + "
          f"{val['documents']:,} documents, {meta['dtype']}) in {out}, {seconds:.1f} s, {metrics['mb_per_second']} MB/s")


if __name__ == "__main__":
    main()
