"""Stage 05: a reward model trained on human preference pairs with TRL's RewardTrainer.

    python recipes/05_reward/run.py --config recipes/05_reward/config_tiny.yaml [--key value ...]
    accelerate launch --config_file accelerate_configs/deepspeed_zero3.yaml recipes/05_reward/run.py --config recipes/05_reward/config_1b.yaml

Reads: the SFT model from stage 04 (model_dir), loaded as a sequence classifier with one output (the reward
head is new, the body is the SFT model's), and preference pairs: chosen + rejected, with or without a prompt,
strings or messages (the embedded hh-rlhf harmless pairs by default).
Writes: <output_dir>/ with the reward model + tokenizer, trainer_state.json, curves.png, README.md card
(base_model: model_dir; datasets it learnt from), config.yaml, run_info.json. Held-out pairwise accuracy and
reward margin, before and after training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoModelForSequenceClassification, set_seed
from trl import RewardConfig, RewardTrainer

from fromscratch import artifacts, cards, heldout, publish
from fromscratch.alignment.chat_data import check_preferences, fitted, load_sources, trim_prompts
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.modeling import count_parameters
from fromscratch.training import eval_subset, precision, saved_model
from fromscratch.training.metrics import train_measuring_start
from fromscratch.training.stage_args import StageArguments


@dataclass
class DataArguments:
    model_dir: str = field(default="outputs/04_sft", metadata={
        "help": "stage 04's output folder (or a Hub id): the body of the reward model"})
    sources: list[str] = field(default_factory=lambda: ["default"], metadata={
        "help": "preference pairs: default (embedded hh-rlhf harmless), a local path or a Hub id"})
    validation_fraction: float = checked(0.1, gt=0, lt=1, help="held-out pairs for accuracy and margin")
    max_train_samples: int | None = checked(None, ge=1, help="cap on training pairs (null: all)")
    trim_prompt_turns: bool = field(default=True, metadata={
        "help": "drop the oldest dialogue turns until a pair fits max_length (TRL would drop the pair)"})


@dataclass
class RewardArguments(StageArguments, eval_subset.EvalSubsetArguments, RewardConfig):
    output_dir: str = field(default="outputs/05_reward", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})


@cli
def main():
    started = time.time()
    data_args, args = parse((DataArguments, RewardArguments))

    # 1. Check inputs and the output location before any work; a malformed pair stops the run here.
    artifacts.check_parent(data_args.model_dir, "sft", "model_dir")
    data, lineage = load_sources(data_args.sources, check_preferences)
    for item in lineage:
        print(f"[data] {item.summary()}")
    split = heldout.split(data, data_args.validation_fraction, args.seed, what="preference pairs")
    train_set, eval_set = split["train"], split["test"]
    if data_args.max_train_samples:
        train_set = train_set.select(range(min(data_args.max_train_samples, len(train_set))))
    config = to_dict(data_args, args)
    final_dir, tmp, push = artifacts.start_training_output(args)
    args, precision_used = precision.apply(args, args.precision)
    set_seed(args.seed)

    # 2. Model: the SFT body with a fresh scalar head (num_labels=1); padding must be known to find the last token.
    tokenizer = artifacts.load_tokenizer(data_args.model_dir, "model_dir", "sft")
    model = AutoModelForSequenceClassification.from_pretrained(data_args.model_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    if args.max_length and args.max_length > model.config.max_position_embeddings:
        raise UserError(f"max_length {args.max_length} exceeds the model's context "
                        f"({model.config.max_position_embeddings} positions)")

    # 3. Fit pairs into max_length by dropping their oldest prompt turns (the answers, which differ, stay);
    #    TRL drops what still does not fit (a truncated answer would hide the difference): counted, reported.
    trimmed = {}
    if data_args.trim_prompt_turns and args.max_length:
        train_set, trimmed["train"] = trim_prompts(train_set, tokenizer, args.max_length)
        eval_set, trimmed["eval"] = trim_prompts(eval_set, tokenizer, args.max_length)
        print(f"[data] oldest prompt turns removed to fit {args.max_length} tokens: {trimmed}")

    # 4. Train on -log sigmoid(r_chosen - r_rejected).
    trainer = RewardTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                            processing_class=tokenizer)
    dropped = fitted(trainer, train_set, eval_set, "preference pairs", args.max_length)
    print(f"[model] {data_args.model_dir}: {count_parameters(model) / 1e6:.2f}M parameters, {precision_used}; "
          f"{len(trainer.train_dataset)} train / {len(trainer.eval_dataset)} held-out pairs "
          f"(longer than max_length {args.max_length}, dropped: {dropped['train']} train, {dropped['eval']} held out)")
    final_set = eval_subset.cap(trainer, args.eval_samples, args.final_eval_samples, "pairs")
    checkpoint = artifacts.newest_checkpoint(tmp) if args.resume else None
    result, initial = train_measuring_start(trainer, checkpoint)  # evaluate() before train() would break DDP
    initial = eval_subset.at_start(trainer, initial)  # the untrained model on the final set
    final = trainer.evaluate(eval_dataset=final_set)
    metrics = {
        "initial_eval_accuracy": initial.get("eval_accuracy"),
        "eval_accuracy": final["eval_accuracy"],
        "eval_margin": final["eval_margin"],
        "eval_loss": final["eval_loss"],
        "train_pairs": len(trainer.train_dataset),
        "eval_pairs": len(final_set),
        "eval_pairs_during_training": len(trainer.eval_dataset),
        "dropped_longer_than_max_length": dropped,
        "prompt_turns_trimmed": trimmed,
        "steps": result.global_step,
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 2),
        "precision": precision.computed_in(trainer, precision_used),  # what the Accelerator ran
    }
    publish.print_metrics(metrics, rank=args.process_index)

    # 5. Save the reward model (a sequence classifier: AutoModelForSequenceClassification loads it) and tokenizer.
    trainer.save_model(str(tmp))
    trainer.save_state()
    if not args.should_save:
        return
    saved_model.finish(tmp, tokenizer)  # use_cache on; the tokenizer's context = the model's

    # 6. Card: what it was trained on, its parent SFT model; run record; publish atomically.
    plot = cards.plot_curves(trainer.state.log_history, Path(tmp) / "curves.png",
                             keys=("loss", "eval_loss", "accuracy", "eval_accuracy"), title="reward model")
    publish.publish(
        tmp, final_dir, stage="05_reward", template="reward.md.jinja", name="fromscratch-reward",
        card=dict(base_model=data_args.model_dir, tags=["reward-model", "trl"], pipeline_tag="text-classification",
                  plot=plot.name if plot else None, parent=data_args.model_dir),
        config=config, lineage=lineage, metrics=metrics, started=started,
        parents=[{"spec": data_args.model_dir, "role": "base_model"}],
        what="reward model", summary=f"held-out accuracy {metrics['initial_eval_accuracy']} -> "
                                     f"{metrics['eval_accuracy']:.4f}, margin {metrics['eval_margin']:.4f}",
        push=push, hub_model_id=args.hub_model_id, private=args.hub_private_repo,
    )


if __name__ == "__main__":
    main()
