"""The keys every Trainer-based stage (pretrain, SFT, reward, RLHF) adds to its library's config class.

Mixed in before TrainingArguments / SFTConfig / RewardConfig / PPOConfig..., so these defaults win:

    @dataclass
    class SFTArguments(StageArguments, SFTConfig):
        output_dir: str = "outputs/04_sft"

`overwrite` and `resume` are read by `artifacts.start_training_output`, `precision` by `precision.apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_RESUME = {"auto": "auto", "true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def resume_value(value) -> bool | str:
    """`resume` as the code reads it: True, False or "auto" (YAML gives bools, the command line strings)."""
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower()
    if key not in _RESUME:
        raise ValueError(f"resume must be auto, true or false, got {value!r}")
    return _RESUME[key]


class ResumeMode:
    """The annotation of `resume`: argparse calls it on the command-line string (HfArgumentParser would force a
    `bool | str` field to bool and refuse "auto")."""

    def __new__(cls, value):
        return resume_value(value)


@dataclass
class StageArguments:
    overwrite: bool = False  # replace a finished output (never by accident)
    # true: continue the newest checkpoint in <output_dir>.tmp (there must be one); auto: continue it if there
    # is one, else start fresh (what a requeued cluster job wants); false: refuse to touch an unfinished run
    resume: ResumeMode = field(default=False, metadata={"help": "auto | true | false"})
    precision: str = "auto"  # auto | bf16 | fp16 | fp32 (auto: what the hardware computes natively)
    bf16: bool | None = False  # decided by `precision` (TRL's default True fails on CPUs)

    def __post_init__(self):
        self.resume = resume_value(self.resume)
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
