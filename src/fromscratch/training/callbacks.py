"""Trainer callbacks the training recipes share."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

from ..config import checked


class ThroughputCallback(TrainerCallback):
    """Logs training tokens/s (all processes) next to the loss, measured between logging steps.

    transformers 5 dropped `include_tokens_per_second`; the figure matters for every run (and for MFU), so it is
    computed from the known tokens per optimizer step instead of by re-counting batches.
    """

    def __init__(self, tokens_per_step: int, tokens_through=None):
        self.tokens_per_step = tokens_per_step
        # With a batch-size ramp steps differ in size: tokens_through(step) gives the tokens of steps 1..step.
        self.tokens_through = tokens_through or (lambda step: step * tokens_per_step)
        self._t0 = None
        self._step0 = 0
        self.history: list[float] = []
        self.step_seconds: list[float] = []  # wall time of each optimizer step, for the first-step overhead
        self._step_t = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0, self._step0 = time.perf_counter(), state.global_step

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_t is not None:
            self.step_seconds.append(time.perf_counter() - self._step_t)

    def first_step_overhead(self) -> float | None:
        """Seconds the first step took beyond a typical step: with torch_compile, the compile time of the
        training graph (forward and backward are traced and compiled on first use), else warm-up noise."""
        if len(self.step_seconds) < 3:
            return None
        return round(self.step_seconds[0] - statistics.median(self.step_seconds[1:]), 2)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs or self._t0 is None:
            return
        now = time.perf_counter()
        steps = state.global_step - self._step0
        if steps > 0 and now > self._t0:
            tps = (self.tokens_through(state.global_step) - self.tokens_through(self._step0)) / (now - self._t0)
            logs["tokens_per_second"] = round(tps, 1)
            history = getattr(state, "log_history", None)
            if history and history[-1].get("step") == state.global_step:
                history[-1]["tokens_per_second"] = logs["tokens_per_second"]  # the Trainer stored a copy of logs
            self.history.append(tps)
        self._t0, self._step0 = now, state.global_step


@dataclass
class SpikeGuardArguments:
    spike_guard: bool = field(default=True, metadata={
        "help": "roll back to the newest good checkpoint on a loss spike"})
    spike_window: int = checked(20, ge=1, help="logged losses in the rolling median")
    spike_threshold: float = checked(0.5, gt=0,
        help="a spike is a loss above (1 + this) x that median, or a non-finite loss/grad norm")
    spike_lr_factor: float = checked(0.5, gt=0, le=1, help="learning rate multiplier after each rollback")
    spike_max_rollbacks: int = checked(3, ge=0, help="rollbacks before the run stops with a message")


class SpikeGuard(TrainerCallback):
    """Roll back over a loss spike: the seed's cure for training instability, automated.

    On each logged loss: a spike is a non-finite loss or grad norm, or a loss above (1 + threshold) x the median
    of the last `window` logged losses. Then: reload the newest checkpoint saved at or before the last good
    step (model, optimizer, scheduler), leave the data iterator where it is (so the batches seen since that
    checkpoint are skipped, not replayed), multiply the learning rate by `lr_factor`, and carry on. After
    `max_rollbacks` spikes it stops training and says so. Every event is kept in `events` for the card.

    Needs the Trainer (to reset its logging counter) and on-disk checkpoints (save_steps); it handles plain and
    DDP training, where every rank sees the same all-reduced loss and rolls back alike.
    """

    def __init__(self, window: int = 20, threshold: float = 0.5, lr_factor: float = 0.5, max_rollbacks: int = 3,
                 can_roll_back: bool = True):
        self.window, self.threshold, self.lr_factor, self.max_rollbacks = window, threshold, lr_factor, max_rollbacks
        # Sharded optimizers (DeepSpeed, FSDP) keep their state in their own checkpoint format: there the guard
        # detects and stops cleanly, and `--resume true` with a lower LR is the cure.
        self.can_roll_back = can_roll_back
        self.trainer = None
        self.losses: list[tuple[int, float]] = []
        self.events: list[dict] = []
        self.gave_up = False
        self.last_good_step = 0
        self.base_lrs: list[float] | None = None

    @classmethod
    def from_args(cls, a: "SpikeGuardArguments", can_roll_back: bool = True) -> "SpikeGuard":
        return cls(a.spike_window, a.spike_threshold, a.spike_lr_factor, a.spike_max_rollbacks, can_roll_back)

    def attach(self, trainer) -> "SpikeGuard":
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        if lr_scheduler is not None and self.base_lrs is None:
            self.base_lrs = list(lr_scheduler.base_lrs)  # the unscaled peak LRs; every rollback scales these

    def _is_spike(self, loss: float, grad_norm) -> tuple[bool, float | None]:
        if not math.isfinite(loss) or (grad_norm is not None and not math.isfinite(float(grad_norm))):
            return True, None
        recent = [x for _, x in self.losses[-self.window:]]
        if len(recent) < min(5, self.window):
            return False, None
        median = statistics.median(recent)
        return loss > (1.0 + self.threshold) * median, median

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or self.gave_up:
            return
        loss = float(logs["loss"])
        spike, median = self._is_spike(loss, logs.get("grad_norm"))
        if not spike:
            self.losses.append((state.global_step, loss))
            self.last_good_step = state.global_step
            return
        event = {"step": state.global_step, "loss": loss, "median": median}
        checkpoint = self._good_checkpoint(args.output_dir) if self.can_roll_back else None
        if len(self.events) >= self.max_rollbacks or checkpoint is None:
            event["action"] = ("gave up" if checkpoint else "gave up: no checkpoint to roll back to"
                               if self.can_roll_back else "stopped: rollback needs plain or DDP training")
            self.events.append(event)
            self.gave_up = True
            control.should_training_stop = True
            control.should_save = False
            return
        step = self._rollback(checkpoint, state, kwargs["model"], kwargs["optimizer"], kwargs["lr_scheduler"])
        event.update(action="rolled back", to_step=step, skipped_batches=(event["step"] - step)
                     * args.gradient_accumulation_steps, lr_scale=self.lr_factor ** (len(self.events) + 1))
        self.events.append(event)
        state.log_history.append({"step": step, "spike_guard": event["action"], "spike_step": event["step"],
                                  "spike_loss": loss})
        # Do not evaluate or checkpoint the spiked weights this step (they are gone).
        control.should_save = False
        control.should_evaluate = False

    def _good_checkpoint(self, output_dir):
        ckpts = []
        for p in Path(output_dir).glob("checkpoint-*"):
            s = p.name.split("-")[-1]
            if s.isdigit() and int(s) <= self.last_good_step and (p / "trainer_state.json").is_file():
                ckpts.append((int(s), p))
        return max(ckpts)[1] if ckpts else None

    def _rollback(self, checkpoint: Path, state, model, optimizer, scheduler) -> int:
        import torch
        from safetensors.torch import load_file

        weights = load_file(str(checkpoint / "model.safetensors"), device="cpu")
        missing, unexpected = model.load_state_dict(weights, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or [])
        if unexpected or any(k not in tied and not k.endswith("lm_head.weight") for k in missing):
            raise RuntimeError(f"spike guard: {checkpoint} does not match the model ({missing[:3]} {unexpected[:3]})")
        # Our own checkpoints, loaded as plain tensors (weights_only): no pickle code runs.
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True))
        scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", map_location="cpu", weights_only=True))
        scale = self.lr_factor ** (len(self.events) + 1)
        scheduler.base_lrs = [lr * scale for lr in (self.base_lrs or scheduler.base_lrs)]
        for group, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, getattr(scheduler, "lr_lambdas", [])):
            group["lr"] = base * fn(scheduler.last_epoch)
        step = int(checkpoint.name.split("-")[-1])
        state.global_step = step
        if self.trainer is not None:
            self.trainer._globalstep_last_logged = step  # else the Trainer would not log again until the old step
        self.losses = [(s, x) for s, x in self.losses if s <= step]
        return step


class EvalAtStart(TrainerCallback):
    """Evaluate one more dataset (logged as `<prefix>_loss`) right after the step-0 evaluation of eval_on_start,
    inside train(): what metrics.train_measuring_start does for the held-out set, here for another set (SFT's
    CoT rows; the final evaluation's set when the periodic one is a subset of it, eval_subset.cap). Inside
    train() the model is already wrapped (DDP, DeepSpeed ZeRO-3), so it works wherever training does; the log
    entry is in trainer_state, so a resumed run still has it."""

    def __init__(self, trainer, dataset, prefix: str = "eval_cot"):
        self.trainer, self.dataset, self.prefix, self.done = trainer, dataset, prefix, False

    def on_evaluate(self, args, state, control, **kwargs):
        if state.global_step == 0 and not self.done:
            self.done = True  # once: evaluate() calls on_evaluate again, of this callback and of any other one
            self.trainer.evaluate(eval_dataset=self.dataset, metric_key_prefix=self.prefix)
