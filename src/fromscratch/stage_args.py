"""The keys every Trainer-based stage (pretrain, SFT, reward, RLHF) adds to its library's config class.

Mixed in before TrainingArguments / SFTConfig / RewardConfig / PPOConfig..., so these defaults win:

    @dataclass
    class SFTArguments(StageArguments, SFTConfig):
        output_dir: str = "outputs/04_sft"

`overwrite` and `resume` are read by `artifacts.start_training_output`. `precision` (with bf16/fp16 and use_cpu)
is settled by `precision.settle_argv` before the parser builds the config: config.parse calls `settle_argv`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import precision as _precision


@dataclass
class StageArguments:
    overwrite: bool = False  # replace a finished output (never by accident)
    resume: bool = False  # continue the newest checkpoint in <output_dir>.tmp
    precision: str = "auto"  # auto | bf16 | fp16 | fp32 (auto: what the hardware computes natively)
    bf16: bool | None = False  # decided by `precision` (TRL's default True fails on CPUs)

    settle_argv = staticmethod(_precision.settle_argv)  # not a field: a hook config.parse calls before building
