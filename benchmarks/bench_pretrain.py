"""Pretraining throughput: the recipe's Trainer setup vs a minimal PyTorch loop vs a plain fp32 Trainer setup.

Same model (the tiny preset), same batch (16 x 256), same data (the embedded corpora, packed), same AdamW
hyperparameters, in one process, alternating runs so drift on a shared machine hits all alike. Each figure is
the median of REPEATS runs of STEPS optimizer steps after WARMUP steps.

- recipe:  transformers Trainer with the recipe's defaults (packed blocks, SDPA, fused AdamW, precision auto)
- minimal: a hand-written loop (no Trainer): forward, backward, clip, AdamW, scheduler
- plain:   what one writes first: per-document padded batches (DataCollatorWithPadding), eager attention,
           unfused AdamW, fp32. Counted in real (non-pad) tokens/s, which is what training progress is.
MFU = tokens/s x (6 N + 12 L H T) FLOPs per token / the measured fp32 matmul peak of this machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

# A cold compile, as a user's first run pays it: inductor otherwise reuses kernels cached by earlier runs.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="fromscratch-inductor-"))

import torch  # noqa: E402
from common import emit, flops_per_token, matmul_peak_flops, median  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM, DataCollatorForLanguageModeling, DataCollatorWithPadding, PreTrainedTokenizerFast,
    Trainer, TrainerCallback, TrainingArguments,
)

from fromscratch.modeling import build_config, count_parameters  # noqa: E402
from fromscratch.pretraining import torch_compile  # noqa: E402
from fromscratch.pretraining.packing import pack, tokenize  # noqa: E402
from fromscratch.sources import load_corpus  # noqa: E402
from fromscratch.training import precision  # noqa: E402
from fromscratch.training.callbacks import ThroughputCallback  # noqa: E402

BLOCK, BATCH, PRESET = 256, 16, "tiny"
WARMUP, STEPS, REPEATS = int(os.environ.get("BENCH_WARMUP", 5)), int(os.environ.get("BENCH_STEPS", 25)), int(
    os.environ.get("BENCH_REPEATS", 3))
COMPILE = os.environ.get("BENCH_COMPILE", "1") == "1"  # BENCH_COMPILE=0 skips the torch.compile run (~1 min)
# The compiled run compiles as `torch_compile: auto` does when it turns on: the whole model; BENCH_REGIONAL=1
# compiles per block instead (accelerate's regional compilation; see src/fromscratch/pretraining/torch_compile.py).
REGIONAL = os.environ.get("BENCH_REGIONAL", "0") == "1"


def train_tokenizer(texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=4096, special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|pad|>")


def model_for(tok, attn="sdpa"):
    torch.manual_seed(0)
    cfg = build_config("llama", PRESET, len(tok), BLOCK, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id)
    cfg._attn_implementation = attn
    return AutoModelForCausalLM.from_config(cfg)


class Timer(TrainerCallback):
    """Wall time between the end of step WARMUP and the end of step WARMUP + STEPS; real tokens counted."""

    def __init__(self):
        self.t0 = self.t1 = None

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == WARMUP:
            self.t0 = time.perf_counter()
        if state.global_step == WARMUP + STEPS:
            self.t1 = time.perf_counter()


def run_trainer(tok, dataset, collator, attn, optim, prec, tokens_per_step, compile=False, timings=None):
    model = model_for(tok, attn)
    args = TrainingArguments(output_dir="/tmp/fromscratch-bench", max_steps=WARMUP + STEPS,
                             per_device_train_batch_size=BATCH, learning_rate=3e-3, weight_decay=0.1, adam_beta2=0.95,
                             warmup_steps=0.05, lr_scheduler_type="linear", logging_steps=1000, save_strategy="no",
                             report_to="none", disable_tqdm=True, optim=optim, seed=0,
                             dataloader_num_workers=0, torch_compile=compile, **precision.choose(prec, True).kwargs())
    timer = Timer()
    steps = ThroughputCallback(tokens_per_step=0) if timings is not None else None  # as the recipe measures it
    Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
            callbacks=[timer, *([steps] if steps else [])]).train()
    if steps:  # first step beyond a typical one: the compile time under torch_compile
        timings.append(steps.first_step_overhead())
    return tokens_per_step() * STEPS / (timer.t1 - timer.t0)


def run_minimal(tok, blocks):
    model = model_for(tok)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    data = torch.tensor(blocks["input_ids"][: BATCH * (WARMUP + STEPS)])
    t0 = None
    for step in range(WARMUP + STEPS):
        if step == WARMUP:
            t0 = time.perf_counter()
        x = data[step * BATCH:(step + 1) * BATCH]
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return BATCH * BLOCK * STEPS / (time.perf_counter() - t0)


def main():
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    corpus, _ = load_corpus(["default"])
    tok = train_tokenizer(list(corpus["text"]))
    tokenized = tokenize(corpus, tok)
    blocks = pack(tokenized, BLOCK)
    # Plain: one document per row, truncated to the block, padded per batch (no packing).
    docs = tokenized.map(lambda b: {"input_ids": [x[:BLOCK] for x in b["input_ids"]]}, batched=True,
                         remove_columns=tokenized.column_names).shuffle(seed=0)
    real = {"tokens": 0}

    class CountingPad(DataCollatorWithPadding):
        def __call__(self, features):
            real["tokens"] += sum(len(f["input_ids"]) for f in features)
            batch = super().__call__(features)
            labels = batch["input_ids"].clone()
            labels[batch["attention_mask"] == 0] = -100
            batch["labels"] = labels
            return batch

    lm = DataCollatorForLanguageModeling(tok, mlm=False)
    results = {"minimal": [], "recipe": [], "plain": []}
    for _ in range(REPEATS):
        results["minimal"].append(run_minimal(tok, blocks))
        results["recipe"].append(run_trainer(tok, blocks, lm, "sdpa", "adamw_torch_fused", "auto",
                                             lambda: BATCH * BLOCK))
        # Plain: real (non-pad) tokens per step, averaged over the run by the counting collator.
        real["tokens"] = 0
        results["plain"].append(run_trainer(tok, docs, CountingPad(tok), "eager", "adamw_torch", "fp32",
                                            lambda: real["tokens"] / (WARMUP + STEPS)))
    # torch.compile: once, as it pays a compile before its first step (cold: a fresh inductor cache).
    compile_seconds = []
    os.environ["ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION"] = str(REGIONAL).lower()
    compiled = run_trainer(tok, blocks, lm, "sdpa", "adamw_torch_fused", "auto", lambda: BATCH * BLOCK,
                           compile=True, timings=compile_seconds) if COMPILE else None
    n = count_parameters(model_for(tok))
    shape = model_for(tok).config
    per_token = flops_per_token(n, shape.num_hidden_layers, shape.hidden_size, BLOCK)
    peak = matmul_peak_flops()
    rec, mini, plain = (median(results[k]) for k in ("recipe", "minimal", "plain"))
    emit([
        {"name": "pretrain tokens/s (recipe Trainer)", "value": rec, "unit": "tokens/s",
         "baseline": "minimal PyTorch loop", "baseline_value": mini},
        {"name": "pretrain tokens/s (recipe default)", "value": rec, "unit": "tokens/s",
         "baseline": "plain fp32 (padded, eager, unfused)", "baseline_value": plain},
        {"name": "pretrain MFU (recipe)", "value": rec * per_token / peak * 100, "unit": "% of matmul peak",
         "baseline": f"measured fp32 matmul peak {peak / 1e9:.0f} GFLOP/s", "baseline_value": None},
    ] + ([
        {"name": f"pretrain tokens/s (torch.compile {'regional' if REGIONAL else 'whole model'})", "value": compiled,
         "unit": "tokens/s", "baseline": "torch_compile off (eager)", "baseline_value": rec},
        {"name": "torch.compile: first-step overhead (cold)", "value": compile_seconds[0], "unit": "s",
         "baseline": (f"pays off after {compile_seconds[0] / (1 / rec - 1 / compiled):.2g} tokens" if compiled > rec
                      else "never pays off (not faster)"), "baseline_value": None},
    ] if COMPILE else []))
    # What `torch_compile: auto` decides here for one epoch of these blocks (the demo's run), from its table.
    auto = torch_compile.decide("auto", torch_compile.hardware_kind(use_cpu=True), len(blocks) * BLOCK, per_token)
    print(f"# torch_compile auto for {len(blocks) * BLOCK} tokens: {'on' if auto.on else 'off'} ({auto.reason})",
          file=sys.stderr)
    print(f"# params {n}, flops/token {per_token:.3g}, runs: " +
          ", ".join(f"{k}={[round(x) for x in v]}" for k, v in results.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
