"""Stage 03: pretrain a causal language model from scratch with the transformers Trainer.

    python recipes/03_pretrain/run.py --config recipes/03_pretrain/config_tiny.yaml [--key value ...]
    accelerate launch --config_file accelerate_configs/cpu_ddp.yaml recipes/03_pretrain/run.py --config ...

Reads: the tokenizer from stage 02 (tokenizer_dir) and text sources (default, a path, a Hub id, or stage 01).
Writes: <output_dir>/ with model.safetensors + config + tokenizer (AutoModelForCausalLM loads it),
trainer_state.json (log_history), checkpoints, loss.png, README.md card, config.yaml, run_info.json.
Written in <output_dir>.tmp and renamed when complete; `--resume true` continues the newest checkpoint there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
    set_seed,
)

from fromscratch import artifacts, cards, hub, precision, runinfo, saved_model
from fromscratch.batch_ramp import BatchRamp, BatchRampArguments
from fromscratch.callbacks import SpikeGuard, SpikeGuardArguments, ThroughputCallback
from fromscratch.config import UserError, cli, parse, to_dict
from fromscratch.metrics import bits_per_byte, perplexity, train_measuring_start
from fromscratch.modeling import build_config, count_parameters
from fromscratch.packing import counts, pack, tokenize
from fromscratch.sources import check_sources, load_corpus, load_validation
from fromscratch.stage_args import StageArguments


@dataclass
class ModelArguments:
    family: str = field(default="llama", metadata={
        "help": "llama (RoPE, SwiGLU, RMSNorm) or neox (partial rotary, parallel attention+MLP)"})
    preset: str = field(default="tiny", metadata={
        "help": "shape preset in src/fromscratch/modeling.py: nano tiny small 125m 350m 1b 3b"})
    layers: int | None = field(default=None, metadata={"help": "transformer blocks (overrides the preset)"})
    hidden: int | None = field(default=None, metadata={"help": "model width (overrides the preset)"})
    heads: int | None = field(default=None, metadata={"help": "attention heads (overrides the preset)"})
    ffn: int | None = field(default=None, metadata={"help": "MLP inner width (overrides the preset)"})
    kv_heads: int | None = field(default=None, metadata={
        "help": "key/value heads for grouped-query attention (overrides the preset; None: as many as heads)"})
    tie_word_embeddings: bool = field(default=True, metadata={
        "help": "share input and output embeddings (the planner's count assumes it)"})
    dropout: float = field(default=0.0, metadata={
        "help": "dropout on attention (and hidden states for neox); pretraining rarely needs it"})
    rope_theta: float = field(default=10000.0, metadata={"help": "rotary position embedding base"})
    attn_implementation: str = field(default="sdpa", metadata={
        "help": "attention kernel: sdpa (PyTorch's, flash kernels on GPU), eager, flash_attention_2"})


@dataclass
class DataArguments:
    sources: list[str] = field(default_factory=lambda: ["default"], metadata={
        "help": "text sources: default, a local path, a Hub dataset id, or stage 01's output"})
    text_column: str = field(default="text", metadata={"help": "column holding the text in table sources"})
    tokenizer_dir: str = field(default="outputs/02_tokenizer", metadata={
        "help": "stage 02's output folder (tokenizer.json)"})
    block_size: int = field(default=256, metadata={"help": "tokens per packed training sequence"})
    validation_fraction: float = field(default=0.05, metadata={
        "help": "share of documents held out for validation loss and bits per byte"})
    preprocessing_num_workers: int | None = field(default=None, metadata={
        "help": "processes that tokenize and pack the corpus before training"})


@dataclass
class PretrainArguments(StageArguments, TrainingArguments):
    output_dir: str = field(default="outputs/03_pretrain", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "the learning rate decays to this share of its peak"})
    lr_scheduler_type: str = field(default="polynomial", metadata={
        "help": "polynomial (linear to min_lr_ratio x peak) or any TrainingArguments schedule"})


def schedule(args: PretrainArguments) -> None:
    """Warm up linearly, then decay to min_lr_ratio x the peak (OPT's schedule; cosine_with_min_lr as option)."""
    kwargs = dict(args.lr_scheduler_kwargs or {})
    kind = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    if kind == "polynomial" and args.deepspeed_plugin is not None:
        # transformers' polynomial schedule reads optimizer.defaults, which DeepSpeed's ZeRO optimizer lacks.
        if args.process_index == 0:
            print("[schedule] polynomial does not run under DeepSpeed: using cosine_with_min_lr (same warmup and floor)")
        kind = args.lr_scheduler_type = "cosine_with_min_lr"
    if kind == "polynomial":
        kwargs.setdefault("lr_end", args.learning_rate * args.min_lr_ratio)
        kwargs.setdefault("power", 1.0)
    elif kind == "cosine_with_min_lr" and "min_lr" not in kwargs:
        kwargs.setdefault("min_lr_rate", args.min_lr_ratio)
    args.lr_scheduler_kwargs = kwargs


@cli
def main():
    started = time.time()
    model_args, data_args, guard_args, ramp_args, args = parse(
        (ModelArguments, DataArguments, SpikeGuardArguments, BatchRampArguments, PretrainArguments))

    # 1. Check inputs and the output location before any work.
    check_sources(data_args.sources)
    if not (Path(data_args.tokenizer_dir) / "tokenizer.json").is_file():
        raise UserError(f"tokenizer_dir: no tokenizer in {data_args.tokenizer_dir} (run `make tokenizer` first)")
    if not 0.0 < data_args.validation_fraction < 1.0:
        raise UserError(f"validation_fraction must be in (0, 1), got {data_args.validation_fraction}")
    tokenizer = AutoTokenizer.from_pretrained(data_args.tokenizer_dir)
    model_config = build_config(
        model_args.family, model_args.preset, len(tokenizer), data_args.block_size,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=model_args.tie_word_embeddings, dropout=model_args.dropout, rope_theta=model_args.rope_theta,
        layers=model_args.layers, hidden=model_args.hidden, heads=model_args.heads, ffn=model_args.ffn,
        kv_heads=model_args.kv_heads,
    )
    model_config._attn_implementation = model_args.attn_implementation
    config = to_dict(model_args, data_args, guard_args, ramp_args, args)
    final_dir, tmp, push = artifacts.start_training_output(args)
    schedule(args)
    args, precision_used = precision.apply(args, args.precision)
    set_seed(args.seed)

    # 2. Data: load, hold out whole documents for validation, tokenize, pack into blocks.
    with args.main_process_first(desc="load and pack data"):
        corpus, lineage = load_corpus(data_args.sources, data_args.text_column)
        validation, val_lineage = load_validation(data_args.sources, data_args.text_column)
        lineage += val_lineage
        for item in lineage:
            print(f"[data] {item.summary()}")
        if validation:  # the data stage's own held-out split (its mix repeats documents: never re-split it)
            split = {"train": corpus, "test": datasets.Dataset.from_dict({"text": validation})}
        elif len(corpus) < 2:
            raise UserError(f"sources: {len(corpus)} document; at least 2 are needed to hold one out for validation")
        else:
            n_val = max(1, round(len(corpus) * data_args.validation_fraction))  # whole documents, at least one
            split = corpus.train_test_split(test_size=n_val, seed=args.seed)
        n = data_args.preprocessing_num_workers
        tok_train, tok_val = tokenize(split["train"], tokenizer, num_proc=n), tokenize(split["test"], tokenizer, num_proc=n)
        train_set, val_set = pack(tok_train, data_args.block_size, num_proc=n), pack(tok_val, data_args.block_size, num_proc=n)
    val_tokens, val_bytes = counts(tok_val)
    if len(train_set) == 0 or len(val_set) == 0:
        raise UserError(f"too little text for block_size {data_args.block_size}: "
                        f"{len(train_set)} train / {len(val_set)} validation blocks")

    # 3. Model from a config (random init, never downloaded weights).
    model = AutoModelForCausalLM.from_config(model_config)
    n_params = count_parameters(model)
    tokens_per_step = (args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
                       * data_args.block_size)
    print(f"[model] {model_args.family}/{model_args.preset}: {n_params / 1e6:.2f}M parameters; "
          f"{len(train_set)} train blocks, {tokens_per_step} tokens per optimizer step, {precision_used}")

    # 4. Train with the Trainer; evaluate the untrained model first so "the loss went down" is measured.
    ramp = BatchRamp.from_args(ramp_args, args, data_args.block_size, len(train_set))  # None unless batch_ramp_tokens
    throughput = ThroughputCallback(tokens_per_step, ramp.sampler.tokens_through if ramp else None)
    trainer = Trainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=val_set, processing_class=tokenizer,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False), callbacks=[throughput],
    )
    sharded = args.deepspeed_plugin is not None or bool(args.fsdp)
    guard = SpikeGuard.from_args(guard_args, can_roll_back=not sharded).attach(trainer) if guard_args.spike_guard else None
    ramp = ramp.attach(trainer) if ramp else None
    checkpoint = artifacts.newest_checkpoint(tmp) if args.resume else None
    if args.resume:
        print(f"[resume] {'from ' + str(checkpoint) if checkpoint else 'no checkpoint yet: starting over'}")
    if checkpoint is not None:
        artifacts.check_checkpoint_shape(checkpoint, model_config)
    result, initial = train_measuring_start(trainer, checkpoint)
    if guard and guard.gave_up:
        raise UserError(f"training diverged: {len(guard.events)} loss spikes ({guard.events[-1]}); lower "
                        f"learning_rate or raise warmup_steps, then --resume true continues from {tmp}")
    final = trainer.evaluate()

    # 5. Metrics: loss, perplexity and bits per byte (tokenizer-independent) on held-out documents.
    metrics = {
        "parameters": n_params,
        "initial_eval_loss": initial.get("eval_loss"),
        "eval_loss": final["eval_loss"],
        "perplexity": perplexity(final["eval_loss"]),
        "bits_per_byte": bits_per_byte(final["eval_loss"], val_tokens, val_bytes),
        "train_tokens": (ramp.sampler.tokens_through(result.global_step) if ramp
                         else int(result.global_step * tokens_per_step)),
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 2),
        "tokens_per_second": round(sorted(throughput.history)[len(throughput.history) // 2], 1)
        if throughput.history else None,
        "steps": result.global_step,
        "precision": precision_used,
        # torch_compile: the first step pays for tracing and compiling; later steps should be faster.
        "compile_seconds": throughput.first_step_overhead() if args.torch_compile else None,
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        "spike_events": guard.events if guard else [],
        "batch_ramp": ramp.summary(result.global_step) if ramp else None,
    }
    if args.process_index == 0:
        print("[metrics] " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))

    # 6. Save the model in the library's own format, its card and run record; publish atomically.
    trainer.save_model(str(tmp))
    trainer.save_state()
    if not args.should_save:
        return
    saved_model.finish(tmp, tokenizer)  # use_cache on, tokenizer context = the model's, generation ids only
    plot = cards.plot_curves(trainer.state.log_history, Path(tmp) / "loss.png", title="pretraining loss")
    card_metrics = {k: metrics[k] for k in ("eval_loss", "perplexity", "bits_per_byte")}
    cards.render(
        tmp, "pretrain.md.jinja", model_name=args.hub_model_id or f"fromscratch-{model_args.family}-{model_args.preset}",
        results=cards.heldout_results(card_metrics, data_args.sources, from_validation_split=bool(validation)),
        datasets=cards.hub_datasets(lineage),
        tags=["pretraining", model_args.family], metrics=metrics, lineage=lineage, config=config,
        versions=runinfo.stack_versions(), plot=plot.name if plot else None, load_path=args.hub_model_id or final_dir,
        tokenizer_dir=data_args.tokenizer_dir, model_config=model_config.to_diff_dict(),
    )
    runinfo.write_run_info(tmp, stage="03_pretrain", config=config, metrics=metrics, started=started,
                           lineage=[*lineage, {"spec": data_args.tokenizer_dir, "role": "tokenizer",
                                               "sha256": runinfo.hash_path(Path(data_args.tokenizer_dir) / "tokenizer.json")}])
    out = artifacts.finish(tmp, final_dir)
    print(f"[done] model in {out}: eval loss {metrics['initial_eval_loss']} -> {metrics['eval_loss']:.4f}, "
          f"{metrics['bits_per_byte']:.4f} bits/byte")
    if push:
        print(f"[hub] {hub.push_folder(out, args.hub_model_id, private=bool(args.hub_private_repo))}")


if __name__ == "__main__":
    main()
