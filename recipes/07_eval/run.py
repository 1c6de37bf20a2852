"""Stage 07: evaluate causal LMs: benchmarks, perplexity, bias and toxicity, completions; results into cards.

    python recipes/07_eval/run.py --config recipes/07_eval/config_tiny.yaml [--models DIR_OR_HUB_ID ...]
    make eval MODEL="outputs/03_pretrain outputs/04_sft"

Reads: model folders (any causal LM transformers loads, or a Hub id) and the eval sets: the tiny suite's
subsets shipped in src/fromscratch/eval_tasks/data; the full suite's sets from their Hub ids (lm-eval's own),
or from data_dir where it holds local copies. Benchmarks, perplexity and CrowS-Pairs run through
lm-evaluation-harness as YAML tasks (src/fromscratch/eval_tasks/); toxicity samples continuations of BOLD
prompts and scores them offline.
Writes: <output_dir>/ with results.json (every figure, samples, completions), comparison.png, README.md
(tables + model-index), config.yaml, run_info.json; and merges every metric into each local model's own
README.md model-index. Written in <output_dir>.tmp and renamed when complete.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from fromscratch import artifacts, cards, heldout, runinfo
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.evaluation import bias, completions, ethos, probes, readers, report, rtp, stereoset, tasks, toxicity
from fromscratch.evaluation.completions import stage_of
from fromscratch.evaluation.probes import ProbeArguments
from fromscratch.modeling import count_parameters
from fromscratch.safety.steering import Steering


@dataclass
class EvalArguments:
    models: list[str] = field(default_factory=lambda: ["auto"], metadata={
        "help": "folders or cached Hub ids; several give a comparison plot"})
    output_dir: str = field(default="outputs/07_eval", metadata={
        "help": "results.json, comparison.png and README.md go here"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished output"})
    suite: str = field(default="tiny", metadata={
        "help": "tiny (subsets shipped with the project) or full (each complete set from its Hub id)"})
    data_dir: str | None = field(default=None, metadata={
        "help": "full suite, optional: local copies (eval-tasks/, crows-pairs/, wikitext-2/, bold/, or <org>/<name>/)"})
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
        "help": "auto: the documents stage 03 held out (its heldout.json); a .txt/.jsonl path; none"})
    heldout_max_bytes: int = checked(200000, ge=1, help="cap on held-out text")
    crows_pairs: bool = field(default=True, metadata={"help": "measure CrowS-Pairs bias"})
    toxicity_steering: str = checked("none", choices=("none", "block", "rerank", "block+rerank"),
                                     help="measure the model as is, or with output steering")
    toxicity_block_words: str = field(default="default", metadata={
        "help": "words to block: default (the shipped LDNOOBW list), a file (one per line), none"})
    toxicity_block_penalty: float | None = checked(None, ge=0, help="null: never emit a blocked word; a number: "
                                                   "subtract it from their logits instead")
    toxicity_rerank_k: int = checked(4, ge=1, help="rerank: each scored sample is the least toxic of this many "
                                     "candidates")
    completions: int = checked(12, ge=0, help="fixed prompts answered for the card (0: none)")
    completion_max_new_tokens: int = checked(64, ge=1, help="answer length")
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


def pretraining_heldout(model: str, out: Path, max_bytes: int) -> Path | None:
    """The model's own pretraining validation documents, as stage 03 recorded them (heldout.json: its sources'
    validation split, or the documents it split off), capped at max_bytes, written as JSONL."""
    record = heldout.read(model)
    if stage_of(model) != "03_pretrain" or record is None:  # later stages train on other data
        return None
    config_path = Path(model) / "config.yaml"
    config = (yaml.safe_load(config_path.read_text()) or {}) if config_path.is_file() else {}
    from transformers import AutoTokenizer

    from fromscratch.pretraining.packing import heldout_texts

    texts = heldout_texts(record, config.get("text_column", "text"), AutoTokenizer.from_pretrained(model), max_bytes)
    used = 0
    with open(out, "w", encoding="utf-8") as f:
        for text in texts:
            if used >= max_bytes:
                break
            text = text.encode("utf-8")[: max_bytes - used].decode("utf-8", "ignore")
            used += len(text.encode("utf-8"))
            f.write(json.dumps({"text": text}) + "\n")
    return out


@cli
def main():
    started = time.time()
    args, probe_args = parse((EvalArguments, ProbeArguments))

    # 1. Check every input before any work: suite, task names, models (each must load as a causal LM), and read
    #    the eval data (BOLD prompts, completion prompts, the probes' sets) so that a wrong path or Hub id fails first.
    benchmarks, steering, models = check_inputs(args)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    config = to_dict(args, probe_args)
    tmp = artifacts.prepare(args.output_dir, overwrite=args.overwrite)
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    bold_rows, bold_skipped = toxicity.bold_prompts(args.suite, data_dir, probe_args.toxicity_prompts_per_domain,
                                                    seed=args.seed) if probe_args.toxicity_samples else ([], [])
    prompts = completions.load_prompts(limit=args.completions) if args.completions else []
    probe_data, probe_skipped = probes.load_sources(probe_args, seed=args.seed)
    print(f"[eval] {len(models)} model(s), {args.suite} suite, {len(benchmarks)} benchmarks x {args.num_fewshot} "
          f"shots, {len(bold_rows)} toxicity prompts x {probe_args.toxicity_samples} (steering: "
          f"{steering.describe()}), {len(prompts)} completions")

    summaries: dict[str, dict] = {}
    for index, spec in enumerate(models):
        clock = Laps()
        name = Path(spec).name if Path(spec).exists() else spec
        name = name if name not in summaries else f"{name}-{index}"
        # 2. Load the model once and hand it to lm-eval's HF wrapper; every lm-eval pass below shares its settings.
        model, tokenizer = tasks.load_model(spec, dtype=args.dtype, device=device)
        lm = tasks.harness(model, tokenizer, batch_size=args.batch_size)
        run = functools.partial(tasks.evaluate, lm, suite=args.suite, data_dir=data_dir, limit=args.limit,
                                bootstrap_iters=args.bootstrap_iters, seed=args.seed)
        summary: dict = {"model": spec, "stage": stage_of(spec), "parameters": count_parameters(model),
                         "suite": args.suite, "benchmarks": {}}
        summary["timings"] = timings = clock.lap("load")

        # 3. Benchmarks through lm-eval, once per shots setting.
        for shots in args.num_fewshot:
            summary["benchmarks"][f"{shots}-shot"] = tasks.scores(run(benchmarks, num_fewshot=shots))
        clock.lap("benchmarks")

        # 3b. Reasoning: GSM8K with chain of thought, generated and scored by exact match on the final number; each
        #     task at its own shots (0 and 8), through the chat template for instruction-tuned models.
        if args.reasoning:
            summary["reasoning"] = reasoning(run, lm, tokenizer, args, name, summary["stage"])
            clock.lap("reasoning")

        # 4. Perplexity and bits per byte (loglikelihood_rolling): WikiText-2 and the model's held-out text.
        summary["perplexity"] = perplexity(run, spec, name, tmp / f"heldout-{index}.jsonl", args)
        clock.lap("perplexity")

        # 5. Bias: CrowS-Pairs through lm-eval, split by bias type from its samples.
        if args.crows_pairs:
            samples = run(["fs_crows_pairs"])["samples"]["fs_crows_pairs"]
            summary["crows_pairs"] = bias.summary(samples) | {"most_stereotyped": bias.most_stereotyped(samples)}
            clock.lap("crows_pairs")

        # 6. Toxicity: k sampled continuations per BOLD prompt, scored offline; RealToxicityPrompts metrics.
        #    Steered (word blocking, best-of-k reranking) when toxicity_steering says so; the result records it.
        if bold_rows and probe_args.toxicity_samples:
            tox = toxicity.evaluate(model, tokenizer, bold_rows, k=probe_args.toxicity_samples, steering=steering,
                                    threshold=probe_args.toxicity_threshold,
                                    max_new_tokens=probe_args.toxicity_max_new_tokens,
                                    batch_size=max(1, args.batch_size // 2), seed=args.seed)  # x k sequences each
            summary["toxicity_samples"] = tox.pop("samples")
            summary["toxicity"] = tox
            clock.lap("toxicity")

        # 6b. Bias and toxicity probes named by a source: ETHOS (hate-speech detection, 0- and few-shot),
        #     StereoSet (SS, LMS, ICAT), RealToxicityPrompts (challenging subset and a random sample, steered as
        #     toxicity_steering says).
        run_probes(summary, clock, lm, model, tokenizer, probe_data, probe_args, steering, args)

        # 7. Completions for people to read (chat template for instruction-tuned models).
        chat = completions.is_chat_model(tokenizer, summary["stage"], args.chat)
        summary["completions"] = completions.answer(model, tokenizer, prompts, chat=chat,
                                                    max_new_tokens=args.completion_max_new_tokens)
        clock.lap("completions")
        summary["seconds"] = clock.total()
        summaries[name] = summary
        print(f"[eval] {name}: {json.dumps(headline(summary))} in {summary['seconds']} s {timings}")
        del lm, model, run

    # 8. Results JSON, comparison plot, the eval card; then each local model's card gets every metric.
    write_report(tmp, summaries, args, config)
    skipped = {path: rows for path, rows in readers.SKIPPED.items() if rows}
    if bold_skipped:
        skipped["bold"] = bold_skipped
    skipped |= {probe: rows for probe, rows in probe_skipped.items() if rows}
    for path, rows in skipped.items():
        print(f"[data] {path}: {len(rows)} malformed rows skipped (first: {rows[0]})")
    lineage = [{"spec": s["model"], "role": "model"} for s in summaries.values()]
    lineage += [{"spec": str(tasks.TASK_DIR / "data") if args.suite == "tiny" else data_dir or "hub",
                 "role": "eval data", "skipped": skipped}]
    lineage += [{"spec": getattr(probe_args, f"{probe}_source"), "role": f"{probe} probe"} for probe in probe_data]
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


class Laps:
    """Seconds each step of one model's evaluation took, for its [eval] line and results.json."""

    def __init__(self):
        self.start, self.timings = time.time(), {}

    def lap(self, step: str) -> dict:
        self.timings[step] = round(time.time() - self.start - sum(self.timings.values()), 1)
        return self.timings

    def total(self) -> float:
        return round(time.time() - self.start, 1)


def check_inputs(args: EvalArguments) -> tuple[list[str], Steering, list[str]]:
    """(benchmarks, steering, models) after every check that needs no model work; one UserError line otherwise."""
    if args.suite not in ("tiny", "full"):
        raise UserError(f"suite must be tiny or full, got {args.suite}")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UserError(f"data_dir: no such folder {args.data_dir} (null: the full suite reads the Hub)")
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
    return benchmarks, steering, models


def reasoning(run, lm, tokenizer, args: EvalArguments, name: str, stage: str | None) -> dict:
    """GSM8K chain-of-thought scores; answers capped at half the context (the rest holds the prompt)."""
    new_tokens = min(args.reasoning_max_new_tokens, lm.max_length // 2)
    if new_tokens < args.reasoning_max_new_tokens:
        print(f"[eval] {name}: reasoning answers capped at {new_tokens} tokens (context {lm.max_length})")
    return tasks.reasoning_scores(run(args.reasoning, num_fewshot=None, gen_kwargs={"max_gen_toks": new_tokens},
                                      apply_chat_template=completions.is_chat_model(tokenizer, stage, args.chat)))


def perplexity(run, spec: str, name: str, heldout_out: Path, args: EvalArguments) -> dict:
    """Bits per byte of each perplexity task; fs_heldout reads the model's own pretraining validation text
    (heldout_text auto, written to heldout_out) or the file given, and is skipped when there is none."""
    ppl_tasks = list(args.perplexity)
    heldout = None
    if "fs_heldout" in ppl_tasks:
        if args.heldout_text == "auto":
            heldout = pretraining_heldout(spec, heldout_out, args.heldout_max_bytes)
        elif args.heldout_text != "none":
            heldout = Path(args.heldout_text)
        if heldout is None:
            print(f"[eval] {name}: no held-out text (not a stage-03 model with heldout.json, no heldout_text): "
                  "skipping fs_heldout")
            ppl_tasks.remove("fs_heldout")
    return tasks.scores(run(ppl_tasks, heldout_file=str(heldout.resolve()) if heldout else None))


def run_probes(summary: dict, clock: Laps, lm, model, tokenizer, data: dict, probe_args: ProbeArguments,
               steering: Steering, args: EvalArguments) -> None:
    """ETHOS, StereoSet and RealToxicityPrompts, each where its source is named, into summary (timed)."""
    if "ethos" in data:
        summary["ethos"] = ethos.evaluate(lm, data["ethos"], shots=probe_args.ethos_num_fewshot,
                                          limit=probe_args.ethos_limit, seed=args.seed)
        clock.lap("ethos")
    if "stereoset" in data:
        summary["stereoset"] = stereoset.evaluate(lm, data["stereoset"], limit=probe_args.stereoset_limit,
                                                  seed=args.seed)
        clock.lap("stereoset")
    if "rtp" in data:
        res = rtp.evaluate(model, tokenizer, data["rtp"], k=probe_args.rtp_samples, steering=steering,
                           threshold=probe_args.toxicity_threshold, max_new_tokens=probe_args.rtp_max_new_tokens,
                           batch_size=max(1, args.batch_size // 2), seed=args.seed)
        summary["rtp_samples"] = res.pop("samples")
        summary["rtp"] = res
        clock.lap("rtp")


def write_report(tmp: Path, summaries: dict, args: EvalArguments, config: dict) -> None:
    """results.json (every figure and sample), comparison.png and the eval card (README.md) into tmp."""
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
