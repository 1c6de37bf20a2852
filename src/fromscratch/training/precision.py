"""Pick the fastest correct precision for the hardware at hand (`precision: auto` in every training YAML).

bf16 autocast is a win on GPUs with bf16 and on CPUs with native bf16 (AVX512-BF16 or AMX), but on a CPU
without them it is emulated: measured here on an AVX2-only EPYC, a 1.3M-parameter Llama ran 485 tokens/s in
bf16 against 6,100 in fp32 (12x slower). So `auto` asks the hardware instead of assuming.

The choice is made before the config object is built, never patched in after: TrainingArguments and every TRL
config derive state from bf16/fp16 and use_cpu in their __post_init__ (mixed_precision, the device, DeepSpeed's
"auto" values, GRPO/RLOO's generation_batch_size from steps_per_generation), and running it a second time on
derived values fails (issue 22). `StageArguments.settle_argv` hands the choice to the parser as overrides; code
that builds TrainingArguments itself passes `choose(...).kwargs()`.

A config written for GPUs (`use_cpu: false`, e.g. 00_plan's emitted YAML) on a machine without one trains on
the CPU, as the CPU config would (use_cpu true, so a launcher runs real gloo DDP), in the CPU's precision, and
says so in one printed line. transformers would otherwise refuse bf16 ("Your setup doesn't support bf16/gpu").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..config import UserError, peek

CHOICES = ("auto", "fp32", "bf16", "fp16")


def bf16_is_fast(use_cpu: bool) -> bool:
    """The hardware check (tests force either answer through this seam)."""
    if torch.cuda.is_available() and not use_cpu:
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def accelerator_present() -> bool:
    """Is there a device a `use_cpu: false` config can train on (the seam for the GPU-plan-on-CPU tests)?"""
    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or bool(xpu and xpu.is_available()) or torch.backends.mps.is_available()


def resolve(precision: str, use_cpu: bool) -> str:
    if precision not in CHOICES:
        raise UserError(f"precision must be one of {', '.join(CHOICES)}, got '{precision}'")
    if precision == "auto":
        return "bf16" if bf16_is_fast(use_cpu) else "fp32"
    return precision


@dataclass(frozen=True)
class Choice:
    precision: str  # fp32 | bf16 | fp16
    use_cpu: bool
    note: str | None = None  # one line for the log when the config's use_cpu was overruled

    def kwargs(self) -> dict:
        return {"use_cpu": self.use_cpu, "bf16": self.precision == "bf16", "fp16": self.precision == "fp16"}

    def argv(self) -> list[str]:
        return [x for k, v in self.kwargs().items() for x in (f"--{k}", str(v).lower())]


def choose(precision: str, use_cpu: bool) -> Choice:
    note = None
    if not use_cpu and not accelerator_present():
        use_cpu = True
        note = "use_cpu: false (a GPU config) but no GPU here: training on the CPU instead (use_cpu true)"
    chosen = resolve(precision, use_cpu)
    if note:
        note += f", in {chosen}" + (" (native bf16 on this CPU)" if chosen == "bf16" and precision == "auto" else "")
    return Choice(chosen, use_cpu, note)


def _flag(value: str) -> bool:
    return value.startswith("--") or value.strip().lower() in ("true", "1", "yes")  # a bare `--use_cpu` is true


def settle_argv(argv: list[str]) -> list[str]:
    """`argv` plus the resolved --use_cpu/--bf16/--fp16 (last on the line, so they win over the YAML)."""
    choice = choose(peek("precision", "auto", argv), _flag(peek("use_cpu", "false", argv)))
    if choice.note and os.environ.get("RANK", "0") == "0":
        print(f"[precision] {choice.note}", flush=True)
    return [*argv, *choice.argv()]


def apply(args, precision: str):
    """Return (args, the precision they were built with), unchanged: the choice was settled before building.

    Raises if `args` disagree with `precision` (built without settle_argv or choose): patching them here would
    re-run their __post_init__, which TRL's configs do not survive."""
    chosen = resolve(precision, bool(getattr(args, "use_cpu", False)))
    built = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    if built != chosen:
        raise RuntimeError(f"arguments built in {built} but precision '{precision}' resolves to {chosen}: build them "
                           "through config.parse (StageArguments) or with precision.choose(...).kwargs()")
    return args, chosen


# accelerate's name for each precision (its `mixed_precision`); the others are spelled the same
_ACCELERATE_NAME = {"fp32": "no"}


def tell_accelerate(settled: str) -> None:
    """Make an Accelerator that a trainer builds for itself run in the `settled` precision. TRL 1.12's PPOTrainer
    builds `Accelerator()` without the config's bf16/fp16, so it ran in fp32 while the run said bf16 (measured: 16
    updates gave the same scores to the last digit with bf16 and fp32). ACCELERATE_MIXED_PRECISION is how
    `accelerate launch --mixed_precision` tells an Accelerator; the stage's `precision` key wins over the launcher's."""
    os.environ["ACCELERATE_MIXED_PRECISION"] = _ACCELERATE_NAME.get(settled, settled)


def computed_in(trainer, settled: str) -> str:
    """The precision `trainer`'s Accelerator computes in, for the run record; it must be the `settled` one.
    A trainer that builds its own Accelerator can miss the config's bf16 (see tell_accelerate), so the record is
    read off the Accelerator, not the config."""
    ran = {v: k for k, v in _ACCELERATE_NAME.items()}.get(trainer.accelerator.mixed_precision,
                                                          trainer.accelerator.mixed_precision)
    if ran != settled:
        raise RuntimeError(f"precision settled as {settled} but the trainer's Accelerator ran {ran}")
    return ran
