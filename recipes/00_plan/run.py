"""Stage 00: plan a pretraining run from a budget (Chinchilla), and check that it fits the hardware.

    python recipes/00_plan/run.py --config recipes/00_plan/config.yaml --compute_flops 1.21e20
    python recipes/00_plan/run.py --config recipes/00_plan/config.yaml --params 1e9   (or --tokens 2e10)
    python recipes/00_plan/run.py --config recipes/00_plan/config.yaml --gpus 8 --gpu_type h100 --days 7 --mfu 0.4

Reads: nothing but the config (the token budget can be the size of a prepared dataset, given as --tokens).
Writes: <output_dir>/ with plan.json (flops, params, tokens, loss, shape, memory per strategy, batch, days),
pretrain.yaml (a ready-to-run stage-03 config for the planned shape: `make pretrain CONFIG=<output_dir>/pretrain.yaml`),
config.yaml and run_info.json; `--output_json FILE` also writes plan.json's content to FILE.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fromscratch import artifacts, memory, planning, runinfo
from fromscratch.config import UserError, checked, cli, parse, to_dict


@dataclass
class PlanArguments:
    compute_flops: float | None = checked(None, gt=0, help="training compute budget in FLOPs (C ~ 6 x params x tokens)")
    params: float | None = checked(None, gt=0, help="model size in parameters, embeddings included")
    tokens: float | None = checked(None, gt=0, help="training tokens (e.g. the size of the prepared dataset)")
    days: float | None = checked(None, gt=0,
        help="wall-clock budget: gpus x gpu_type peak x mfu x days becomes the compute budget")
    gpus: int = checked(8, ge=1, help="accelerators training together (data parallel)")
    gpu_type: str = field(default="h100", metadata={
        "help": "h100 h200 a100 a100_40gb l40s mi300x: peak bf16 FLOP/s and memory per GPU"})
    mfu: float = checked(0.4, gt=0, le=1,
        help="model FLOPs utilisation: 0.3-0.5 is typical for a well-tuned dense model")
    family: str = field(default="llama", metadata={
        "help": "llama or neox: the shape search counts that family's parameters exactly"})
    vocab_size: int = checked(32000, ge=1, help="the tokenizer's vocabulary size")
    tie_word_embeddings: bool = field(default=True, metadata={"help": "shared input/output embeddings (counted once)"})
    seq_len: int = checked(2048, ge=1, help="training sequence length (block_size in stage 03)")
    global_batch_tokens: int | None = checked(None, ge=1,
        help="tokens per optimizer step; null: GPT-3's batch for the planned size")
    precision: str = checked("bf16", choices=("bf16", "fp32"),
        help="bf16 (mixed precision on GPUs) or fp32: bytes per weight, gradient and activation")
    sources: list[str] = field(default_factory=lambda: ["outputs/01_data"], metadata={
        "help": "written into the pretraining config: the data to train on"})
    tokenizer_dir: str = field(default="outputs/02_tokenizer", metadata={
        "help": "written into the pretraining config: stage 02's output"})
    pretrain_output_dir: str = field(default="outputs/03_pretrain", metadata={
        "help": "written into the pretraining config: where the model goes"})
    output_dir: str = field(default="outputs/00_plan", metadata={
        "help": "plan.json and pretrain.yaml are written here"})
    overwrite: bool = field(default=True, metadata={"help": "a plan is cheap: replace the previous one"})
    output_json: str | None = field(default=None, metadata={"help": "also write plan.json's content to this file"})


@cli
def main():
    started = time.time()
    (args,) = parse((PlanArguments,))

    # 1. Check the question: exactly one kind of budget, and hardware we know.
    planning.peak_flops(args.gpu_type)
    flops = args.compute_flops
    if args.days is not None:
        if any(x is not None for x in (args.compute_flops, args.params, args.tokens)):
            raise UserError("--days is a compute budget: give it without --compute_flops, --params or --tokens")
        flops = planning.flops_for_hardware(args.gpus, args.gpu_type, args.days, args.mfu)
    tmp = artifacts.prepare(args.output_dir, overwrite=args.overwrite)

    # 2. Chinchilla: the compute-optimal size and data, and the loss the paper's fit expects.
    plan = planning.plan(compute_flops=flops, params=args.params, tokens=args.tokens)

    # 3. A concrete shape near that size (its exact count is what stage 03 will build).
    shape = planning.shape_for(plan.params, args.vocab_size, args.family, args.tie_word_embeddings)
    n_params = planning.parameters(shape, args.vocab_size, args.family, args.tie_word_embeddings)

    # 4. Batch: GPT-3's batch size for the size, in whole sequences, a power of two per GPU.
    target = args.global_batch_tokens or planning.batch_tokens(n_params, plan.tokens)
    per_gpu = 1 << max(0, round(math.log2(max(1.0, target / args.seq_len / args.gpus))))
    global_batch = per_gpu * args.gpus
    steps = max(1, math.ceil(plan.tokens / (global_batch * args.seq_len)))

    # 5. Memory per GPU for each strategy, and the cheapest one that fits.
    gpu_memory = planning.GPUS[args.gpu_type][1]
    rows = memory.fits(n_params, shape, args.vocab_size, args.seq_len, global_batch, args.gpus, gpu_memory,
                       args.precision)
    choice = memory.recommend(rows)

    # 6. Time at the assumed MFU (model FLOPs 6ND; checkpointing's recompute shows up as a lower MFU).
    train_flops = 6 * n_params * steps * global_batch * args.seq_len
    seconds = planning.wall_seconds(train_flops, args.gpus, args.gpu_type, args.mfu)

    result = {
        "flops": plan.flops, "params": plan.params, "tokens": plan.tokens, "loss": plan.loss, "basis": plan.basis,
        "tokens_per_param": plan.tokens / plan.params,
        "parametric_optimum": {"params": plan.parametric_params, "tokens": plan.parametric_tokens},
        "shape": {"family": args.family, **asdict(shape), "parameters": n_params,
                  "loss": planning.loss(n_params, plan.tokens)},
        "batch": {"seq_len": args.seq_len, "global_batch_sequences": global_batch,
                  "global_batch_tokens": global_batch * args.seq_len, "steps": steps,
                  "learning_rate": planning.learning_rate(n_params)},
        "hardware": {"gpus": args.gpus, "gpu_type": args.gpu_type, "gpu_memory_gib": gpu_memory, "mfu": args.mfu,
                     "train_flops": train_flops, "days": seconds / 86400},
        "memory": [{**asdict(r), "total": r.total} for r in rows],
        "recommended": asdict(choice) | {"accelerate_config": _accelerate_config(choice, args.gpus)} if choice else None,
    }
    print(report(result))

    # 7. Write the plan, a ready-to-run pretraining config, and the run record; publish atomically.
    (tmp / "plan.json").write_text(json.dumps(result, indent=2))
    (tmp / "pretrain.yaml").write_text(pretrain_yaml(args, result, shape, choice))
    runinfo.write_run_info(tmp, stage="00_plan", config=to_dict(args), lineage=[], started=started,
                           metrics={k: result[k] for k in ("flops", "params", "tokens", "loss")})
    out = artifacts.finish(tmp, args.output_dir)
    if args.output_json:
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_json).write_text(json.dumps(result, indent=2))
    launch = f" ACCELERATE_CONFIG=accelerate_configs/{result['recommended']['accelerate_config']}.yaml" if choice else ""
    print(f"[done] plan in {out}; train it with: make pretrain CONFIG={out}/pretrain.yaml{launch}")


def _accelerate_config(choice: memory.Fit, gpus: int) -> str:
    if choice.strategy == "ddp" and gpus == 1:
        return "single_gpu"
    return memory.ACCELERATE_CONFIGS[choice.strategy]


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def report(r: dict) -> str:
    s, b, hw = r["shape"], r["batch"], r["hardware"]
    lines = [
        f"Chinchilla plan ({r['basis']}): {r['flops']:.3g} FLOPs -> {_si(r['params'])} parameters x "
        f"{_si(r['tokens'])} tokens ({r['tokens_per_param']:.1f} tokens/parameter), expected loss {r['loss']:.3f}",
        f"  (the parametric fit alone would pick {_si(r['parametric_optimum']['params'])} x "
        f"{_si(r['parametric_optimum']['tokens'])})",
        f"Shape ({s['family']}): {s['layers']} layers, hidden {s['hidden']}, {s['heads']} heads "
        f"({s['kv_heads']} key/value), FFN {s['ffn']} -> {s['parameters']:,} parameters",
        f"Batch: {b['global_batch_sequences']} x {b['seq_len']} = {_si(b['global_batch_tokens'])} tokens, "
        f"{b['steps']:,} steps, peak LR {b['learning_rate']:.2g}",
        f"Time: {hw['gpus']} x {hw['gpu_type']} at {hw['mfu']:.0%} MFU -> {hw['days']:.2f} days "
        f"({hw['days'] * 24:.1f} hours, {hw['days'] * 1440:.3g} minutes)",
        f"Memory per GPU ({hw['gpu_memory_gib']} GiB; plans use 90% minus 1 GiB):",
        f"  {'strategy':<14}{'weights':>9}{'grads':>9}{'optim':>9}{'activ.':>9}{'total':>9}{'CPU':>9}"
        f"  micro x accum  checkpointing",
    ]
    for m in r["memory"]:
        gib = [f"{m[k] / memory.GIB:9.1f}" for k in ("weights", "gradients", "optimizer", "activations", "total", "cpu")]
        fit = f"{m['micro_batch']:>5} x {m['accumulation']:<5}  {'yes' if m['checkpointing'] else 'no'}" \
            if m["micro_batch"] else "  does not fit"
        lines.append(f"  {m['strategy']:<14}{''.join(gib)}  {fit}")
    rec = r["recommended"]
    lines.append(f"Recommended: {rec['strategy']} (accelerate_configs/{rec['accelerate_config']}.yaml), "
                 f"micro-batch {rec['micro_batch']} x accumulation {rec['accumulation']}"
                 + (", activation checkpointing" if rec["checkpointing"] else "")
                 if rec else "Recommended: nothing fits; add GPUs or pick a larger GPU")
    return "\n".join(lines)


def pretrain_yaml(args: PlanArguments, r: dict, shape, choice: memory.Fit | None) -> str:
    """A stage-03 config with the same keys as its config_tiny.yaml, every key commented."""
    s, b = r["shape"], r["batch"]
    micro, accum = (choice.micro_batch, choice.accumulation) if choice else (1, b["global_batch_sequences"] // args.gpus)
    steps = b["steps"]
    every = max(10, steps // 20)
    launch = f" ACCELERATE_CONFIG=accelerate_configs/{r['recommended']['accelerate_config']}.yaml" if choice else ""
    preset = planning.nearest_preset(shape)
    lines = [
        f"# Planned by recipes/00_plan: {_si(s['parameters'])} parameters x {_si(r['tokens'])} tokens "
        f"({r['flops']:.3g} FLOPs), expected loss {s['loss']:.3f};",
        f"# {args.gpus} x {args.gpu_type} at {args.mfu:.0%} MFU: {r['hardware']['days']:.2f} days. "
        f"Run: make pretrain CONFIG=<this file>{launch}",
        "# Model",
        f"family: {args.family}                  # llama (RoPE, SwiGLU, RMSNorm) or neox",
        f"preset: {preset}                  # the nearest preset; the five keys below override its shape",
        f"layers: {shape.layers}                     # transformer blocks",
        f"hidden: {shape.hidden}                   # model width",
        f"heads: {shape.heads}                     # attention heads (head size hidden/heads)",
        f"kv_heads: {shape.kv_heads}                  # key/value heads (fewer than heads: grouped-query attention)",
        f"ffn: {shape.ffn}                      # feed-forward width",
        f"tie_word_embeddings: {str(args.tie_word_embeddings).lower()}      # planned count assumes this",
        "dropout: 0.0                   # single-epoch pretraining rarely needs it",
        "attn_implementation: sdpa      # PyTorch scaled_dot_product_attention (flash kernels on GPU)",
        "# Data",
        f"sources: {json.dumps(args.sources)}  # default[:name], a local path, a Hub dataset id, or outputs/01_data",
        f"tokenizer_dir: {args.tokenizer_dir}  # stage 02's output; its vocabulary ({args.vocab_size}) was planned for",
        f"block_size: {args.seq_len}               # tokens per packed training sequence",
        "validation_fraction: 0.005     # share of documents held out for validation loss and bits per byte",
        "# Loss-spike guard: roll back, skip the batches, lower the LR (src/fromscratch/callbacks.py)",
        "spike_guard: true              # on: a spike costs a reload instead of a run (rolls back under DDP only)",
        "spike_window: 20               # logged losses in the rolling median",
        "spike_threshold: 0.5           # a spike is a loss above (1 + this) x that median, or non-finite",
        "spike_lr_factor: 0.5           # learning rate multiplier after each rollback",
        "spike_max_rollbacks: 3         # then stop with a clear message instead of looping",
        "# Batch-size ramp (src/fromscratch/batch_ramp.py)",
        "batch_ramp_tokens: 0           # grow the global batch over this many tokens (0: the planned batch from step 1)",
        "batch_ramp_start: 0            # global batch (sequences) at step 1; 0: an eighth of the target",
        "# Training (transformers TrainingArguments)",
        f"output_dir: {args.pretrain_output_dir}  # final folder; the run works in <output_dir>.tmp until finished",
        "overwrite: false               # replace a finished output",
        "resume: auto                   # continue the newest checkpoint in <output_dir>.tmp if any (requeued after preemption)",
        "use_cpu: false                 # train on the GPUs (on a machine without one: the CPU, said in one line)",
        "precision: auto                # bf16 where the hardware has it natively (every recent GPU)",
        "seed: 0                        # model init, data order, validation split",
        "num_train_epochs: 1            # an upper bound: max_steps below ends the run",
        f"max_steps: {steps}               # the planned tokens / tokens per optimizer step",
        f"per_device_train_batch_size: {micro}  # sequences per GPU per micro-step (fits the memory plan)",
        f"per_device_eval_batch_size: {micro}   # evaluation fits whatever training fits",
        f"gradient_accumulation_steps: {accum}  # micro-steps per optimizer step: global batch "
        f"{b['global_batch_sequences']} sequences on {args.gpus} GPUs",
        f"activation_checkpointing: {str(bool(choice and choice.checkpointing)).lower()}  "
        "# recompute activations in backward (needed only when the memory plan says so)",
        f"learning_rate: {b['learning_rate']:.2g}          # peak LR, GPT-3's for this size",
        "min_lr_ratio: 0.1              # decay to 10% of the peak, as Chinchilla did",
        "lr_scheduler_type: cosine_with_min_lr  # cosine to min_lr_ratio over the planned steps (Chinchilla)",
        f"warmup_steps: {0.01 if steps > 10000 else 0.05}           # share of the steps spent warming up",
        "weight_decay: 0.1              # AdamW decoupled weight decay",
        "adam_beta2: 0.95               # steadier with large batches and LRs (GPT-3, Llama)",
        "max_grad_norm: 1.0             # gradient clipping",
        f"logging_steps: {max(1, min(100, steps // 100))}               # log loss and tokens/s every N steps",
        "eval_strategy: steps           # evaluate during training...",
        f"eval_steps: {every}              # ...every N steps",
        "save_strategy: steps           # checkpoint during training...",
        f"save_steps: {every}              # ...every N steps (resume with --resume true)",
        "save_total_limit: 2            # keep only the newest checkpoints",
        "report_to: [tensorboard]       # also: wandb",
        "dataloader_num_workers: 0      # packed blocks need no preprocessing workers",
        "optim: adamw_torch_fused       # one fused kernel per step instead of a loop over parameters",
        "torch_compile: auto            # on where the run repays the compile here (src/fromscratch/torch_compile.py)",
        "push_to_hub: false             # upload the finished folder with its card",
        "hub_model_id: null             # namespace/name on the Hub when pushing",
    ]
    return "\n".join(_align(line) for line in lines) + "\n"


def _align(line: str) -> str:
    """`key: value` padded so the comments line up, as in the hand-written configs."""
    if line.startswith("#") or " # " not in line:
        return line
    entry, comment = line.split(" # ", 1)
    return f"{entry.rstrip():<30} # {comment}"


if __name__ == "__main__":
    main()
