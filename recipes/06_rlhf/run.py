"""Stage 06: RLHF with PPO, the InstructGPT step. The SFT policy answers prompts, the stage-05 reward model scores
the answers, and PPO raises the score while a KL penalty keeps the policy near the SFT model (frozen reference).

    python recipes/06_rlhf/run.py --config recipes/06_rlhf/config_tiny.yaml [--key value ...]
    accelerate launch --config_file accelerate_configs/deepspeed_zero3.yaml recipes/06_rlhf/run.py --config recipes/06_rlhf/config_1b.yaml

The same stage without a value model: online.py (GRPO, RLOO); offline on the preference pairs: dpo.py.
PPO is trl.experimental.ppo (trl 1.12 is the last TRL with it). Reads: the SFT model (policy and frozen
reference) from stage 04, the reward model from stage 05 (the value model starts from it too), prompts
(default: the SFT run's held-out conversations cut before the final answer). Writes: <output_dir>/ with the
policy + tokenizer, trainer_state.json, reward.png and kl.png, README.md card (base_model: sft_dir; names the
reward model and the KL coefficient), config.yaml, run_info.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from accelerate import PartialState
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
from trl.experimental.ppo import PPOConfig, PPOTrainer

from fromscratch import artifacts
from fromscratch.alignment import rlhf
from fromscratch.config import UserError, cli, parse
from fromscratch.training import precision, saved_model
from fromscratch.training.stage_args import StageArguments


@dataclass
class PPOPromptArguments(rlhf.PromptArguments):
    value_dir: str | None = field(default=None, metadata={"help": "value model init (null: the reward model)"})


@dataclass
class PPOArguments(StageArguments, PPOConfig):
    output_dir: str = field(default="outputs/06_rlhf", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})


def save_policy(trainer, out) -> None:
    """trainer.save_model, made to work under `accelerate launch` (DDP) with trl 1.12 + transformers 5.24.

    PPOTrainer.save_model saves `model.policy`, but under DDP `model` is the DDP wrapper, which has no `.policy`:
    it would write the whole policy+value wrapper and fail on shared tensors. So the wrapper is taken off
    first (DeepSpeed keeps its engine: its save path gathers the shards). PPOTrainer also skips Trainer.__init__,
    so the flag transformers' _save reads on ranks > 0 is missing; its Trainer default is False."""
    if not hasattr(trainer, "is_distributed_loading_by_transformers"):
        trainer.is_distributed_loading_by_transformers = False
    wrapped = trainer.model
    if not trainer.is_deepspeed_enabled:
        trainer.model = trainer.accelerator.unwrap_model(wrapped)
    try:
        trainer.save_model(str(out))
    finally:
        trainer.model = wrapped


@cli
def main():
    started = time.time()
    rlhf.check_script("run.py")
    rl, args = parse((PPOPromptArguments, PPOArguments))

    # 1. Check inputs and the output location before any work.
    artifacts.check_parent(rl.sft_dir, "sft", "sft_dir")
    artifacts.check_parent(rl.reward_dir, "reward", "reward_dir")
    artifacts.check_parent(rl.value_dir or rl.reward_dir, "reward", "value_dir" if rl.value_dir else "reward_dir")
    if args.resume:
        raise UserError("resume: trl's PPOTrainer cannot continue a checkpoint; start over with --overwrite true")
    tokenizer = artifacts.load_tokenizer(rl.sft_dir, "sft_dir", "sft")
    prompts, lineage = rlhf.load_prompts(rl.prompt_sources, rl.sft_dir, args.seed, rl.validation_fraction)
    prompts, dropped = rlhf.fit_prompts(prompts, tokenizer, rl.max_prompt_length, rl.max_prompts)
    # PPO's loader drops the last partial batch and then cycles forever: fewer prompts than one batch on every
    # process would hang it without a word.
    processes = PartialState().num_processes  # PPOConfig.world_size is only set by the trainer
    batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * processes
    if len(prompts) < batch:
        raise UserError(f"{len(prompts)} prompts fit max_prompt_length {rl.max_prompt_length}, fewer than one "
                        f"PPO batch ({batch} = per_device_train_batch_size x gradient_accumulation_steps x "
                        f"{processes} processes): add prompts, raise max_prompt_length or lower the batch")
    args, config, final_dir, tmp, push, precision_used = rlhf.begin(rl, args, lineage)

    # 2. Models: policy and frozen reference from SFT; reward and value model from stage 05.
    policy = AutoModelForCausalLM.from_pretrained(rl.sft_dir)
    reference = AutoModelForCausalLM.from_pretrained(rl.sft_dir)
    reward = AutoModelForSequenceClassification.from_pretrained(rl.reward_dir, num_labels=1)
    value = AutoModelForSequenceClassification.from_pretrained(rl.value_dir or rl.reward_dir, num_labels=1)
    reward.config.pad_token_id = value.config.pad_token_id = tokenizer.pad_token_id
    print(f"[rlhf] ppo: policy {rl.sft_dir}, reward {rl.reward_dir}; {len(prompts)} prompts"
          + (f" ({dropped} longer than max_prompt_length {rl.max_prompt_length} left out)" if dropped else "")
          + f", {precision_used}")

    # 3. Train. PPO reads tokenized prompts, left-padded (generation continues on the right); an answer ends at
    # the turn end, where the chat template closes an assistant message.
    tokenizer.padding_side = "left"
    prompts = prompts.map(lambda r: {"input_ids": tokenizer.apply_chat_template(
        r["prompt"], add_generation_prompt=True, tokenize=True)["input_ids"]}, remove_columns=["prompt"])
    if rl.stop_at_turn_end:
        args.stop_token_id = tokenizer.convert_tokens_to_ids(saved_model.TURN_END)
    precision.tell_accelerate(precision_used)  # PPOTrainer's own Accelerator would otherwise run fp32
    trainer = PPOTrainer(args=args, processing_class=tokenizer, model=policy, ref_model=reference,
                         reward_model=reward, value_model=value, train_dataset=prompts)
    trainer.train()

    # 4. Metrics from the logged curves: the reward on the policy's own samples early vs late, and the KL.
    metrics = rlhf.report(trainer, "ppo", args, settled=precision_used, prompts_or_pairs=len(prompts),
                          prompts_left_out=dropped, kl_coef=args.kl_coef)

    # 5. Save the policy alone (not the value model) and the tokenizer: it stops at <|im_end|>, and no sampling
    # setting of training (PPO's temperature, top_k 0) is left in generation_config.
    save_policy(trainer, tmp)
    trainer.save_state()
    if not args.should_save:
        return
    tokenizer.padding_side = "right"
    saved_model.finish(tmp, tokenizer, stops=saved_model.stops_of(rl.sft_dir, tokenizer))

    # 6. Card (base_model: the SFT folder; names the reward and value models and kl_coef), curves, run record.
    rlhf.publish_policy(tmp, final_dir, trainer.state.log_history, algorithm="ppo", args=args, config=config,
                        metrics=metrics, lineage=lineage, started=started, push=push, sft_dir=rl.sft_dir, reward_dir=rl.reward_dir,
                        value_dir=rl.value_dir or rl.reward_dir)


if __name__ == "__main__":
    main()
