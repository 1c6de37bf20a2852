"""Stage 03's learning-rate schedule: warm up linearly, then decay to min_lr_ratio x the peak.

OPT's schedule (transformers' `polynomial` with power 1), or `cosine_with_min_lr` (Chinchilla's) as an option.
Pretraining (recipes/03_pretrain) and its small-scale experiments (sweeps, ablations) build it here, so a trial
trains with the schedule the full run will use. transformers takes the floor as `lr_scheduler_kwargs`.
"""

from __future__ import annotations

import json


def floor_kwargs(kind, learning_rate: float, min_lr_ratio: float, given: dict | str | None = None) -> dict:
    """`lr_scheduler_kwargs` that end the decay at min_lr_ratio x learning_rate (the peak); the user's own
    kwargs (`given`, a dict or the JSON string TrainingArguments also accepts) win."""
    kind = str(getattr(kind, "value", kind))
    kwargs = dict(json.loads(given) if isinstance(given, str) else given or {})
    if kind == "polynomial":
        kwargs.setdefault("lr_end", learning_rate * min_lr_ratio)
        kwargs.setdefault("power", 1.0)
    elif kind == "cosine_with_min_lr" and "min_lr" not in kwargs:
        kwargs.setdefault("min_lr_rate", min_lr_ratio)
    return kwargs


def apply(args, min_lr_ratio: float) -> None:
    """Set the floor on TrainingArguments `args`, before the Trainer builds its scheduler from them."""
    kind = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    if kind == "polynomial" and args.deepspeed_plugin is not None:
        # transformers' polynomial schedule reads optimizer.defaults, which DeepSpeed's ZeRO optimizer lacks.
        if args.process_index == 0:
            print("[schedule] polynomial does not run under DeepSpeed: using cosine_with_min_lr (same warmup and floor)")
        kind = args.lr_scheduler_type = "cosine_with_min_lr"
    args.lr_scheduler_kwargs = floor_kwargs(kind, args.learning_rate, min_lr_ratio, args.lr_scheduler_kwargs)
