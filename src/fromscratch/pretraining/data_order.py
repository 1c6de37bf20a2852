"""The data-order fingerprint: what fixes which sample each step sees, stored with every checkpoint.

The Trainer resumes by skipping as many batches as were done, through a sampler reseeded from the seed. That
is exact only if the data and everything that orders it are unchanged: the shards (names, sizes, sha256), seed
and data_seed, world size, batch sizes, block size, mixture. A resume that changed any of them would silently
train on another order (some samples twice, some never); `check` refuses it in one line instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback

from ..config import UserError

FILE = "data_fingerprint.json"


def fingerprint(args, data: list, block_size: int, **extra) -> dict:
    return {"data": data, "seed": args.seed, "data_seed": args.data_seed, "world_size": args.world_size,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps, "block_size": block_size, **extra}


def _write(folder: Path, fp: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (FILE + ".part")
    part.write_text(json.dumps(fp, indent=1))
    part.rename(folder / FILE)


class DataOrderCallback(TrainerCallback):
    """Writes the fingerprint into the run folder at the start and into every checkpoint the Trainer saves."""

    def __init__(self, fp: dict):
        self.fp = fp

    def on_train_begin(self, args, state, control, **kwargs):
        if args.should_save:
            _write(Path(args.output_dir), self.fp)

    def on_save(self, args, state, control, **kwargs):
        if args.should_save:
            _write(Path(args.output_dir) / f"checkpoint-{state.global_step}", self.fp)


def check(checkpoint: Path, fp: dict, complete: bool = True) -> None:
    """Refuse to resume `checkpoint` under another data order. A checkpoint cut before its fingerprint was
    written (a kill between trainer_state.json and on_save) is checked against the run's own copy, which is
    then written into it (by the process that saves, `complete`), so that every checkpoint a resumed run leaves
    names its data order."""
    path = next((p for p in (checkpoint / FILE, checkpoint.parent / FILE) if p.is_file()), None)
    if path is None:
        print(f"[resume] {checkpoint} has no {FILE} (written by an older version): data order not checked")
        return
    saved = json.loads(path.read_text())
    ours = json.loads(json.dumps(fp))  # the same JSON types as the saved copy
    diff = [k if k == "data" else f"{k} {saved.get(k)} -> {ours.get(k)}"
            for k in sorted(set(saved) | set(ours)) if saved.get(k) != ours.get(k)]
    if diff:
        what = ", ".join("data (other shards, sources or mixture)" if d == "data" else d for d in diff)
        raise UserError(f"{checkpoint} was trained with another data order ({what}): resume with the settings it "
                        "was started with, or pass --overwrite true to start over")
    if complete and path != checkpoint / FILE:  # vouched for by the run's copy: from now on it carries its own
        _write(checkpoint, fp)
