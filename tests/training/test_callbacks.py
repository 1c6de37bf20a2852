"""The spike guard on a real (nano) Trainer run: an LR blow-up at a known step wrecks the unguarded run; the
guarded run rolls back, skips the batches seen since, lowers the LR and ends within 2% of the clean run."""

import math

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments

from fromscratch.modeling import build_config
from fromscratch.pretraining.packing import pack, tokenize
from fromscratch.sources import load_corpus
from fromscratch.training.callbacks import SpikeGuard, ThroughputCallback

STEPS, BLOW_UP_AT = 40, 21


class BlowUp(TrainerCallback):
    """Multiply the LR by 1000 for one optimizer step (the scheduler resets it at the next step)."""

    def __init__(self, at):
        self.at, self.fired = at, False

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        if state.global_step + 1 == self.at and not self.fired:
            self.fired = True
            for g in optimizer.param_groups:
                g["lr"] *= 1000


@pytest.fixture(scope="module")
def data(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    corpus, _ = load_corpus(["default:tinyshakespeare"])
    return tok, pack(tokenize(corpus.select(range(3000)), tok), 64)


def _train(tmp_path, data, name, *, spike, guard):
    tok, blocks = data
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(build_config("llama", "nano", len(tok), 64))
    args = TrainingArguments(output_dir=str(tmp_path / name), max_steps=STEPS, per_device_train_batch_size=8,
                             learning_rate=5e-3, logging_steps=1, save_steps=10, save_strategy="steps",
                             report_to="none", use_cpu=True, seed=0, disable_tqdm=True, lr_scheduler_type="constant")
    trainer = Trainer(model=model, args=args, train_dataset=blocks,
                      data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
                      callbacks=[BlowUp(BLOW_UP_AT)] if spike else [])
    g = SpikeGuard(window=10, threshold=0.5).attach(trainer) if guard else None
    trainer.train()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    final = sum(losses[-5:]) / 5
    return final, g


def test_guard_recovers_where_the_unguarded_run_is_wrecked(tmp_path, data):
    clean, _ = _train(tmp_path, data, "clean", spike=False, guard=False)
    wrecked, _ = _train(tmp_path, data, "wrecked", spike=True, guard=False)
    guarded, guard = _train(tmp_path, data, "guarded", spike=True, guard=True)
    assert wrecked > clean * 1.1 or not math.isfinite(wrecked)  # without the guard: clearly worse
    assert guard.events and guard.events[0]["action"] == "rolled back"
    assert guard.events[0]["to_step"] == 20 and guard.events[0]["skipped_batches"] >= 1
    assert abs(guarded - clean) / clean < 0.02, (guarded, clean)


def test_guard_gives_up_after_max_rollbacks(tmp_path):
    guard = SpikeGuard(window=5, max_rollbacks=0)

    class Args:
        output_dir = str(tmp_path)
        gradient_accumulation_steps = 1

    class Ctl:
        should_training_stop = should_save = should_evaluate = False

    class State:
        global_step, log_history = 7, []

    ctl = Ctl()
    guard.on_log(Args(), State(), ctl, logs={"loss": float("nan")})
    assert ctl.should_training_stop and guard.gave_up and guard.events[0]["action"].startswith("gave up")


def test_throughput_counts_tokens_between_logs():
    cb = ThroughputCallback(tokens_per_step=1000)

    class State:
        global_step = 0

    s = State()
    cb.on_train_begin(None, s, None)
    s.global_step = 10
    logs = {"loss": 1.0}
    cb.on_log(None, s, None, logs=logs)
    assert logs["tokens_per_second"] > 0 and cb.history


def test_first_step_overhead_is_the_extra_time_of_the_first_step():
    cb = ThroughputCallback(tokens_per_step=1000)
    assert cb.first_step_overhead() is None  # too few steps to know a typical one
    cb.step_seconds = [30.5, 0.5, 0.6, 0.4, 0.5]  # a compile in step 1, then steady steps
    assert cb.first_step_overhead() == pytest.approx(30.0)

    class State:
        global_step = 0

    cb = ThroughputCallback(tokens_per_step=1000)  # the Trainer's hooks fill step_seconds
    for _ in range(3):
        cb.on_step_begin(None, State(), None)
        cb.on_step_end(None, State(), None)
    assert len(cb.step_seconds) == 3 and all(t >= 0 for t in cb.step_seconds)
