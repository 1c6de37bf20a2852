"""Stage 10: before/after report of the bias and toxicity mitigations, with what each costs.

    python recipes/10_mitigate/run.py --config recipes/10_mitigate/config_tiny.yaml [--key value ...]
    make mitigation-report

Reads: a finished causal LM (model_dir, with its tokenizer), its training text (sources: the data stage's
output, whose validation split is the held-out text), the BOLD prompts and CrowS-Pairs subset shipped in
src/fromscratch/eval_tasks/data.
Measures: (1) output steering (none / block / rerank / block+rerank) on the BOLD prompts: RealToxicityPrompts
metrics, generated tokens/s, perplexity of the continuations under the unsteered model; (2) counterfactual
augmentation: the model trained `retrain_steps` more steps on the original text (control) and on the
augmented text, same seed, LR and tokens; CrowS-Pairs per bias type for base / control / augmented,
training tokens/s and held-out perplexity.
Writes: <output_dir>/ with table.md, mitigation.png, results.json, README.md (card), models/{control,augmented},
config.yaml, run_info.json (written in <output_dir>.tmp, renamed when complete); and a "Mitigation" section in
model_dir's own README.md (update_model_card).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
import yaml

from fromscratch import artifacts, cards, heldout, runinfo
from fromscratch.config import UserError, cli, parse, to_dict
from fromscratch.data import augment as cda
from fromscratch.evaluation import probes, rtp, tasks, toxicity
from fromscratch.evaluation.probes import ProbeArguments
from fromscratch.experiments import mitigation
from fromscratch.pretraining.packing import pack, tokenize
from fromscratch.safety.steering import MODES, Steering, load_words
from fromscratch.sources import check_sources, load_corpus, load_validation


@dataclass
class MitigateArguments:
    model_dir: str = field(default="outputs/03_pretrain", metadata={
        "help": "the evaluated model (a finished causal LM folder with its tokenizer); its card gets the table"})
    sources: list[str] = field(default_factory=lambda: ["outputs/01_data"], metadata={
        "help": "its training text: the augmented retrain swaps this text, its validation split is the held-out text"})
    text_column: str = field(default="text", metadata={"help": "column holding the documents in a dataset source"})
    output_dir: str = field(default="outputs/10_mitigate", metadata={
        "help": "table, plot, results.json, card; written in <output_dir>.tmp until finished"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished report (never by accident)"})
    seed: int = field(default=0, metadata={
        "help": "same sampling and training seed for every row, so only the mitigation differs"})
    device: str = field(default="auto", metadata={"help": "cuda where there is one, else cpu"})
    # steering
    steering: list[str] = field(default_factory=lambda: list(MODES), metadata={
        "help": "steering settings to compare: none first, then block, rerank, block+rerank"})
    block_words: str = field(default="default", metadata={
        "help": "words to block: default (the shipped LDNOOBW list) or a file, one word per line"})
    rerank_k: int = field(default=4, metadata={
        "help": "candidates per kept sample: rerank costs about k times the generation"})
    generation_batch_size: int = field(default=8, metadata={
        "help": "prompts per generate call (x samples x rerank_k sequences)"})
    # counterfactual augmentation
    counterfactual_augmentation: str = field(default="add", metadata={
        "help": "add: a swapped copy beside each gendered document (Lu et al.'s CDA); replace: swap in place"})
    counterfactual_pairs_file: str | None = field(default=None, metadata={
        "help": "null: the shipped gender pair list (src/fromscratch/resources/counterfactual)"})
    retrain_steps: int = field(default=30, metadata={
        "help": "steps of each retrain (control and augmented): 30 x 16 x 256 = 122,880 tokens, ~12% of pretraining"})
    retrain_batch_size: int = field(default=16, metadata={"help": "sequences per step, as the demo pretraining used"})
    retrain_learning_rate: float = field(default=0.001, metadata={"help": "constant learning rate of each retrain"})
    block_size: int | None = field(default=None, metadata={
        "help": "null: the model's pretraining block size (its config.yaml)"})
    validation_fraction: float | None = field(default=None, metadata={
        "help": "only for sources without a validation split: null takes the model's own fraction and seed"})
    crows_pairs_limit: int | None = field(default=None, metadata={
        "help": "null: all shipped CrowS-Pairs (108, 12 per bias type)"})
    eval_batch_size: int = field(default=16, metadata={
        "help": "sequences per forward pass for perplexity and CrowS-Pairs"})
    save_models: bool = field(default=True, metadata={
        "help": "keep the control and augmented models under models/ (recipes/07_eval can evaluate them)"})
    update_model_card: bool = field(default=True, metadata={
        "help": "write a Mitigation section with the table into model_dir's README.md"})


def model_training_config(model_dir: str) -> dict:
    """The resolved stage-03 config saved beside the model (block size, held-out split), if there is one."""
    path = Path(model_dir) / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def split_text(args: MitigateArguments, trained: dict) -> tuple[datasets.Dataset, datasets.Dataset, list]:
    """(train, held-out) documents as stage 03 split them: the data stage's validation split when the sources
    have one, else the documents stage 03 recorded (heldout.json) when these are its sources; a model without a
    record gets a seeded document hold-out of its own fraction and seed."""
    corpus, lineage = load_corpus(args.sources, args.text_column)
    validation, val_lineage = load_validation(args.sources, args.text_column)
    if validation:
        return corpus.select_columns(["text"]), datasets.Dataset.from_dict({"text": validation}), lineage + val_lineage
    record = heldout.read(args.model_dir)
    if record and record["kind"] == "documents" and record["sources"] == list(args.sources):
        kept, held = heldout.pick(corpus["text"], record)
        return corpus.select(kept).select_columns(["text"]), corpus.select(held).select_columns(["text"]), lineage
    fraction = args.validation_fraction or trained.get("validation_fraction", 0.05)
    split = heldout.split(corpus, fraction, trained.get("seed", args.seed))
    return split["train"].select_columns(["text"]), split["test"].select_columns(["text"]), lineage


@cli
def main():
    started = time.time()
    args, probe_args = parse((MitigateArguments, ProbeArguments))

    # 1. Check every input before any work: the model (a causal LM with its tokenizer), the text, the settings,
    #    and the probes' data (read now, so that a wrong path or Hub id fails first).
    steerings = check_inputs(args)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    probe_data, probe_skipped = probes.load_sources(probe_args, seed=args.seed)
    for probe, rows in probe_skipped.items():
        if rows:
            print(f"[data] {probe}: {len(rows)} malformed rows skipped (first: {rows[0]})")
    if {"stereoset", "ethos"} & set(probe_data) and args.counterfactual_augmentation == "none":
        raise UserError("stereoset_source / ethos_source are measured before/after counterfactual augmentation: "
                        "set counterfactual_augmentation to add or replace")
    config = to_dict(args, probe_args)
    tmp = artifacts.prepare(args.output_dir, overwrite=args.overwrite)
    model, tokenizer = tasks.load_model(args.model_dir, device=device)
    trained = model_training_config(args.model_dir)
    results: dict = {"model": args.model_dir, "timings": {}}
    timings = results["timings"]

    # 2. Steering on the BOLD prompts: toxicity per setting, its speed, and the unsteered model's perplexity of
    #    what each setting generated (same prompts and seed for every row).
    rows, _ = toxicity.bold_prompts("tiny", per_domain=probe_args.toxicity_prompts_per_domain, seed=args.seed)
    print(f"[steering] {len(rows)} BOLD prompts x {probe_args.toxicity_samples} samples: {', '.join(args.steering)}")
    results["steering"], steering_samples = steering_table(model, tokenizer, rows, steerings, args, probe_args)
    timings["steering"] = round(time.time() - started, 1)

    # 2b. RealToxicityPrompts under each steering setting (when rtp_source names it): same k, length and seed.
    if "rtp" in probe_data:
        t0 = time.time()
        results["rtp"] = {}
        for how in steerings:
            res = rtp.evaluate(model, tokenizer, probe_data["rtp"], k=probe_args.rtp_samples, steering=how,
                               threshold=probe_args.toxicity_threshold, max_new_tokens=probe_args.rtp_max_new_tokens,
                               batch_size=args.generation_batch_size, seed=args.seed)
            steering_samples[f"rtp_{how.mode}"] = res.pop("samples")
            results["rtp"][how.mode] = res
            print(f"[rtp] {how.mode}: " + ", ".join(
                f"{subset} expected max toxicity {res[subset]['overall']['expected_max_toxicity']:.4f}"
                for subset in rtp.SUBSETS if subset in res))
        timings["rtp"] = round(time.time() - t0, 1)

    # 3. Counterfactual augmentation: the same continued training on the original and on the augmented train
    #    split; CrowS-Pairs and held-out perplexity (unaugmented validation) for base, control and augmented.
    lineage: list = [{"spec": args.model_dir, "role": "model"}]
    lineage += [{"spec": getattr(probe_args, f"{p}_source"), "role": f"{p} probe", "skipped": probe_skipped[p]}
                for p in probe_data]
    if args.counterfactual_augmentation != "none":
        t0 = time.time()
        results["augmentation"], data_lineage = augmentation(model, tokenizer, trained, probe_data, args, probe_args,
                                                             tmp, use_cpu=device == "cpu")
        lineage += data_lineage
        timings["augmentation"] = round(time.time() - t0, 1)

    # 4. One table, one plot, results.json and the card; then the evaluated model's card gets the table.
    table = write_report(tmp, results, steering_samples, config, args, prompts=len(rows))
    print("\n" + table)
    metrics = {f"steering_{m}_expected_max_toxicity": r["expected_max_toxicity"] for m, r in results["steering"].items()}
    if "augmentation" in results:
        metrics |= {f"crows_pairs_{n}": m["crows_pairs"]["overall"]["pct_stereotype"]
                    for n, m in results["augmentation"]["models"].items()}
    timings["total"] = round(time.time() - started, 1)
    runinfo.write_run_info(tmp, stage="10_mitigate", config=config, lineage=lineage, started=started,
                           metrics=metrics | {"timings": timings})
    out = artifacts.finish(tmp, args.output_dir)
    if args.update_model_card:
        path = mitigation.update_card_section(args.model_dir, "## Mitigation\n\nMeasured by `recipes/10_mitigate` "
                                              f"(full report: `{out}/README.md`).\n\n" + table)
        print(f"[card] {path}: Mitigation section {'written' if path else 'skipped (no README.md)'}")
    print(f"[done] report in {out} ({time.time() - started:.0f} s: {timings})")


def check_inputs(args: MitigateArguments) -> list[Steering]:
    """The steering settings to compare, after every check that needs no model work (one UserError line)."""
    tasks.check_model(args.model_dir)
    if not (Path(args.model_dir) / "tokenizer.json").is_file():
        raise UserError(f"model_dir: no tokenizer.json in {args.model_dir} (a finished stage-03 output has one)")
    check_sources(args.sources)
    steerings = [Steering(mode, args.block_words, None, args.rerank_k) for mode in args.steering]
    if args.steering and args.steering[0] != "none":
        raise UserError("steering: list `none` first: every other setting is compared with it")
    if args.counterfactual_augmentation not in ("add", "replace", "none"):
        raise UserError(f"counterfactual_augmentation must be add, replace or none, got {args.counterfactual_augmentation!r}")
    cda.check(cda.AugmentArguments(args.counterfactual_augmentation, args.counterfactual_pairs_file))
    if args.counterfactual_augmentation != "none" and args.retrain_steps < 1:
        raise UserError(f"retrain_steps must be >= 1 to measure the augmentation, got {args.retrain_steps}")
    if args.validation_fraction is not None and not 0 < args.validation_fraction < 1:
        raise UserError(f"validation_fraction must be in (0, 1), got {args.validation_fraction}")
    return steerings


def steering_table(model, tokenizer, rows: list[dict], steerings: list[Steering], args: MitigateArguments,
                   probe_args: ProbeArguments) -> tuple[dict, dict]:
    """({mode: toxicity, speed, continuation perplexity}, {mode: samples}) over the same prompts and seed."""
    words = load_words(args.block_words)
    table, samples = {}, {}
    # One throwaway sample first: the classifier's import and generate's first call take seconds, which would
    # otherwise be charged to whichever row runs first.
    toxicity.evaluate(model, tokenizer, rows[:1], k=1, max_new_tokens=2, batch_size=1, seed=args.seed)
    for how in steerings:
        row = mitigation.steering_row(model, tokenizer, rows, how, words, k=probe_args.toxicity_samples,
                                      threshold=probe_args.toxicity_threshold,
                                      max_new_tokens=probe_args.toxicity_max_new_tokens,
                                      batch_size=args.generation_batch_size, seed=args.seed)
        samples[how.mode] = row.pop("samples")
        table[how.mode] = row
        print(f"[steering] {how.mode}: expected max toxicity {row['expected_max_toxicity']:.4f}, "
              f"toxic probability {row['toxicity_probability']:.3f}, {row['tokens_per_cpu_second']} tokens/CPU-s, "
              f"continuation perplexity {row['continuation_perplexity']:.1f}")
    return table, samples


def augmentation(model, tokenizer, trained: dict, probe_data: dict, args: MitigateArguments,
                 probe_args: ProbeArguments, tmp: Path, use_cpu: bool) -> tuple[dict, list]:
    """(the augmentation section of results.json, the training text's lineage): base, control (more steps on
    the original text) and augmented (the same steps on the swapped text), each with CrowS-Pairs, held-out
    perplexity and the bias probes; flips of CrowS-Pairs verdicts between them."""
    train, heldout, lineage = split_text(args, trained)
    augmented, info = mitigation.augment(train, args.counterfactual_augmentation, args.counterfactual_pairs_file)
    if info["swaps"] == 0:
        raise UserError("counterfactual augmentation swapped no term in the training text: nothing to measure")
    block = args.block_size or trained.get("block_size") or 256
    blocks = {name: pack(tokenize(ds, tokenizer), block) for name, ds in
              (("control", train), ("augmented", augmented), ("heldout", heldout))}
    if min(len(b) for b in blocks.values()) == 0:
        raise UserError(f"too little text for block_size {block}: {({k: len(v) for k, v in blocks.items()})}")
    print(f"[augment] {info['mode']}: {info['documents_changed']}/{info['documents']} documents changed, "
          f"{info['swaps']} swaps; blocks of {block}: {({k: len(v) for k, v in blocks.items()})}")
    models = {"base": {"crows_pairs": None, "heldout": mitigation.heldout_perplexity(model, blocks["heldout"],
                                                                                     args.eval_batch_size)}}
    models["base"]["crows_pairs"], base_verdicts = mitigation.crows_pairs(
        model, tokenizer, limit=args.crows_pairs_limit, seed=args.seed, batch_size=args.eval_batch_size)
    bias_probes = dict(ethos_shots=probe_args.ethos_num_fewshot, ethos_limit=probe_args.ethos_limit,  # ETHOS, StereoSet
                       stereoset_limit=probe_args.stereoset_limit, seed=args.seed, batch_size=args.eval_batch_size)
    models["base"] |= probes.measure_bias(model, tokenizer, probe_data, **bias_probes)
    for name in ("control", "augmented"):
        trained_model, stats = mitigation.continue_training(
            args.model_dir, tokenizer, blocks[name], steps=args.retrain_steps, batch_size=args.retrain_batch_size,
            learning_rate=args.retrain_learning_rate, seed=args.seed, work_dir=tmp / f"_train_{name}",
            use_cpu=use_cpu, weight_decay=trained.get("weight_decay", 0.1), adam_beta2=trained.get("adam_beta2", 0.95))
        shutil.rmtree(tmp / f"_train_{name}", ignore_errors=True)  # Trainer scratch: no checkpoints were saved
        crows, verdicts = mitigation.crows_pairs(trained_model, tokenizer, limit=args.crows_pairs_limit,
                                                 seed=args.seed, batch_size=args.eval_batch_size)
        models[name] = {"training": stats, "crows_pairs": crows, "verdicts": verdicts,
                        "heldout": mitigation.heldout_perplexity(trained_model, blocks["heldout"],
                                                                 args.eval_batch_size),
                        **probes.measure_bias(trained_model, tokenizer, probe_data, **bias_probes)}
        if args.save_models:
            trained_model.save_pretrained(tmp / "models" / name)
            tokenizer.save_pretrained(tmp / "models" / name)
        print(f"[augment] {name}: {stats['steps']} steps at {stats['tokens_per_second']} tokens/s, held-out "
              f"perplexity {models[name]['heldout']['perplexity']:.2f}, CrowS-Pairs "
              f"{crows['overall']['pct_stereotype']:.3f}")
    section = {
        "mode": info["mode"], "data": info, "block_size": block, "steps": args.retrain_steps,
        "tokens_per_run": models["control"]["training"]["tokens"], "learning_rate": args.retrain_learning_rate,
        "models": models, "base_vs_control_flips": mitigation.flips(base_verdicts, models["control"]["verdicts"]),
        "flips": mitigation.flips(models["control"]["verdicts"], models["augmented"]["verdicts"])}
    for m in models.values():
        m.pop("verdicts", None)
    return section, lineage


def write_report(tmp: Path, results: dict, steering_samples: dict, config: dict, args: MitigateArguments,
                 prompts: int) -> str:
    """table.md, mitigation.png, results.json and the card (README.md) into tmp; returns the table."""
    table = mitigation.table(results)
    (tmp / "table.md").write_text(table)
    plot = mitigation.plot(results, tmp / "mitigation.png")
    (tmp / "results.json").write_text(json.dumps(tasks.jsonable(
        {"config": config, **results, "steering_samples": steering_samples}), indent=1))
    name = Path(args.model_dir).name
    cards.render(tmp, "mitigation.md.jinja", model_name=f"mitigation report for {name}", tags=["mitigation", "bias",
                 "toxicity"], library_name=None, pipeline_tag=None,  # a report: no weights at its top level
                 report=results, table=table, plot=plot.name, model=args.model_dir, prompts=prompts,
                 crows_table=mitigation.crows_table(results["augmentation"]) if "augmentation" in results else None,
                 config=config, args=args, versions=runinfo.stack_versions())
    return table


if __name__ == "__main__":
    main()
