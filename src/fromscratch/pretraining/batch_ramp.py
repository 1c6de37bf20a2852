"""Batch-size ramp: grow the global batch from a start size to the target over the first N training tokens.

GPT-3 grew its batch linearly over the first billions of tokens: small batches while the loss falls fast (each
token buys more), large ones once the gradient noise dominates. The Trainer fixes the number of micro-steps per
optimizer step for a whole run (its loop, scheduler and resume skipping assume it), so the ramp changes the
*size* of each micro-batch instead: every optimizer step still has `gradient_accumulation_steps` micro-batches per
process, and during the ramp they hold fewer sequences. The Trainer normalises the loss by the tokens in the
whole accumulation window, so a smaller step is an exact smaller-batch step, and memory only shrinks.

The sampler subclasses transformers' `BatchRebalanceSampler`, which the Trainer already passes to the DataLoader as
a `batch_sampler` and leaves unsharded: like it, every process computes the same shuffled global batch from the
shared seed and keeps its own slice, with no communication.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainerCallback
from transformers.trainer_pt_utils import BatchRebalanceSampler

from ..config import UserError, checked


@dataclass
class BatchRampArguments:
    batch_ramp_tokens: int = checked(0, ge=0,
        help="training tokens over which the global batch grows to its target (0: no ramp)")
    batch_ramp_start: int = checked(0, ge=0,
        help="global batch (sequences) at the first step; 0: an eighth of the target")


class RampBatchSampler(BatchRebalanceSampler):
    """Yields this process's micro-batches (lists of indices); the global batch grows linearly in tokens seen."""

    def __init__(self, n_samples: int, block_size: int, start: int, target: int, ramp_tokens: int,
                 dp_size: int = 1, grad_accum: int = 1, seed: int = 0, rank: int = 0):
        self.n, self.block_size = n_samples, block_size
        self.start, self.target, self.ramp_tokens = start, target, ramp_tokens
        self.dp_size, self.grad_accum, self.seed, self.rank = dp_size, grad_accum, seed, rank
        self.epoch = 0
        self.slots = dp_size * grad_accum  # every (process, micro-step) gets at least one sequence

    def batch_at(self, tokens_seen: int) -> int:
        """Global batch (sequences) for the optimizer step that starts after `tokens_seen` tokens."""
        frac = min(1.0, tokens_seen / self.ramp_tokens) if self.ramp_tokens > 0 else 1.0
        size = int(self.start + (self.target - self.start) * frac)
        return max(self.slots, size // self.slots * self.slots)  # equal micro-batches on every process

    def epoch_sizes(self, epoch: int) -> list[int]:
        """The global batch of each optimizer step in an epoch (the ramp continues across epochs)."""
        tokens, sizes = epoch * self.n * self.block_size, []
        left = self.n
        while True:
            size = self.batch_at(tokens)
            if size > left:
                return sizes  # drop the last partial batch, as drop_last would
            sizes.append(size)
            left -= size
            tokens += size * self.block_size

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        pos = 0
        for size in self.epoch_sizes(self.epoch):
            batch, pos = order[pos: pos + size], pos + size
            per = size // self.slots
            mine = batch[self.rank * self.grad_accum * per: (self.rank + 1) * self.grad_accum * per]
            for k in range(self.grad_accum):
                yield mine[k * per: (k + 1) * per]

    def __len__(self):
        # Epoch 0 is the longest (small batches); the Trainer sizes the run from it.
        return len(self.epoch_sizes(0)) * self.grad_accum

    def tokens_through(self, step: int) -> int:
        """Training tokens consumed by optimizer steps 1..step (what the ramp and tokens/s are measured in)."""
        total, epoch = 0, 0
        while step > 0:
            sizes = self.epoch_sizes(epoch)
            if not sizes:
                break
            total += sum(sizes[:step]) * self.block_size
            step -= len(sizes)
            epoch += 1
        return total

    def step_tokens(self, step: int) -> int:
        """Tokens in optimizer step `step` (1-based)."""
        return self.tokens_through(step) - self.tokens_through(step - 1)


class RampLogger(TrainerCallback):
    """Adds `tokens_per_step` (the latest optimizer step's global batch in tokens) and `train_tokens` to each log."""

    def __init__(self, sampler: RampBatchSampler):
        self.sampler = sampler

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs or state.global_step == 0:
            return
        extra = {"tokens_per_step": self.sampler.step_tokens(state.global_step),
                 "train_tokens": self.sampler.tokens_through(state.global_step)}
        logs.update(extra)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)  # the Trainer stored a copy of `logs` before calling us


class BatchRamp:
    """The ramp of one run: built from the arguments (None when off), attached to a Trainer."""

    def __init__(self, sampler: RampBatchSampler):
        self.sampler = sampler

    @classmethod
    def from_args(cls, ramp: BatchRampArguments, args, block_size: int, n_train_blocks: int) -> "BatchRamp | None":
        if ramp.batch_ramp_tokens < 0 or ramp.batch_ramp_start < 0:
            raise UserError("batch_ramp_tokens and batch_ramp_start must be >= 0")
        if ramp.batch_ramp_tokens == 0:
            return None
        target = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        slots = args.gradient_accumulation_steps * args.world_size
        start = ramp.batch_ramp_start or max(slots, target // 8)
        if not slots <= start <= target:
            raise UserError(f"batch_ramp_start must be between {slots} (one sequence per micro-batch and process) "
                            f"and the target global batch {target}, got {start}")
        sampler = RampBatchSampler(n_train_blocks, block_size, start, target, ramp.batch_ramp_tokens,
                                   dp_size=args.world_size, grad_accum=args.gradient_accumulation_steps,
                                   seed=args.data_seed if args.data_seed is not None else args.seed,
                                   rank=args.process_index)
        # The Trainer's own count of tokens fed to the model, logged beside ours: the ramp measured, not claimed.
        if args.include_num_input_tokens_seen in (False, "no"):
            args.include_num_input_tokens_seen = "all"
        return cls(sampler)

    def attach(self, trainer) -> "BatchRamp":
        # The Trainer's documented hook for a custom sampler is to override this method; one instance, one run.
        trainer._get_train_sampler = lambda train_dataset=None: self.sampler
        trainer.add_callback(RampLogger(self.sampler))
        return self

    def summary(self, steps: int) -> dict:
        s = self.sampler
        points = sorted({1 + round(i * (steps - 1) / 5) for i in range(6)}) if steps else []
        return {"start_sequences": s.start, "target_sequences": s.target, "ramp_tokens": s.ramp_tokens,
                "schedule": [{"step": k, "tokens_per_step": s.step_tokens(k), "train_tokens": s.tokens_through(k)}
                             for k in points]}
