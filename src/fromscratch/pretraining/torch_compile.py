"""`torch_compile: auto` in the pretraining configs: compile where the run is long enough to repay the compile.

torch.compile makes each training step faster but pays a compile before the first one. Whether that pays
depends on the hardware (measured with `make bench`, tiny preset, bf16, one 2-core EPYC each):

| hardware                     | compiled step vs eager | cold compile            | source                       |
|------------------------------|------------------------|-------------------------|------------------------------|
| CPU with AVX512-BF16 or AMX  | 1.47x                  | 25 s (whole model)      | issue 19, `make bench`       |
| CPU without (AVX2)           | 0.91x: never pays      | 29 s (whole model)      | README, `make bench`         |
| NVIDIA GPU                   | 1.3x (assumed)         | 60 s (assumed)          | not measured: no GPU yet     |

(the GPU row is conservative: nanoGPT reports 250 -> 135 ms/iter on an A100; `make bench-gpu` measures it.)

The rule for `auto`: on when the run's eager training time, estimated as planned tokens x FLOPs per token
(6 N + 12 L H T) / the eager FLOP rate of the hardware, would shrink by at least twice the compile time
(time x (1 - 1/speed-up) >= 2 x compile seconds; twice, because the estimate is rough). Off on hardware
without a row, under DeepSpeed (not measured), and with a batch-size ramp (each new batch shape recompiles).
`true` and `false` are obeyed. The decision and its reason go to the log and the run's metrics (card, run_info).

When on, the whole model is compiled. Regional compilation (accelerate's compile_regions: each repeated block
compiled once and reused, as torchtitan and OLMo-core do) did not shorten the cold compile of the tiny preset
here: first step +108 s regional vs +112 s whole model, and its steady step was slower (6.4 vs 1.6 s), one run
each on a heavily shared 2-core AVX512-BF16 EPYC (load 8-14), so it stays off (REGIONAL below); deeper models
may differ: `make bench` with BENCH_REGIONAL=1 measures it. The training set is cut to whole global batches so
that no last, smaller batch recompiles the graph.
Evaluation needs nothing: the Trainer (5.24) evaluates the uncompiled module (`trainer.model`), so eval
batches never trigger a compile (tests/pretraining/test_torch_compile.py counts the graphs).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import torch

from ..training import precision


class CompileSwitch(str):
    """auto | true | false, from the YAML (a bool or a string) or the command line."""

    def __new__(cls, value):
        v = str(value).strip().lower()
        if v not in ("auto", "true", "false"):
            raise ValueError(f"torch_compile must be auto, true or false, got '{value}'")
        return super().__new__(cls, v)


@dataclass
class CompileArguments:
    """Mixed in before TrainingArguments: `torch_compile` takes `auto`; the library still sees a bool."""

    torch_compile: CompileSwitch = field(default=CompileSwitch("auto"), metadata={
        "help": "auto: compile where the run repays the compile on this hardware; true/false force it"})

    def __post_init__(self):
        self.torch_compile_request = CompileSwitch(self.torch_compile)  # not a field: what the config asked for
        self.torch_compile = self.torch_compile_request == "true"  # auto is decided once the run's size is known
        super().__post_init__()

    def to_dict(self) -> dict:  # the saved config keeps the request (auto), so a rerun decides again
        return {**super().to_dict(), "torch_compile": str(self.torch_compile_request)}


@dataclass(frozen=True)
class Payback:
    speedup: float  # compiled tokens/s over eager tokens/s
    compile_seconds: float  # cold compile of the tiny..1B shapes
    eager_flops_per_thread: float | None  # CPU rows: achieved eager FLOP/s per torch thread (bf16)
    source: str


HARDWARE = {
    "cpu-bf16": Payback(1.47, 25.0, 7.5e10, "make bench, 2-core AVX512-BF16 EPYC (15,890 -> 23,380 tokens/s)"),
    "cpu": Payback(0.91, 29.4, None, "make bench, 2-core AVX2 EPYC (8,964 -> 8,166 tokens/s)"),
    "cuda": Payback(1.3, 60.0, None, "assumed (nanoGPT: 1.85x on A100); make bench-gpu measures it"),
}
GPU_MFU = 0.35  # eager model FLOPs utilisation assumed for the GPU time estimate
# accelerate's regional compilation (compile_regions): off, measured no shorter here (module docstring); a user
# turns it on with ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION=true, and the decision records it.
REGIONAL = False


@dataclass
class Decision:
    on: bool
    requested: str
    reason: str
    regional: bool = False
    dropped_blocks: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def hardware_kind(use_cpu: bool) -> str:
    if torch.cuda.is_available() and not use_cpu:
        return "cuda"
    if precision.accelerator_present() and not use_cpu:
        return "other accelerator"
    return "cpu-bf16" if precision.bf16_is_fast(use_cpu=True) else "cpu"


def flops_per_token(parameters: int, layers: int, hidden: int, context: int) -> float:
    """Training FLOPs per token: 6 N for the weights (forward + backward) plus 12 L H T for attention scores."""
    return 6 * parameters + 12 * layers * hidden * context


def eager_flops(kind: str) -> float | None:
    row = HARDWARE.get(kind)
    if kind == "cuda":
        from ..planning import GPUS

        name = torch.cuda.get_device_name(0).lower()
        peak = next((p for key, (p, _) in GPUS.items() if key.split("_")[0] in name), 312e12)  # unknown: A100
        return peak * GPU_MFU
    if row and row.eager_flops_per_thread:
        return row.eager_flops_per_thread * torch.get_num_threads()
    return None


def decide(requested: str, kind: str, train_tokens: float, per_token: float, *, deepspeed: bool = False,
           batch_ramp: bool = False) -> Decision:
    requested = CompileSwitch(requested)
    if requested != "auto":
        return Decision(requested == "true", requested, "set in the config")
    row, rate = HARDWARE.get(kind), eager_flops(kind)
    if deepspeed or batch_ramp:
        return Decision(False, requested, "DeepSpeed: not measured" if deepspeed
                        else "a batch-size ramp changes the batch shape (each shape recompiles)")
    if row is None or rate is None:
        why = f"{row.speedup:.2f}x compiled on {kind} ({row.source})" if row else f"no measurement for {kind}"
        return Decision(False, requested, why)
    eager = train_tokens * per_token / rate
    saved = eager * (1 - 1 / row.speedup)
    on = saved >= 2 * row.compile_seconds
    return Decision(on, requested, f"{kind}: ~{eager:.3g} s eager for {train_tokens:.3g} tokens, compiled "
                    f"{row.speedup:.2f}x saves ~{saved:.3g} s {'>=' if on else '<'} 2 x {row.compile_seconds:.0f} s "
                    f"compile ({row.source})")


def planned_steps(args, train_blocks: int) -> int:
    if args.max_steps and args.max_steps > 0:
        return int(args.max_steps)
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    return math.ceil(train_blocks / per_step * args.num_train_epochs)


def settle(args, model, train_set, tokens_per_step: int, *, batch_ramp: bool = False):
    """Decide `torch_compile` for this run, set it on `args` as TrainingArguments.__post_init__ would, print
    the decision; when on, cut `train_set` to whole global batches. Returns (train_set, Decision)."""
    cfg = model.config
    block = tokens_per_step // (args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size)
    per_token = flops_per_token(sum(p.numel() for p in model.parameters()), cfg.num_hidden_layers, cfg.hidden_size,
                                block)
    request = getattr(args, "torch_compile_request", CompileSwitch(args.torch_compile))
    decision = decide(request, hardware_kind(args.use_cpu), planned_steps(args, len(train_set)) * tokens_per_step,
                      per_token, deepspeed=args.deepspeed_plugin is not None, batch_ramp=batch_ramp)
    if decision.on:
        args.torch_compile = True
        args.torch_compile_backend = args.torch_compile_backend or "inductor"  # as __post_init__ sets it
        if torch.cuda.is_available() and not args.use_cpu and (args.tf32 is None and not args.fp16 or args.bf16):
            from transformers.utils.import_utils import enable_tf32, is_torch_tf32_available

            if is_torch_tf32_available():  # __post_init__ turns TF32 on for compiled runs too
                enable_tf32(True)
        if REGIONAL:  # read by accelerate's TorchDynamoPlugin, which the Trainer builds with the default (None)
            os.environ.setdefault("ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION", "true")
        decision.regional = os.environ.get("ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION", "").lower() in ("1", "true")
        whole = args.per_device_train_batch_size * args.world_size
        decision.dropped_blocks = len(train_set) % whole
        if decision.dropped_blocks:
            keep = range(len(train_set) - decision.dropped_blocks)
            train_set = train_set.select(keep) if hasattr(train_set, "select") else torch.utils.data.Subset(train_set, keep)
    if args.process_index == 0:
        print(f"[compile] torch_compile {decision.requested} -> {'on' if decision.on else 'off'}: {decision.reason}"
              + (", regional (per block)" if decision.regional else "")
              + (f"; {decision.dropped_blocks} blocks left out for whole batches" if decision.dropped_blocks else ""),
              flush=True)
    return train_set, decision


def experiment_switch(value) -> bool:
    """Sweeps and ablations (many short trials, each compiling anew, below the break-even): auto means off."""
    return CompileSwitch(value) == "true"
