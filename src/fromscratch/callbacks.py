"""Trainer callbacks the training recipes share."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class ThroughputCallback(TrainerCallback):
    """Logs training tokens/s (all processes) next to the loss, measured between logging steps.

    transformers 5 dropped `include_tokens_per_second`; the figure matters for every run (and for MFU), so it is
    computed from the known tokens per optimizer step instead of by re-counting batches.
    """

    def __init__(self, tokens_per_step: int):
        self.tokens_per_step = tokens_per_step
        self._t0 = None
        self._step0 = 0
        self.history: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0, self._step0 = time.perf_counter(), state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs or self._t0 is None:
            return
        now = time.perf_counter()
        steps = state.global_step - self._step0
        if steps > 0 and now > self._t0:
            tps = steps * self.tokens_per_step / (now - self._t0)
            logs["tokens_per_second"] = round(tps, 1)
            self.history.append(tps)
        self._t0, self._step0 = now, state.global_step
