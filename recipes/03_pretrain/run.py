"""Stage 03: pretrain a causal language model from scratch with the transformers Trainer.

    python recipes/03_pretrain/run.py --config recipes/03_pretrain/config_tiny.yaml [--key value ...]
    accelerate launch --config_file accelerate_configs/cpu_ddp.yaml recipes/03_pretrain/run.py --config ...

Reads: the tokenizer from stage 02 (tokenizer_dir) and text sources (default, a path, a Hub id, or stage 01).
Writes: <output_dir>/ with model.safetensors + config + tokenizer (AutoModelForCausalLM loads it),
trainer_state.json (log_history), checkpoints, loss.png, README.md card, config.yaml, run_info.json, heldout.json
(which documents it held out: what 07 and 10 evaluate on).
Written in <output_dir>.tmp and renamed when complete; `--resume true` continues the newest checkpoint there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
    set_seed,
)

from fromscratch import artifacts, cards, heldout, publish, runinfo
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.modeling import build_config, count_parameters
from fromscratch.pretraining import data_order, streaming, token_shards
from fromscratch.pretraining.batch_ramp import BatchRamp, BatchRampArguments
from fromscratch.pretraining.packing import load_and_pack
from fromscratch.pretraining.torch_compile import CompileArguments, settle as settle_compile
from fromscratch.sources import Lineage, check_sources
from fromscratch.training import eval_subset, precision, saved_model
from fromscratch.training.callbacks import SpikeGuard, SpikeGuardArguments, ThroughputCallback
from fromscratch.training.lr_schedule import apply as schedule
from fromscratch.training.metrics import bits_per_byte, perplexity, train_measuring_start
from fromscratch.training.stage_args import StageArguments


@dataclass
class ModelArguments:
    family: str = field(default="llama", metadata={
        "help": "llama (RoPE, SwiGLU, RMSNorm) or neox (partial rotary, parallel attention+MLP)"})
    preset: str = field(default="tiny", metadata={
        "help": "shape preset in src/fromscratch/modeling.py: nano tiny small 125m 350m 1b 3b"})
    layers: int | None = checked(None, ge=1, help="transformer blocks (overrides the preset)")
    hidden: int | None = checked(None, ge=1, help="model width (overrides the preset)")
    heads: int | None = checked(None, ge=1, help="attention heads (overrides the preset)")
    ffn: int | None = checked(None, ge=1, help="MLP inner width (overrides the preset)")
    kv_heads: int | None = checked(None, ge=1,
        help="key/value heads for grouped-query attention (overrides the preset; None: as many as heads)")
    tie_word_embeddings: bool = field(default=True, metadata={
        "help": "share input and output embeddings (the planner's count assumes it)"})
    dropout: float = checked(0.0, ge=0, lt=1,
        help="dropout on attention (and hidden states for neox); pretraining rarely needs it")
    rope_theta: float = checked(10000.0, gt=0, help="rotary position embedding base")
    attn_implementation: str = field(default="sdpa", metadata={
        "help": "attention kernel: sdpa (PyTorch's, flash kernels on GPU), eager, flash_attention_2"})


@dataclass
class DataArguments:
    sources: list[str] = field(default_factory=lambda: ["default"], metadata={
        "help": "text sources: default, a local path, a Hub dataset id, or stage 01's output"})
    text_column: str = field(default="text", metadata={"help": "column holding the text in table sources"})
    tokenizer_dir: str = field(default="outputs/02_tokenizer", metadata={
        "help": "stage 02's output folder (tokenizer.json)"})
    block_size: int = checked(256, ge=1, help="tokens per packed training sequence")
    validation_fraction: float = checked(0.05, gt=0, lt=1,
        help="share of documents held out for validation loss and bits per byte")
    preprocessing_num_workers: int | None = checked(None, ge=1,
        help="processes that tokenize and pack the corpus before training")
    weights: list[float] = checked(default_factory=list, ge=0, help="token folders only: each one's share of the "
                                   "training tokens (counted epochs); empty: as they are")
    mix_tokens: int = checked(0, ge=0, help="training tokens the mixture holds; 0: as many as the folders hold")
    streaming: bool = field(default=False, metadata={
        "help": "stream one text source and tokenize on the fly (no local copy; resume re-reads skipped batches)"})
    streaming_validation_documents: int = checked(500, ge=1, help="documents of a stream held out for validation")


@dataclass
class PretrainArguments(StageArguments, CompileArguments, TrainingArguments):
    output_dir: str = field(default="outputs/03_pretrain", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})
    min_lr_ratio: float = checked(0.1, ge=0, le=1, help="the learning rate decays to this share of its peak")
    lr_scheduler_type: str = field(default="polynomial", metadata={
        "help": "polynomial (linear to min_lr_ratio x peak) or any TrainingArguments schedule"})
    eval_tokens: int = checked(2**21, ge=0, help="validation tokens each evaluation during training scores (the "
                               "same fixed seeded windows every time, whatever the corpus size); 0: the whole split")
    final_eval_tokens: int = checked(2**23, ge=0, help="validation tokens of the final evaluation (the card's "
                                     "bits per byte); 0: the whole split")


@cli
def main():
    started = time.time()
    model_args, data_args, guard_args, ramp_args, args = parse(
        (ModelArguments, DataArguments, SpikeGuardArguments, BatchRampArguments, PretrainArguments))

    # 1. Check inputs and the output location before any work.
    check_sources(data_args.sources)
    tokenizer = artifacts.load_tokenizer(data_args.tokenizer_dir, "tokenizer_dir", "tokenizer")
    model_config = model_config_for(model_args, tokenizer, data_args.block_size)
    config = to_dict(model_args, data_args, guard_args, ramp_args, args)
    final_dir, tmp, push = artifacts.start_training_output(args)
    schedule(args, args.min_lr_ratio)  # warm up, then decay to min_lr_ratio x the peak
    args, precision_used = precision.apply(args, args.precision)
    set_seed(args.seed)

    # 2. Data: windows over token shards (make tokenize), a stream tokenized on the fly, or text sources loaded,
    # split into whole documents for validation, tokenized and packed into blocks in memory.
    mixture = None
    if any(token_shards.is_token_folder(s) for s in data_args.sources):
        if not all(token_shards.is_token_folder(s) for s in data_args.sources):
            raise UserError("sources: mix token folders (make tokenize) with token folders only")
        shards = token_shards.load(data_args.sources, data_args.tokenizer_dir, data_args.block_size,
                                   data_args.weights, data_args.mix_tokens, seed=args.seed)
        train_set, val_set, lineage, mixture = shards.train, shards.validation, shards.lineage, shards.mixture
        held = heldout.of_split(data_args.sources)  # make tokenize's validation shards
        val_tokens, val_bytes, data_identity = shards.validation_tokens, shards.validation_bytes, shards.fingerprint
        for m in mixture:
            print(f"[data] {m['source']}: {m['windows']} of {m['available_windows']} windows "
                  f"({m['share']:.3f} of the mix, {m['epochs']:.2f} epochs)")
    elif data_args.streaming:
        if len(data_args.sources) != 1 or args.max_steps <= 0 or ramp_args.batch_ramp_tokens:
            raise UserError("streaming: name one source and set max_steps (a stream has no length; no batch ramp)")
        args.accelerator_config.dispatch_batches = False  # each rank reads its own part of the stream
        train_set, val_set, val_tokens, val_bytes = streaming.load(
            data_args.sources[0], tokenizer, data_args.block_size, data_args.text_column, rank=args.process_index,
            world_size=args.world_size, seed=args.seed, validation_fraction=data_args.validation_fraction,
            validation_documents=data_args.streaming_validation_documents)
        lineage = [Lineage(spec=data_args.sources[0], resolved="stream", sha256="")]
        held = heldout.of_rule(data_args.sources, data_args.validation_fraction)
        data_identity = [{"stream": data_args.sources[0], "validation_fraction": data_args.validation_fraction}]
    else:
        with args.main_process_first(desc="load and pack data"):
            train_set, val_set, val_tokens, val_bytes, lineage, held = load_and_pack(
                data_args.sources, data_args.text_column, tokenizer, data_args.block_size,
                data_args.validation_fraction, seed=args.seed, num_proc=data_args.preprocessing_num_workers)
        data_identity = [{"source": x.spec, "sha256": x.sha256} for x in lineage] + [
            {"validation_fraction": data_args.validation_fraction}]
    # validation from a split the data stage (or tokenize) held out, rather than documents split off here
    held_out_split = any(x.spec.endswith("[validation]") for x in lineage) or bool(mixture)
    if data_args.weights and mixture is None:
        raise UserError("weights: token-level mixtures need token folders as sources (make tokenize)")
    fingerprint = data_order.fingerprint(args, data_identity, data_args.block_size,
                                         batch_ramp_tokens=ramp_args.batch_ramp_tokens)

    # 3. Model from a config (random init, never downloaded weights).
    model = AutoModelForCausalLM.from_config(model_config)
    n_params = count_parameters(model)
    tokens_per_step = (args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
                       * data_args.block_size)
    print(f"[model] {model_args.family}/{model_args.preset}: {n_params / 1e6:.2f}M parameters; "
          f"{'streamed' if data_args.streaming else len(train_set)} train blocks, {tokens_per_step} tokens per optimizer "
          f"step, {precision_used}")

    # 4. Train with the Trainer; evaluate the untrained model first so "the loss went down" is measured.
    n_blocks = 0 if data_args.streaming else len(train_set)
    compiled = None  # a stream has no length to weigh a compile against: it keeps torch_compile as set
    if not data_args.streaming:
        train_set, compiled = settle_compile(args, model, train_set, tokens_per_step,
                                             batch_ramp=ramp_args.batch_ramp_tokens > 0)
    ramp = BatchRamp.from_args(ramp_args, args, data_args.block_size, n_blocks)  # None unless batch_ramp_tokens
    throughput = ThroughputCallback(tokens_per_step, ramp.sampler.tokens_through if ramp else None)
    trainer = Trainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=val_set, processing_class=tokenizer,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[throughput, data_order.DataOrderCallback(fingerprint)],
    )
    # Evaluation costs what eval_tokens asks, not what the corpus holds: the same seeded windows every time.
    held_windows = len(val_set)
    final_val_set = eval_subset.cap(trainer, eval_subset.windows_for(args.eval_tokens, data_args.block_size),
                                    eval_subset.windows_for(args.final_eval_tokens, data_args.block_size), "windows")
    sharded = args.deepspeed_plugin is not None or bool(args.fsdp)
    guard = SpikeGuard.from_args(guard_args, can_roll_back=not sharded).attach(trainer) if guard_args.spike_guard else None
    ramp = ramp.attach(trainer) if ramp else None
    result, initial, final = train(trainer, args, tmp, model_config, fingerprint, guard, final_val_set)

    # 5. Metrics: loss, perplexity and bits per byte (tokenizer-independent) on held-out documents.
    metrics = {
        "parameters": n_params,
        "initial_eval_loss": initial.get("eval_loss"),
        "eval_loss": final["eval_loss"],
        "perplexity": perplexity(final["eval_loss"]),
        # the final windows' loss, per byte at the whole split's bytes per token (an estimate when they are a subset)
        "bits_per_byte": bits_per_byte(final["eval_loss"], val_tokens, val_bytes),
        "eval_windows": {"during_training": len(trainer.eval_dataset), "final": len(final_val_set),
                         "held_out": held_windows},
        "train_tokens": (ramp.sampler.tokens_through(result.global_step) if ramp
                         else int(result.global_step * tokens_per_step)),
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 2),
        "tokens_per_second": round(sorted(throughput.history)[len(throughput.history) // 2], 1)
        if throughput.history else None,
        "steps": result.global_step,
        "precision": precision.computed_in(trainer, precision_used),  # what the Accelerator ran
        # torch_compile: the first step pays for tracing and compiling; later steps should be faster.
        "compile_seconds": throughput.first_step_overhead() if args.torch_compile else None,
        "torch_compile": compiled.as_dict() if compiled else None,  # on or off, and why
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        "spike_events": guard.events if guard else [],
        "batch_ramp": ramp.summary(result.global_step) if ramp else None,
        "mixture": mixture,
    }
    publish.print_metrics(metrics, rank=args.process_index)

    # 6. Save the model in the library's own format, its card and run record; publish atomically.
    trainer.save_model(str(tmp))
    trainer.save_state()
    if not args.should_save:
        return
    saved_model.finish(tmp, tokenizer)  # use_cache on, tokenizer context = the model's, generation ids only
    heldout.write(tmp, held)  # what it held out: 07 and 10 evaluate on exactly these documents
    plot = cards.plot_curves(trainer.state.log_history, Path(tmp) / "loss.png", title="pretraining loss")
    card_metrics = {k: metrics[k] for k in ("eval_loss", "perplexity", "bits_per_byte")}
    publish.publish(
        tmp, final_dir, stage="03_pretrain", template="pretrain.md.jinja",
        name=f"fromscratch-{model_args.family}-{model_args.preset}",
        card=dict(results=cards.heldout_results(card_metrics, data_args.sources, from_validation_split=held_out_split),
                  tags=["pretraining", model_args.family], plot=plot.name if plot else None,
                  tokenizer_dir=data_args.tokenizer_dir, model_config=model_config.to_diff_dict()),
        config=config, lineage=lineage, metrics=metrics, started=started,
        parents=[{"spec": data_args.tokenizer_dir, "role": "tokenizer",
                  "sha256": runinfo.hash_path(Path(data_args.tokenizer_dir) / "tokenizer.json")}],
        what="model", summary=f"eval loss {metrics['initial_eval_loss']} -> {metrics['eval_loss']:.4f}, "
                              f"{metrics['bits_per_byte']:.4f} bits/byte",
        push=push, hub_model_id=args.hub_model_id, private=args.hub_private_repo,
    )


def model_config_for(model_args: ModelArguments, tokenizer, block_size: int):
    """The transformers config of the model to train: the preset's shape with any overrides, the tokenizer's ids."""
    model_config = build_config(
        model_args.family, model_args.preset, len(tokenizer), block_size,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=model_args.tie_word_embeddings, dropout=model_args.dropout, rope_theta=model_args.rope_theta,
        layers=model_args.layers, hidden=model_args.hidden, heads=model_args.heads, ffn=model_args.ffn,
        kv_heads=model_args.kv_heads,
    )
    model_config._attn_implementation = model_args.attn_implementation
    return model_config


def train(trainer: Trainer, args: PretrainArguments, tmp, model_config, fingerprint, guard, final_set):
    """Train; with --resume from the newest usable checkpoint in <output_dir>.tmp, first checked to be of this
    model's shape and data order. A run the spike guard gave up on stops with one line.

    Returns (train result, the step-0 evaluation, the evaluation of the trained model on `final_set`)."""
    checkpoint = artifacts.newest_checkpoint(tmp) if args.resume else None
    if args.resume:
        print(f"[resume] {'from ' + str(checkpoint) if checkpoint else 'no checkpoint yet: starting over'}")
    if checkpoint is not None:
        artifacts.check_checkpoint_shape(checkpoint, model_config)
        # the same samples at every step, or one line saying why not
        data_order.check(checkpoint, fingerprint, complete=trainer.args.should_save)
    result, initial = train_measuring_start(trainer, checkpoint)
    initial = eval_subset.at_start(trainer, initial)  # the untrained model on the final windows
    if guard and guard.gave_up:
        raise UserError(f"training diverged: {len(guard.events)} loss spikes ({guard.events[-1]}); lower "
                        f"learning_rate or raise warmup_steps, then --resume true continues from {tmp}")
    return result, initial, trainer.evaluate(eval_dataset=final_set)


if __name__ == "__main__":
    main()
