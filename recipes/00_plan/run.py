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

from fromscratch import artifacts, commented_yaml, memory, planning, runinfo
from fromscratch.config import UserError, checked, cli, parse, to_dict

STAGE03 = Path(__file__).resolve().parents[1] / "03_pretrain" / "config_tiny.yaml"  # keys, comments, defaults


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
    """Stage 03's config_tiny.yaml with the planned values: its keys, order and comments (stage 03's own)."""
    s, b = r["shape"], r["batch"]
    micro, accum = (choice.micro_batch, choice.accumulation) if choice else (1, b["global_batch_sequences"] // args.gpus)
    steps = b["steps"]
    every = max(10, steps // 20)
    checkpointing = bool(choice and choice.checkpointing)
    launch = f" ACCELERATE_CONFIG=accelerate_configs/{r['recommended']['accelerate_config']}.yaml" if choice else ""
    preset = planning.nearest_preset(shape)
    header = [
        f"# Planned by recipes/00_plan: {_si(s['parameters'])} parameters x {_si(r['tokens'])} tokens "
        f"({r['flops']:.3g} FLOPs), expected loss {s['loss']:.3f};",
        f"# {args.gpus} x {args.gpu_type} at {args.mfu:.0%} MFU: {r['hardware']['days']:.2f} days. "
        f"Run: make pretrain CONFIG=<this file>{launch}",
        f"# The plan's values: the shape found for the size (preset {preset} is the nearest), a {args.vocab_size}-token "
        "vocabulary in tokenizer_dir,",
        f"# GPT-3's batch and peak LR for the size: {b['global_batch_sequences']} sequences = {micro} per GPU x {accum} "
        f"accumulation x {args.gpus} GPUs, which fits the memory plan"
        + (" with activation checkpointing;" if checkpointing else ";"),
        "# max_steps = the planned tokens / tokens per step; the other keys are stage 03's defaults.",
    ]
    values = {
        "family": args.family, "preset": preset, "layers": shape.layers, "hidden": shape.hidden, "heads": shape.heads,
        "kv_heads": shape.kv_heads, "ffn": shape.ffn, "tie_word_embeddings": args.tie_word_embeddings,
        "sources": args.sources, "tokenizer_dir": args.tokenizer_dir, "block_size": args.seq_len,
        "validation_fraction": 0.005, "output_dir": args.pretrain_output_dir, "resume": "auto", "use_cpu": False,
        "precision": "auto", "max_steps": steps, "per_device_train_batch_size": micro,
        "per_device_eval_batch_size": micro, "gradient_accumulation_steps": accum,
        "activation_checkpointing": checkpointing, "learning_rate": float(f"{b['learning_rate']:.2g}"),
        "min_lr_ratio": 0.1, "lr_scheduler_type": "cosine_with_min_lr", "warmup_steps": 0.01 if steps > 10000 else 0.05,
        "logging_steps": max(1, min(100, steps // 100)), "eval_strategy": "steps", "eval_steps": every,
        "eval_tokens": min(10_485_760, max(args.seq_len, int(r["tokens"] * 0.005))),  # modded-nanogpt's val_tokens
        "final_eval_tokens": min(41_943_040, max(args.seq_len, int(r["tokens"] * 0.005))),  # nanochat's eval_tokens
        "save_strategy": "steps", "save_steps": every,
    }
    return commented_yaml.substitute(STAGE03, values, commented_yaml.comments(STAGE03), header)


if __name__ == "__main__":
    main()
