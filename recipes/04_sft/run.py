"""Stage 04: supervised fine-tuning (instruction tuning) with TRL's SFTTrainer, full or LoRA.

    python recipes/04_sft/run.py --config recipes/04_sft/config_tiny.yaml [--key value ...]
    accelerate launch --config_file accelerate_configs/deepspeed_zero3.yaml recipes/04_sft/run.py --config recipes/04_sft/config_1b.yaml

Reads: the pretrained model + tokenizer (with its chat template) from stage 03 (model_dir), and conversations
(`messages`) or prompt/completion rows: the embedded hh-rlhf chosen dialogues and self-instruct seeds by default.
Writes: <output_dir>/ with the fine-tuned model + tokenizer (a LoRA adapter unless merged), trainer_state.json,
loss.png, README.md card (base_model: model_dir), config.yaml, run_info.json, heldout.json (which conversations it
held out: 06's `sft_heldout` prompts). Held-out loss before and after.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoModelForCausalLM, set_seed
from trl import SFTConfig, SFTTrainer

from fromscratch import artifacts, cards, heldout, publish
from fromscratch.alignment import flan
from fromscratch.alignment.chat_data import SOURCE, check_sft, fitted, load_sources, mix
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.modeling import count_parameters
from fromscratch.training import eval_subset, precision, saved_model
from fromscratch.training.callbacks import EvalAtStart
from fromscratch.training.metrics import train_measuring_start
from fromscratch.training.stage_args import StageArguments


@dataclass
class DataArguments:
    model_dir: str = field(default="outputs/03_pretrain", metadata={
        "help": "stage 03's output folder (or a Hub id): the model to fine-tune"})
    sources: list[str] = field(default_factory=lambda: ["default"], metadata={
        "help": "conversations: default (embedded hh-rlhf + self-instruct), a local path or a Hub id"})
    weights: list[float] | None = checked(None, ge=0,
        help="training share per source (null: as loaded); see config_safety_tiny.yaml")
    validation_fraction: float = checked(0.05, gt=0, lt=1, help="held-out conversations for the before/after loss")
    max_train_samples: int | None = checked(None, ge=1, help="cap on training conversations (null: all)")
    cot_sources: list[str] = field(default_factory=list)
    flan_shares: list[float] = checked(default_factory=lambda: [0.25, 0.25, 0.25, 0.25], ge=0)
    flan_exemplars: int = checked(3, ge=0)
    cot_eval_rows: int = checked(64, ge=0)


@dataclass
class LoraArguments:
    use_lora: bool = field(default=False, metadata={"help": "train LoRA adapters instead of all weights"})
    lora_r: int = checked(16, ge=1, help="adapter rank if LoRA is switched on")
    lora_alpha: int = checked(32, gt=0, help="adapter scale (alpha / r multiplies the update)")
    lora_dropout: float = checked(0.05, ge=0, lt=1, help="dropout on the adapter input")
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"], metadata={
        "help": "which linear layers get adapters"})
    merge_lora: bool = field(default=True, metadata={"help": "merge the adapters into the weights: a standalone model"})


@dataclass
class SFTArguments(StageArguments, eval_subset.EvalSubsetArguments, SFTConfig):
    output_dir: str = field(default="outputs/04_sft", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})
    assistant_only_loss: bool = field(default=True, metadata={"help": "loss on assistant turns only"})
    eos_token: str | None = field(default="<|im_end|>", metadata={
        "help": "the token that ends an answer: the chat template's turn end, so the model learns to stop there"})


@cli
def main():
    started = time.time()
    data_args, lora_args, args = parse((DataArguments, LoraArguments, SFTArguments))

    # 1. Check inputs and the output location before any work.
    artifacts.check_parent(data_args.model_dir, "pretrain", "model_dir")
    tokenizer = artifacts.load_tokenizer(data_args.model_dir, "model_dir", "pretrain")
    document_eos = tokenizer.eos_token_id  # pretraining's; SFT makes eos_token (the turn end) the tokenizer's eos
    if not tokenizer.chat_template:
        raise UserError(f"model_dir: the tokenizer in {data_args.model_dir} has no chat template")
    if args.eos_token and args.eos_token not in tokenizer.get_vocab():
        raise UserError(f"eos_token {args.eos_token!r} is not a token of the tokenizer in {data_args.model_dir}")
    if args.assistant_only_loss and "generation" not in tokenizer.chat_template:
        raise UserError("assistant_only_loss needs {% generation %} markers in the chat template "
                        "(the stage-02 template has them) or set assistant_only_loss: false")
    # Hold out conversations, then fail on any malformed row before a model is loaded.
    data, lineage = load_sources(data_args.sources, check_sft, tag=True)
    for item in lineage:
        print(f"[data] {item.summary()}")
    split = heldout.split(data, data_args.validation_fraction, args.seed, what="conversations")
    # Weighted sources (e.g. harmless dialogues mixed into instructions for safety) are resampled in the training
    # split only: the held-out loss stays on the sources as they are, and no repeated row is on both sides.
    train_set, data_mix = mix(split["train"], data_args.weights, data_args.sources, seed=args.seed)
    eval_set = split["test"].remove_columns(SOURCE)
    held = heldout.of_documents(data_args.sources, eval_set)  # the conversations 06's sft_heldout prompts read
    print("[data] training mix: " + ", ".join(f"{n} {c['mixed']} rows ({c['share']:.1%}, from {c['rows']})"
                                             for n, c in data_mix.items()))
    if data_args.max_train_samples:
        train_set = train_set.select(range(min(data_args.max_train_samples, len(train_set))))
    # Flan mixture (issue 20): reasoning rows (GSM8K layout) and the instructions rendered zero-/few-shot, direct/CoT
    # by flan_shares; exemplars from the training split only; questions of the shipped GSM8K eval subset dropped.
    flan_mix = cot_eval = None
    if data_args.cot_sources:
        built = flan.build_mixture(train_set, eval_set, data_args.cot_sources, data_args.flan_shares,
                                   data_args.flan_exemplars, data_args.validation_fraction, seed=args.seed,
                                   eval_files=[flan.SHIPPED_GSM8K_EVAL], fits=flan.fits_in(tokenizer, args.max_length))
        train_set, eval_set, flan_mix, lineage = built["train"], built["eval"], built["counts"], lineage + built["lineage"]
        cot_eval = built["cot_eval"].select(range(min(data_args.cot_eval_rows, len(built["cot_eval"]))))
        for item in built["lineage"]:
            print(f"[data] {item.summary()}")
        print(f"[data] flan mixture: {json.dumps(flan_mix['all'])}; reasoning {json.dumps(flan_mix['reasoning'])}, "
              f"{flan_mix['dropped_in_eval_sets']} rows dropped as in the GSM8K eval set")
    config = to_dict(data_args, lora_args, args)
    final_dir, tmp, push = artifacts.start_training_output(args)
    args, precision_used = precision.apply(args, args.precision)
    set_seed(args.seed)

    # 2. Model: the pretrained causal LM; optionally LoRA adapters on it (peft) instead of full fine-tuning.
    model = AutoModelForCausalLM.from_pretrained(data_args.model_dir)
    if args.max_length and args.max_length > model.config.max_position_embeddings:
        raise UserError(f"max_length {args.max_length} exceeds the model's context "
                        f"({model.config.max_position_embeddings} positions)")
    peft_config = lora_config(lora_args)
    print(f"[model] {data_args.model_dir}: {count_parameters(model) / 1e6:.2f}M parameters, "
          f"{'LoRA r=' + str(lora_args.lora_r) if peft_config else 'full fine-tuning'}, {precision_used}; "
          f"{len(train_set)} train / {len(eval_set)} held-out conversations")

    # 3. Train. Loss on assistant tokens only (the template's {% generation %} spans): the model learns to answer,
    #    not to imitate users. The held-out loss is measured with the same mask before and after.
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                         processing_class=tokenizer, peft_config=peft_config)
    # TRL drops conversations whose assistant turns all fall beyond max_length: counted here, not lost silently.
    dropped = fitted(trainer, train_set, eval_set, "conversations", args.max_length)
    if any(dropped.values()):
        print(f"[data] no assistant token within max_length {args.max_length}, dropped: {dropped['train']} train, "
              f"{dropped['eval']} held out")
    final_set = eval_subset.cap(trainer, args.eval_samples, args.final_eval_samples, "conversations")
    if cot_eval is not None:  # loss on the CoT tokens (rationale + answer) of held-out reasoning rows, at step 0 too
        trainer.add_callback(EvalAtStart(trainer, cot_eval, "eval_cot"))
    checkpoint = artifacts.newest_checkpoint(tmp) if args.resume else None
    result, initial = train_measuring_start(trainer, checkpoint)  # evaluate() before train() would break DDP
    initial = eval_subset.at_start(trainer, initial)  # the untrained model on the final set
    final = trainer.evaluate(eval_dataset=final_set)
    metrics = {
        "initial_eval_loss": initial.get("eval_loss"),
        "eval_loss": final["eval_loss"],
        "eval_mean_token_accuracy": final.get("eval_mean_token_accuracy"),
        "train_conversations": len(trainer.train_dataset),
        "eval_conversations": len(final_set),
        "eval_conversations_during_training": len(trainer.eval_dataset),
        "dropped_no_assistant_within_max_length": dropped,
        "data_mix": data_mix,
        "steps": result.global_step,
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 2),
        "precision": precision.computed_in(trainer, precision_used),  # what the Accelerator ran
    }
    if flan_mix is not None:
        metrics["flan_mixture"] = flan_mix
        metrics["cot_loss"] = {"initial": next((r["eval_cot_loss"] for r in trainer.state.log_history
                                                if r.get("step") == 0 and "eval_cot_loss" in r), None),
                               "final": trainer.evaluate(cot_eval, metric_key_prefix="eval_cot")["eval_cot_loss"],
                               "rows": len(cot_eval)}
    publish.print_metrics(metrics, rank=args.process_index)

    # 4. Save: a standalone model (LoRA merged into it unless merge_lora is false), the tokenizer, the state.
    trainer.save_state()
    if peft_config and lora_args.merge_lora:
        merged = trainer.model.merge_and_unload()
        if args.should_save:
            merged.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    else:
        trainer.save_model(str(tmp))
    if not args.should_save:
        return
    # A chat model: generate stops at <|im_end|> (its turn end); use_cache on; the tokenizer's context = the model's.
    saved_model.finish(tmp, tokenizer, stops=saved_model.chat_stops(tokenizer, document_eos),
                       max_positions=model.config.max_position_embeddings)
    heldout.write(tmp, held)

    # 5. Card (base_model: the stage-03 folder or Hub id), run record; publish atomically.
    plot = cards.plot_curves(trainer.state.log_history, Path(tmp) / "loss.png", title="SFT loss (assistant tokens)")
    publish.publish(
        tmp, final_dir, stage="04_sft", template="sft.md.jinja", name="fromscratch-sft",
        card=dict(base_model=data_args.model_dir, tags=["sft", "trl", *(["lora"] if peft_config else [])],
                  plot=plot.name if plot else None, parent=data_args.model_dir, lora=lora_args if peft_config else None,
                  adapter_only=bool(peft_config and not lora_args.merge_lora)),
        config=config, lineage=lineage, metrics=metrics, started=started,
        parents=[{"spec": data_args.model_dir, "role": "base_model"}],
        what="model", summary=f"held-out loss {metrics['initial_eval_loss']:.4f} -> {metrics['eval_loss']:.4f}",
        push=push, hub_model_id=args.hub_model_id, private=args.hub_private_repo,
    )


def lora_config(lora_args: LoraArguments):
    """peft's LoraConfig for the adapters, or None for full fine-tuning."""
    if not lora_args.use_lora:
        return None
    from peft import LoraConfig

    targets = lora_args.lora_target_modules
    return LoraConfig(r=lora_args.lora_r, lora_alpha=lora_args.lora_alpha, lora_dropout=lora_args.lora_dropout,
                      target_modules=targets[0] if targets == ["all-linear"] else targets, task_type="CAUSAL_LM")


if __name__ == "__main__":
    main()
