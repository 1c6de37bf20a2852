"""The keys every Trainer-based stage (pretrain, SFT, reward, RLHF) adds to its library's config class.

Mixed in before TrainingArguments / SFTConfig / RewardConfig / PPOConfig..., so these defaults win:

    @dataclass
    class SFTArguments(StageArguments, SFTConfig):
        output_dir: str = "outputs/04_sft"

`overwrite` and `resume` are read by `artifacts.start_training_output`, `precision` by `precision.apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageArguments:
    overwrite: bool = field(default=False, metadata={"help": "replace a finished output (never by accident)"})
    resume: bool = field(default=False, metadata={"help": "continue the newest checkpoint in <output_dir>.tmp"})
    precision: str = field(default="auto", metadata={
        "help": "auto | bf16 | fp16 | fp32 (auto: what the hardware computes natively)"})
    bf16: bool | None = field(default=False, metadata={
        "help": "decided by `precision` (TRL's default True fails on CPUs)"})
