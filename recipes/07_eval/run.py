"""Stage 07: evaluate causal LMs: benchmarks, perplexity, bias and toxicity, completions; results into cards.

    python recipes/07_eval/run.py --config recipes/07_eval/config_tiny.yaml [--models DIR_OR_HUB_ID ...]
    make eval MODEL="outputs/03_pretrain outputs/04_sft"

Reads: model folders (any causal LM transformers loads; a Hub id only from the local cache: the run is
offline) and the eval sets (subsets shipped in src/fromscratch/eval_tasks/data, or the full files under
data_dir). Benchmarks, perplexity and CrowS-Pairs run through lm-evaluation-harness as YAML tasks
(src/fromscratch/eval_tasks/); toxicity samples continuations of BOLD prompts and scores them offline.
Writes: <output_dir>/ with results.json (every figure, samples, completions), comparison.png, README.md
(tables + model-index), config.yaml, run_info.json; and merges every metric into each local model's own
README.md model-index. Written in <output_dir>.tmp and renamed when complete.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from fromscratch import artifacts, cards, runinfo
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.evaluation import bias, completions, readers, report, tasks, toxicity
from fromscratch.evaluation import ethos, probes, rtp, stereoset
from fromscratch.modeling import count_parameters
from fromscratch.steering import Steering


@dataclass
class EvalArguments:
    models: list[str] = field(default_factory=lambda: ["auto"], metadata={
        "help": "folders or cached Hub ids; several give a comparison plot"})
    output_dir: str = field(default="outputs/07_eval", metadata={
        "help": "results.json, comparison.png and README.md go here"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished output"})
    suite: str = field(default="tiny", metadata={
        "help": "tiny (subsets shipped with the project) or full (complete files under data_dir)"})
    data_dir: str | None = field(default=None, metadata={
        "help": "full suite: the folder holding eval-tasks/, crows-pairs/, wikitext-2/, bold/"})
    benchmarks: list[str] = field(default_factory=lambda: ["auto"], metadata={
        "help": "auto (the suite's benchmarks) or a list of fs_* task names"})
    num_fewshot: list[int] = checked(default_factory=lambda: [0], ge=0,
        help="few-shot settings, one pass each (0, 1, 5, 10, 25)")
    reasoning: list[str] = field(default_factory=lambda: list(tasks.REASONING))
    reasoning_max_new_tokens: int = checked(256, ge=1)
    limit: int | None = checked(None, ge=1, help="items per task (null: all)")
    perplexity: list[str] = field(default_factory=lambda: ["fs_wikitext", "fs_heldout"], metadata={
        "help": "fs_wikitext (WikiText-2), fs_heldout (the model's held-out pretraining text)"})
    heldout_text: str = field(default="auto", metadata={
        "help": "auto: the model's pretraining validation split; a .txt/.jsonl path; none"})
    heldout_max_bytes: int = checked(200000, ge=1, help="cap on held-out text")
    crows_pairs: bool = field(default=True, metadata={"help": "measure CrowS-Pairs bias"})
    toxicity_prompts_per_domain: int | None = field(default=None, metadata={
        "help": "a seeded sample of BOLD prompts per domain (null: all)"})
    toxicity_samples: int = field(default=5, metadata={
        "help": "continuations per prompt (k; RealToxicityPrompts uses 25)"})
    toxicity_max_new_tokens: int = field(default=20, metadata={
        "help": "continuation length (RealToxicityPrompts: 20 tokens)"})
    toxicity_threshold: float = checked(0.5, ge=0, le=1, help="classifier probability that counts as toxic")
    toxicity_steering: str = field(default="none", metadata={
        "help": "none | block | rerank | block+rerank: measure the model as is, or with output steering"})
    toxicity_block_words: str = field(default="default", metadata={
        "help": "words to block: default (the shipped LDNOOBW list), a file (one per line), none"})
    toxicity_block_penalty: float | None = field(default=None, metadata={
        "help": "null: never emit a blocked word; a number: subtract it from their logits instead"})
    toxicity_rerank_k: int = field(default=4, metadata={
        "help": "rerank: each scored sample is the least toxic of this many candidates"})
    completions: int = field(default=12, metadata={"help": "fixed prompts answered for the card (0: none)"})
    completion_max_new_tokens: int = field(default=64, metadata={"help": "answer length"})
    chat: str = field(default="auto", metadata={
        "help": "auto (chat template for instruction-tuned models), true, false"})
    batch_size: int = checked(16, ge=1, help="sequences per forward pass in lm-eval")
    bootstrap_iters: int = checked(0, ge=0, help="bootstrap iterations for stderrs (0: none)")
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu, cuda"})
    dtype: str = field(default="float32", metadata={
        "help": "weights dtype: float32, bfloat16 (halves memory on GPU), float16"})
    seed: int = field(default=0, metadata={"help": "seed of few-shot and toxicity sampling"})
    update_model_cards: bool = field(default=True, metadata={
        "help": "an Evaluation section in each evaluated model's README.md (complete sets also in its model-index)"})
    ethos_source: str | None = None
    ethos_num_fewshot: list[int] = field(default_factory=lambda: [0, 5])
    ethos_limit: int | None = None
    stereoset_source: str | None = None
    stereoset_configs: list[str] = field(default_factory=lambda: ["intrasentence", "intersentence"])
    stereoset_limit: int | None = None
    rtp_source: str | None = None
    rtp_challenging_prompts: int | None = None
    rtp_random_prompts: int | None = 1000
    rtp_samples: int = 25
    rtp_max_new_tokens: int = 20


def newest_model(root: Path = Path("outputs")) -> str:
    """The most recently finished causal-LM output of the demo stages (outputs/03_pretrain, 04_sft, ...)."""
    found = []
    for run_info in root.glob("*/run_info.json"):
        config = run_info.parent / "config.json"
        if config.is_file():
            archs = json.loads(config.read_text()).get("architectures") or []
            if any(a.endswith("ForCausalLM") for a in archs):
                found.append((run_info.stat().st_mtime, str(run_info.parent)))
    if not found:
        raise UserError(f"models: auto found no finished model under {root}/ (run `make pretrain`, or pass --models)")
    return max(found)[1]


def stage_of(model: str) -> str | None:
    path = Path(model) / "run_info.json"
    return json.loads(path.read_text()).get("stage") if path.is_file() else None


def pretraining_heldout(model: str, out: Path, max_bytes: int) -> Path | None:
    """The model's own pretraining validation documents: redone from its config.yaml (same sources, fraction
    and seed give the same split as recipes/03_pretrain), capped at max_bytes, written as JSONL."""
    config_path = Path(model) / "config.yaml"
    if stage_of(model) != "03_pretrain" or not config_path.is_file():  # later stages train on other data
        return None
    config = yaml.safe_load(config_path.read_text()) or {}
    if "sources" not in config or "validation_fraction" not in config:
        return None
    from fromscratch import token_shards
    from fromscratch.sources import load_corpus

    if all(token_shards.is_token_folder(s) for s in config["sources"]):  # make tokenize's validation split, decoded
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model)
        held = {"text": [t for s in config["sources"] for t in token_shards.validation_texts(s, tok, max_bytes)]}
    else:
        corpus, _ = load_corpus(config["sources"], config.get("text_column", "text"))
        held = corpus.train_test_split(test_size=config["validation_fraction"], seed=config.get("seed", 42))["test"]
    used = 0
    with open(out, "w", encoding="utf-8") as f:
        for text in held["text"]:
            if used >= max_bytes:
                break
            text = text.encode("utf-8")[: max_bytes - used].decode("utf-8", "ignore")
            used += len(text.encode("utf-8"))
            f.write(json.dumps({"text": text}) + "\n")
    return out


@cli
def main():
    started = time.time()
    (args,) = parse((EvalArguments,))

    # 1. Check every input before any work: suite, data, task names, models (each must load as a causal LM).
    if args.suite not in ("tiny", "full"):
        raise UserError(f"suite must be tiny or full, got {args.suite}")
    if args.suite == "full" and not (args.data_dir and (Path(args.data_dir) / "eval-tasks").is_dir()):
        raise UserError(f"data_dir: the full suite needs the folder holding eval-tasks/, got {args.data_dir}")
    benchmarks = args.benchmarks
    if benchmarks == ["auto"]:
        benchmarks = tasks.TINY_BENCHMARKS if args.suite == "tiny" else tasks.FULL_BENCHMARKS
    if args.suite == "tiny" and (missing := sorted(set(benchmarks) - set(tasks.TINY_BENCHMARKS))):
        raise UserError(f"benchmarks {', '.join(missing)} have no tiny subset: use --suite full")
    tasks.check_tasks(benchmarks + args.perplexity + args.reasoning)
    if any(n not in (0, 1, 5, 10, 25) for n in args.num_fewshot):
        raise UserError(f"num_fewshot: use 0, 1, 5 (or 10, 25), got {args.num_fewshot}")
    if args.heldout_text not in ("auto", "none") and not Path(args.heldout_text).is_file():
        raise UserError(f"heldout_text: no such file {args.heldout_text}")
    steering = Steering(args.toxicity_steering, args.toxicity_block_words, args.toxicity_block_penalty,
                        args.toxicity_rerank_k)
    models = [newest_model() if m == "auto" else m for m in args.models]
    for m in models:  # config only: fast, and a typo fails before minutes of work on the other models
        tasks.check_model(m)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    config = to_dict(args)
    tmp = artifacts.prepare(args.output_dir, overwrite=args.overwrite)
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    bold_rows, bold_skipped = readers.read_bold(
        Path(data_dir) / "bold" if args.suite == "full" else tasks.TASK_DIR / "data" / "bold.jsonl")
    if args.toxicity_prompts_per_domain is not None:  # a seeded sample per domain (the files list group by group)
        by_domain: dict[str, list] = {}
        for row in bold_rows:
            by_domain.setdefault(row["domain"], []).append(row)
        bold_rows = [r for rows in by_domain.values()
                     for r in random.Random(args.seed).sample(rows, min(len(rows), args.toxicity_prompts_per_domain))]
    prompts = completions.load_prompts(limit=args.completions) if args.completions else []
    # The probes' data, read now so that a wrong path or Hub id fails before any model work.
    probe_data, probe_skipped = {}, {}
    if any(n < 0 for n in args.ethos_num_fewshot) or args.rtp_samples < 1:
        raise UserError(f"ethos_num_fewshot must be >= 0 and rtp_samples >= 1, got {args.ethos_num_fewshot}, "
                        f"{args.rtp_samples}")
    if probes.on(args.ethos_source):
        probe_data["ethos"], probe_skipped["ethos"] = ethos.load(args.ethos_source)
    if probes.on(args.stereoset_source):
        probe_data["stereoset"], probe_skipped["stereoset"] = stereoset.load(args.stereoset_source,
                                                                             args.stereoset_configs)
    if probes.on(args.rtp_source):
        probe_data["rtp"], probe_skipped["rtp"] = rtp.load(
            args.rtp_source, sample_size=args.rtp_random_prompts, challenging_size=args.rtp_challenging_prompts,
            seed=args.seed)
    print(f"[eval] {len(models)} model(s), {args.suite} suite, {len(benchmarks)} benchmarks x {args.num_fewshot} "
          f"shots, {len(bold_rows)} toxicity prompts x {args.toxicity_samples} (steering: {steering.describe()}), "
          f"{len(prompts)} completions")

    summaries: dict[str, dict] = {}
    for index, spec in enumerate(models):
        t0 = time.time()
        name = Path(spec).name if Path(spec).exists() else spec
        name = name if name not in summaries else f"{name}-{index}"
        # 2. Load the model once and hand it to lm-eval's HF wrapper.
        model, tokenizer = tasks.load_model(spec, dtype=args.dtype, device=device)
        lm = tasks.harness(model, tokenizer, batch_size=args.batch_size)
        summary: dict = {"model": spec, "stage": stage_of(spec), "parameters": count_parameters(model),
                         "suite": args.suite, "benchmarks": {}}
        summary["timings"] = timings = {"load": round(time.time() - t0, 1)}

        # 3. Benchmarks through lm-eval, once per shots setting.
        for shots in args.num_fewshot:
            res = tasks.evaluate(lm, benchmarks, suite=args.suite, data_dir=data_dir, num_fewshot=shots,
                                 limit=args.limit, bootstrap_iters=args.bootstrap_iters, seed=args.seed)
            summary["benchmarks"][f"{shots}-shot"] = tasks.scores(res)
        timings["benchmarks"] = round(time.time() - t0 - sum(timings.values()), 1)

        # 3b. Reasoning: GSM8K with chain of thought, generated and scored by exact match on the final number; each
        #     task at its own shots (0 and 8), through the chat template for instruction-tuned models.
        if args.reasoning:
            new_tokens = min(args.reasoning_max_new_tokens, lm.max_length // 2)  # the rest of the context: the prompt
            if new_tokens < args.reasoning_max_new_tokens:
                print(f"[eval] {name}: reasoning answers capped at {new_tokens} tokens (context {lm.max_length})")
            res = tasks.evaluate(lm, args.reasoning, suite=args.suite, data_dir=data_dir, num_fewshot=None,
                                 limit=args.limit, bootstrap_iters=args.bootstrap_iters, seed=args.seed,
                                 gen_kwargs={"max_gen_toks": new_tokens},
                                 apply_chat_template=completions.is_chat_model(tokenizer, summary["stage"], args.chat))
            summary["reasoning"] = tasks.reasoning_scores(res)
            timings["reasoning"] = round(time.time() - t0 - sum(timings.values()), 1)

        # 4. Perplexity and bits per byte (loglikelihood_rolling): WikiText-2 and the model's held-out text.
        ppl_tasks = list(args.perplexity)
        heldout = None
        if "fs_heldout" in ppl_tasks:
            if args.heldout_text == "auto":
                heldout = pretraining_heldout(spec, tmp / f"heldout-{index}.jsonl", args.heldout_max_bytes)
            elif args.heldout_text != "none":
                heldout = Path(args.heldout_text)
            if heldout is None:
                print(f"[eval] {name}: no held-out text (not a stage-03 model, no heldout_text): skipping fs_heldout")
                ppl_tasks.remove("fs_heldout")
        res = tasks.evaluate(lm, ppl_tasks, suite=args.suite, data_dir=data_dir, limit=args.limit,
                             heldout_file=str(heldout.resolve()) if heldout else None,
                             bootstrap_iters=args.bootstrap_iters, seed=args.seed)
        summary["perplexity"] = tasks.scores(res)
        timings["perplexity"] = round(time.time() - t0 - sum(timings.values()), 1)

        # 5. Bias: CrowS-Pairs through lm-eval, split by bias type from its samples.
        if args.crows_pairs:
            res = tasks.evaluate(lm, ["fs_crows_pairs"], suite=args.suite, data_dir=data_dir, limit=args.limit,
                                 bootstrap_iters=args.bootstrap_iters, seed=args.seed)
            samples = res["samples"]["fs_crows_pairs"]
            summary["crows_pairs"] = bias.summary(samples) | {"most_stereotyped": bias.most_stereotyped(samples)}
            timings["crows_pairs"] = round(time.time() - t0 - sum(timings.values()), 1)

        # 6. Toxicity: k sampled continuations per BOLD prompt, scored offline; RealToxicityPrompts metrics.
        #    Steered (word blocking, best-of-k reranking) when toxicity_steering says so; the result records it.
        if bold_rows and args.toxicity_samples:
            tox = toxicity.evaluate(model, tokenizer, bold_rows, k=args.toxicity_samples, steering=steering,
                                    threshold=args.toxicity_threshold, max_new_tokens=args.toxicity_max_new_tokens,
                                    batch_size=max(1, args.batch_size // 2), seed=args.seed)  # x k sequences each
            summary["toxicity_samples"] = tox.pop("samples")
            summary["toxicity"] = tox
            timings["toxicity"] = round(time.time() - t0 - sum(timings.values()), 1)

        # 6b. Bias and toxicity probes named by a source: ETHOS (hate-speech detection, 0- and few-shot),
        #     StereoSet (SS, LMS, ICAT), RealToxicityPrompts (challenging subset and a random sample, steered as
        #     toxicity_steering says).
        if "ethos" in probe_data:
            summary["ethos"] = ethos.evaluate(lm, probe_data["ethos"], shots=args.ethos_num_fewshot,
                                              limit=args.ethos_limit, seed=args.seed)
            timings["ethos"] = round(time.time() - t0 - sum(timings.values()), 1)
        if "stereoset" in probe_data:
            summary["stereoset"] = stereoset.evaluate(lm, probe_data["stereoset"], limit=args.stereoset_limit,
                                                      seed=args.seed)
            timings["stereoset"] = round(time.time() - t0 - sum(timings.values()), 1)
        if "rtp" in probe_data:
            res = rtp.evaluate(model, tokenizer, probe_data["rtp"], k=args.rtp_samples, steering=steering,
                               threshold=args.toxicity_threshold, max_new_tokens=args.rtp_max_new_tokens,
                               batch_size=max(1, args.batch_size // 2), seed=args.seed)
            summary["rtp_samples"] = res.pop("samples")
            summary["rtp"] = res
            timings["rtp"] = round(time.time() - t0 - sum(timings.values()), 1)

        # 7. Completions for people to read (chat template for instruction-tuned models).
        chat = completions.is_chat_model(tokenizer, summary["stage"], args.chat)
        summary["completions"] = completions.answer(model, tokenizer, prompts, chat=chat,
                                                    max_new_tokens=args.completion_max_new_tokens)
        timings["completions"] = round(time.time() - t0 - sum(timings.values()), 1)
        summary["seconds"] = round(time.time() - t0, 1)
        summaries[name] = summary
        print(f"[eval] {name}: {json.dumps(headline(summary))} in {summary['seconds']} s {timings}")
        del lm, model

    # 8. Results JSON, comparison plot, the eval card; then each local model's card gets every metric.
    (tmp / "results.json").write_text(json.dumps(tasks.jsonable(
        {"config": config, "models": summaries, "skipped_rows": {p: r for p, r in readers.SKIPPED.items() if r}}),
        indent=1))
    plot = report.plot({n: s for n, s in summaries.items()}, tmp / "comparison.png")
    only = next(iter(summaries.values())) if len(summaries) == 1 else None
    cards.render(
        tmp, "eval.md.jinja", model_name=f"evaluation of {', '.join(summaries)}", license="apache-2.0",
        results=report.card_results(only, args.suite, args.limit) if only else None, tags=["evaluation"],
        library_name=None, pipeline_tag=None,  # a report: no weights in this folder
        base_model=only["model"] if only and not Path(only["model"]).exists() else None,
        summaries=summaries, headlines=(heads := {n: headline(s) for n, s in summaries.items()}),
        headline_keys=list(dict.fromkeys(k for h in heads.values() for k in h)), suite=args.suite,
        pretty=tasks.PRETTY, plot=plot.name if plot else None, config=config, versions=runinfo.stack_versions(),
    )
    skipped = {path: rows for path, rows in readers.SKIPPED.items() if rows}
    if bold_skipped:
        skipped["bold"] = bold_skipped
    skipped |= {probe: rows for probe, rows in probe_skipped.items() if rows}
    for path, rows in skipped.items():
        print(f"[data] {path}: {len(rows)} malformed rows skipped (first: {rows[0]})")
    lineage = [{"spec": s["model"], "role": "model"} for s in summaries.values()]
    lineage += [{"spec": str(tasks.TASK_DIR / "data") if args.suite == "tiny" else data_dir, "role": "eval data",
                 "skipped": skipped}]
    lineage += [{"spec": getattr(args, f"{probe}_source"), "role": f"{probe} probe"} for probe in probe_data]
    runinfo.write_run_info(tmp, stage="07_eval", config=config, lineage=lineage, started=started,
                           metrics={n: headline(s) for n, s in summaries.items()})
    out = artifacts.finish(tmp, args.output_dir)
    if args.update_model_cards:
        for name, s in summaries.items():
            if Path(s["model"]).is_dir():
                path = report.update_model_card(s["model"], report.card_results(s, args.suite, args.limit),
                                                model_name=name, section=report.card_section(s, args.suite, args.limit))
                print(f"[card] {path}: Evaluation section and model-index updated")
    print(f"[done] results in {out} ({time.time() - started:.0f} s)")


def headline(s: dict) -> dict:
    """One line per model for logs and run_info: first shots setting's accuracies, bits/byte, bias, toxicity."""
    out = {}
    bench = s.get("benchmarks", {})
    for task, row in (bench[next(iter(bench))] if bench else {}).items():
        out[task.removeprefix("fs_")] = round(row.get("acc", float("nan")), 4)
    for task, row in s.get("reasoning", {}).items():
        out[f"gsm8k_cot_{row['shots']}shot_exact_match"] = round(row["exact_match"], 4)
    for task, row in s.get("perplexity", {}).items():
        out[f"{task.removeprefix('fs_')}_bits_per_byte"] = round(row.get("bits_per_byte", float("nan")), 4)
    if "crows_pairs" in s:
        out["crows_pairs_pct_stereotype"] = round(s["crows_pairs"]["overall"]["pct_stereotype"], 4)
    if "toxicity" in s:
        out["expected_max_toxicity"] = round(s["toxicity"]["overall"]["expected_max_toxicity"], 4)
        out["toxicity_probability"] = round(s["toxicity"]["overall"]["toxicity_probability"], 4)
    return out | probes.headline(s)


if __name__ == "__main__":
    main()
