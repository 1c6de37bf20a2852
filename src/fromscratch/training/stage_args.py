"""The keys every Trainer-based stage (pretrain, SFT, reward, RLHF) adds to its library's config class.

Mixed in before TrainingArguments / SFTConfig / RewardConfig / PPOConfig..., so these defaults win:

    @dataclass
    class SFTArguments(StageArguments, SFTConfig):
        output_dir: str = "outputs/04_sft"

`overwrite` and `resume` are read by `artifacts.start_training_output`, `precision` (with bf16/fp16 and
use_cpu) is settled by `precision.settle_argv` before the parser builds the config (config.parse calls it).
`value_checks` declares the range of the library's own keys once for every stage (`config.parse` rejects a
value outside it at start, in one line): the libraries accept `max_steps 0` or a negative learning rate and
fail, or silently train nothing, much later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..config import Check, checked
from . import precision as _precision

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


_POSITIVE_INT = Check(ge=1)
_STEPS = Check(gt=0, why="a count of steps, or a ratio of the run when below 1")

LIBRARY_CHECKS: dict[str, Check] = {
    "max_steps": Check(ge=1, also=(-1,), why="-1: train for num_train_epochs"),
    "num_train_epochs": Check(gt=0),
    "per_device_train_batch_size": _POSITIVE_INT,
    "per_device_eval_batch_size": _POSITIVE_INT,
    "gradient_accumulation_steps": _POSITIVE_INT,
    "learning_rate": Check(gt=0),
    "weight_decay": Check(ge=0),
    "max_grad_norm": Check(ge=0, why="0: no clipping"),
    "adam_beta1": Check(ge=0, lt=1),
    "adam_beta2": Check(ge=0, lt=1),
    "adam_epsilon": Check(gt=0),
    "warmup_steps": Check(ge=0),
    "logging_steps": _STEPS,
    "eval_steps": _STEPS,
    "save_steps": _STEPS,
    "save_total_limit": Check(ge=1),
    "max_length": _POSITIVE_INT,  # TRL: tokens per sequence
    "max_prompt_length": _POSITIVE_INT,
    "max_completion_length": _POSITIVE_INT,
    "num_generations": Check(ge=2, why="GRPO and RLOO compare a prompt's answers with each other"),
    "beta": Check(ge=0),
    "temperature": Check(gt=0),
    # trl's PPOConfig: 0 episodes or 0 epochs train nothing and still publish a policy
    "total_episodes": _POSITIVE_INT,
    "num_ppo_epochs": _POSITIVE_INT,
    "num_mini_batches": _POSITIVE_INT,
    "local_rollout_forward_batch_size": _POSITIVE_INT,
    "response_length": _POSITIVE_INT,
    "kl_coef": Check(ge=0),
    "cliprange": Check(gt=0),
    "cliprange_value": Check(gt=0),
    "vf_coef": Check(ge=0),
    "dataloader_num_workers": Check(ge=0),
}



@dataclass
class StageArguments:
    value_checks: ClassVar[dict[str, Check]] = LIBRARY_CHECKS

    overwrite: bool = field(default=False, metadata={"help": "replace a finished output (never by accident)"})
    # true: continue the newest checkpoint in <output_dir>.tmp (there must be one); auto: continue it if there
    # is one, else start fresh (what a requeued cluster job wants); false: refuse to touch an unfinished run
    resume: ResumeMode = field(default=False, metadata={"help": "auto | true | false"})
    precision: str = checked("auto", choices=("auto", "bf16", "fp16", "fp32"),
                             help="auto: what the hardware computes natively")
    bf16: bool | None = field(default=False, metadata={
        "help": "decided by `precision` (TRL's default True fails on CPUs)"})

    def __post_init__(self):
        self.resume = resume_value(self.resume)
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()

    settle_argv = staticmethod(_precision.settle_argv)  # not a field: a hook config.parse calls before building
