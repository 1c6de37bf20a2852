"""Stage 06 with GRPO or RLOO: online RL against the stage-05 reward model without PPO's value model (half its
memory). Each prompt is answered `num_generations` times; the group is the baseline (GRPO: its mean reward,
RLOO: the mean of the others). The YAML's `algorithm` picks the TRL trainer and its config class.

    python recipes/06_rlhf/online.py --config recipes/06_rlhf/config_grpo_tiny.yaml [--key value ...]
    python recipes/06_rlhf/online.py --config recipes/06_rlhf/config_rloo_tiny.yaml

Reads: the SFT model (policy and KL reference) from stage 04, the reward model from stage 05, prompts
(default: the SFT run's held-out conversations cut before the final answer). Writes: <output_dir>/ with the
policy + tokenizer, trainer_state.json, reward.png and kl.png, README.md card (base_model: sft_dir; names the
reward model and beta, the KL coefficient), config.yaml, run_info.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

from fromscratch import artifacts
from fromscratch.alignment import rlhf
from fromscratch.config import cli, parse
from fromscratch.training import saved_model
from fromscratch.training.stage_args import StageArguments


@dataclass
class OnlineArguments(rlhf.PromptArguments):
    algorithm: str = field(default="grpo", metadata={
        "help": "grpo | rloo: the group baseline (its mean, or leave-one-out); ppo and dpo have their own scripts"})


@dataclass
class GRPOArguments(StageArguments, GRPOConfig):
    output_dir: str = field(default="outputs/06_rlhf", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})


@dataclass
class RLOOArguments(StageArguments, RLOOConfig):
    output_dir: str = field(default="outputs/06_rlhf", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})


CONFIGS = {"grpo": (GRPOArguments, GRPOTrainer), "rloo": (RLOOArguments, RLOOTrainer)}


@cli
def main():
    started = time.time()
    algorithm = rlhf.check_script("online.py", default="grpo")
    arguments, trainer_cls = CONFIGS[algorithm]
    rl, args = parse((OnlineArguments, arguments))

    # 1. Check inputs and the output location before any work.
    artifacts.check_parent(rl.sft_dir, "sft", "sft_dir")
    artifacts.check_parent(rl.reward_dir, "reward", "reward_dir")
    tokenizer = artifacts.load_tokenizer(rl.sft_dir, "sft_dir", "sft")
    prompts, lineage = rlhf.load_prompts(rl.prompt_sources, rl.sft_dir, args.seed, rl.validation_fraction)
    prompts, dropped = rlhf.fit_prompts(prompts, tokenizer, rl.max_prompt_length, rl.max_prompts)
    args, config, final_dir, tmp, push, precision_used = rlhf.begin(rl, args, lineage)

    # 2. Models: the policy from SFT (the trainer keeps a frozen copy as the KL reference when beta > 0), and
    # the reward model from stage 05.
    policy = AutoModelForCausalLM.from_pretrained(rl.sft_dir)
    reward = AutoModelForSequenceClassification.from_pretrained(rl.reward_dir, num_labels=1)
    reward.config.pad_token_id = tokenizer.pad_token_id
    print(f"[rlhf] {algorithm}: policy {rl.sft_dir}, reward {rl.reward_dir}; {len(prompts)} prompts"
          + (f" ({dropped} longer than max_prompt_length {rl.max_prompt_length} left out)" if dropped else "")
          + f", {precision_used}")

    # 3. Train; an answer ends at the turn end, where the chat template closes an assistant message.
    if rl.stop_at_turn_end:
        turn_end = tokenizer.convert_tokens_to_ids(saved_model.TURN_END)
        args.generation_kwargs = {**(args.generation_kwargs or {}), "eos_token_id": turn_end}
    trainer = trainer_cls(model=policy, reward_funcs=reward, args=args, train_dataset=prompts,
                          processing_class=tokenizer, reward_processing_classes=tokenizer)
    checkpoint = artifacts.newest_checkpoint(tmp) if args.resume else None
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    # 4. Metrics from the logged curves: the reward on the policy's own samples early vs late, and the KL.
    metrics = rlhf.report(trainer, algorithm, args, settled=precision_used, prompts_or_pairs=len(prompts),
                          prompts_left_out=dropped, kl_coef=args.beta)

    # 5. Save the policy and tokenizer: it stops at <|im_end|>, no sampling setting of training is kept.
    trainer.save_model(str(tmp))
    trainer.save_state()
    if not args.should_save:
        return
    saved_model.finish(tmp, tokenizer, stops=saved_model.stops_of(rl.sft_dir, tokenizer))

    # 6. Card (base_model: the SFT folder; names the reward model and beta), curves, run record.
    rlhf.publish_policy(tmp, final_dir, trainer.state.log_history, algorithm=algorithm, args=args, config=config,
                        metrics=metrics, lineage=lineage, started=started, push=push, sft_dir=rl.sft_dir,
                        reward_dir=rl.reward_dir)


if __name__ == "__main__":
    main()
