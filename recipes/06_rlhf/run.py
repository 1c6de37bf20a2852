"""Stage 06: RLHF. PPO against the stage-05 reward model with a KL penalty to the SFT model (default), or
GRPO / RLOO against the same reward model, or DPO on the preference pairs (offline, no reward model).

    python recipes/06_rlhf/run.py --config recipes/06_rlhf/config_tiny.yaml [--key value ...]
    python recipes/06_rlhf/run.py --config recipes/06_rlhf/config_grpo_tiny.yaml   # or config_rloo_tiny, config_dpo_tiny
    accelerate launch --config_file accelerate_configs/deepspeed_zero3.yaml recipes/06_rlhf/run.py --config recipes/06_rlhf/config_1b.yaml

`algorithm` picks the TRL trainer and its config class: ppo (trl.experimental.ppo, trl 1.12 is the last TRL
with it), grpo, rloo (where TRL maintains online RL now), dpo. Each has its own YAML: the keys differ.
Reads: the SFT model (policy and frozen reference) from stage 04, the reward model from stage 05 (PPO's value
model starts from it too), prompts (default: the SFT run's held-out conversations cut before the final answer).
Writes: <output_dir>/ with the policy + tokenizer, trainer_state.json, reward.png and kl.png, README.md card
(base_model: sft_dir; names the reward model and the KL coefficient), config.yaml, run_info.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from accelerate import PartialState
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, set_seed
from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer
from trl.experimental.ppo import PPOConfig, PPOTrainer

from fromscratch import artifacts, cards, hub, precision, runinfo, saved_model
from fromscratch.chat_data import check_preferences, check_sft, load_sources, to_prompts
from fromscratch.config import UserError, checked, cli, parse, peek, to_dict
from fromscratch.stage_args import StageArguments


@dataclass
class RLArguments:
    algorithm: str = field(default="ppo", metadata={
        "help": "ppo | grpo | rloo | dpo (GRPO/RLOO need no value model: half PPO's memory)"})
    sft_dir: str = field(default="outputs/04_sft", metadata={
        "help": "stage 04's output folder: policy init and frozen reference"})
    reward_dir: str = field(default="outputs/05_reward", metadata={
        "help": "stage 05's output folder: the reward model"})
    value_dir: str | None = field(default=None, metadata={"help": "value model init (null: the reward model)"})
    prompt_sources: list[str] = field(default_factory=lambda: ["sft_heldout"], metadata={
        "help": "sft_heldout (what stage 04 held out), a prompt file or a Hub dataset with a 'prompt' column"})
    max_prompt_length: int = checked(64, ge=1, help="prompts longer than this are left out, counted")
    max_prompts: int | None = checked(None, ge=1, help="cap on prompts (null: all that fit)")
    validation_fraction: float = checked(0.1, gt=0, lt=1,
        help="share of preference pairs used as prompts when prompt_sources has pairs")
    stop_at_turn_end: bool = field(default=True, metadata={"help": "end an answer at <|im_end|>"})


@dataclass
class RLStageArguments(StageArguments):
    output_dir: str = field(default="outputs/06_rlhf", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})


@dataclass
class PPOArguments(RLStageArguments, PPOConfig):
    pass


@dataclass
class GRPOArguments(RLStageArguments, GRPOConfig):
    pass


@dataclass
class RLOOArguments(RLStageArguments, RLOOConfig):
    pass


@dataclass
class DPOArguments(RLStageArguments, DPOConfig):
    pass


CONFIGS = {"ppo": PPOArguments, "grpo": GRPOArguments, "rloo": RLOOArguments, "dpo": DPOArguments}
# What each algorithm logs as the reward on its own samples, and as the KL to the reference (PNG curves).
CURVES = {"ppo": ("objective/scores", "objective/kl"), "grpo": ("reward", "kl"), "rloo": ("reward", "kl"),
          "dpo": ("rewards/margins", None)}  # DPO samples nothing: its implicit reward margin on the pairs


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


def load_prompts(specs: list[str], sft_dir: str, seed: int, fraction: float):
    """Prompts the policy answers. `sft_heldout`: the conversations stage 04 held out (same sources, seed and
    fraction, read from its config.yaml), so RL does not rehearse what SFT memorised."""
    parts, lineage = [], []
    for spec in specs:
        if spec == "sft_heldout":
            sft_config = Path(sft_dir) / "config.yaml"
            if not sft_config.is_file():
                raise UserError(f"prompt_sources: sft_heldout needs {sft_config} (a stage-04 output folder)")
            cfg = yaml.safe_load(sft_config.read_text())
            data, lin = load_sources(cfg["sources"], check_sft)
            data = data.train_test_split(test_size=cfg["validation_fraction"], seed=cfg["seed"])["test"]
        else:
            data, lin = load_sources([spec], lambda ds, s, lineage: ds)
            data = data.train_test_split(test_size=fraction, seed=seed)["test"] if "chosen" in data.column_names \
                else data  # preference pairs: the reward model trained on most of them; use its held-out share
        parts.append(to_prompts(data))
        lineage += lin
    import datasets

    return datasets.concatenate_datasets(parts), lineage


def fit_prompts(prompts, tokenizer, max_len: int, limit: int | None):
    """Keep prompts up to max_len tokens (counted, not silently lost); tokenize them for PPO."""
    lengths = [len(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True)["input_ids"])
               for p in prompts["prompt"]]
    keep = [i for i, n in enumerate(lengths) if n <= max_len]
    dropped = len(lengths) - len(keep)
    prompts = prompts.select(keep[:limit] if limit else keep)
    if len(prompts) == 0:
        raise UserError(f"no prompt fits max_prompt_length {max_len} tokens: raise it")
    return prompts, dropped


@cli
def main():
    started = time.time()
    algorithm = peek("algorithm", "ppo")
    if algorithm not in CONFIGS:
        raise UserError(f"algorithm must be one of {', '.join(CONFIGS)}, got '{algorithm}'")
    rl, args = parse((RLArguments, CONFIGS[algorithm]))

    # 1. Check inputs and the output location before any work.
    artifacts.check_parent(rl.sft_dir, "sft")
    if algorithm != "dpo":
        artifacts.check_parent(rl.reward_dir, "reward")
        artifacts.check_parent(rl.value_dir or rl.reward_dir, "reward")
    if args.resume and algorithm == "ppo":
        raise UserError("resume: trl's PPOTrainer cannot continue a checkpoint; start over with --overwrite true")
    tokenizer = artifacts.load_tokenizer(rl.sft_dir, "sft_dir", "sft")
    if algorithm == "dpo":  # offline: the preference pairs themselves, no sampling
        data, lineage = load_sources(rl.prompt_sources if rl.prompt_sources != ["sft_heldout"] else ["default"],
                                     check_preferences)
        split = data.train_test_split(test_size=rl.validation_fraction, seed=args.seed)
        train_set, eval_set, dropped = split["train"], split["test"], 0
    else:
        prompts, lineage = load_prompts(rl.prompt_sources, rl.sft_dir, args.seed, rl.validation_fraction)
        train_set, dropped = fit_prompts(prompts, tokenizer, rl.max_prompt_length, rl.max_prompts)
        eval_set = None
        # PPO's loader drops the last partial batch and then cycles forever: fewer prompts than one batch on
        # every process would hang it without a word.
        processes = PartialState().num_processes  # PPOConfig.world_size is only set by the trainer
        batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * processes
        if algorithm == "ppo" and len(train_set) < batch:
            raise UserError(f"{len(train_set)} prompts fit max_prompt_length {rl.max_prompt_length}, fewer than one "
                            f"PPO batch ({batch} = per_device_train_batch_size x gradient_accumulation_steps x "
                            f"{processes} processes): add prompts, raise max_prompt_length or lower the batch")
    for item in lineage:
        print(f"[data] {item.summary()}")
    config = to_dict(rl, args)
    final_dir, tmp, push = artifacts.start_training_output(args)
    args, precision_used = precision.apply(args, args.precision)
    set_seed(args.seed)

    # 2. Models: policy and frozen reference from SFT; reward (and PPO's value model) from stage 05.
    policy = AutoModelForCausalLM.from_pretrained(rl.sft_dir)
    reference = AutoModelForCausalLM.from_pretrained(rl.sft_dir)
    turn_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if rl.stop_at_turn_end else None
    if algorithm != "dpo":
        reward = AutoModelForSequenceClassification.from_pretrained(rl.reward_dir, num_labels=1)
        reward.config.pad_token_id = tokenizer.pad_token_id
    print(f"[rlhf] {algorithm}: policy {rl.sft_dir}" + ("" if algorithm == "dpo" else f", reward {rl.reward_dir}")
          + f"; {len(train_set)} {'pairs' if algorithm == 'dpo' else 'prompts'}"
          + (f" ({dropped} longer than max_prompt_length {rl.max_prompt_length} left out)" if dropped else "")
          + f", {precision_used}")

    # 3. Train with the chosen TRL trainer.
    if algorithm == "ppo":
        # PPO reads tokenized prompts, left-padded (generation continues on the right).
        tokenizer.padding_side = "left"
        ppo_set = train_set.map(lambda r: {"input_ids": tokenizer.apply_chat_template(
            r["prompt"], add_generation_prompt=True, tokenize=True)["input_ids"]}, remove_columns=["prompt"])
        args.stop_token_id = turn_end if turn_end is not None else args.stop_token_id
        value = AutoModelForSequenceClassification.from_pretrained(rl.value_dir or rl.reward_dir, num_labels=1)
        value.config.pad_token_id = tokenizer.pad_token_id
        trainer = PPOTrainer(args=args, processing_class=tokenizer, model=policy, ref_model=reference,
                             reward_model=reward, value_model=value, train_dataset=ppo_set)
        trainer.train()
    elif algorithm in ("grpo", "rloo"):
        if turn_end is not None:
            args.generation_kwargs = {**(args.generation_kwargs or {}), "eos_token_id": turn_end}
        trainer_cls = GRPOTrainer if algorithm == "grpo" else RLOOTrainer
        trainer = trainer_cls(model=policy, reward_funcs=reward, args=args, train_dataset=train_set,
                              processing_class=tokenizer, reward_processing_classes=tokenizer)
        checkpoint = artifacts.newest_checkpoint(tmp) if args.resume else None
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    else:
        trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=train_set,
                             eval_dataset=eval_set, processing_class=tokenizer)
        checkpoint = artifacts.newest_checkpoint(tmp) if args.resume else None
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    # 4. Metrics from the logged curves: the reward on the policy's own samples early vs late, and the KL.
    history = trainer.state.log_history
    reward_key, kl_key = CURVES[algorithm]
    metrics = summarize(history, reward_key, kl_key)
    metrics.update(algorithm=algorithm, steps=trainer.state.global_step, precision=precision_used,
                   prompts_or_pairs=len(train_set), prompts_left_out=dropped,
                   kl_coef=getattr(args, "kl_coef", None) if algorithm == "ppo" else getattr(args, "beta", None))
    if algorithm == "dpo" and eval_set is not None:
        final = trainer.evaluate()
        metrics.update({k: final[k] for k in ("eval_rewards/accuracies", "eval_rewards/margins") if k in final})
    if args.process_index == 0:
        print("[metrics] " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))

    # 5. Save the policy (PPO saves only the policy, not the value head) and tokenizer.
    save_policy(trainer, tmp)
    trainer.save_state()
    if not args.should_save:
        return
    tokenizer.padding_side = "right"
    # Stops at <|im_end|>; no sampling setting of training (PPO's temperature, top_k 0) left in generation_config.
    saved_model.finish(tmp, tokenizer, stops=saved_model.stops_of(rl.sft_dir, tokenizer))

    # 6. Card (base_model: the SFT folder; names the reward model and KL coefficient), curves, run record.
    plots = [p.name for p in (
        cards.plot_curves(history, Path(tmp) / "reward.png", keys=(reward_key,), title=f"{algorithm}: {reward_key}"),
        cards.plot_curves(history, Path(tmp) / "kl.png", keys=(kl_key,), title=f"{algorithm}: {kl_key}") if kl_key else None,
    ) if p]
    cards.render(
        tmp, "rlhf.md.jinja", model_name=args.hub_model_id or f"fromscratch-{algorithm}", base_model=rl.sft_dir,
        datasets=cards.hub_datasets(lineage),
        tags=["rlhf", algorithm, "trl"], metrics=metrics, lineage=lineage, config=config, plots=plots,
        versions=runinfo.stack_versions(), load_path=args.hub_model_id or final_dir, algorithm=algorithm,
        sft_dir=rl.sft_dir, reward_dir=None if algorithm == "dpo" else rl.reward_dir,
        value_dir=(rl.value_dir or rl.reward_dir) if algorithm == "ppo" else None, reward_key=reward_key, kl_key=kl_key,
    )
    parents = [{"spec": rl.sft_dir, "role": "policy and reference"}]
    if algorithm != "dpo":
        parents.append({"spec": rl.reward_dir, "role": "reward model"})
    runinfo.write_run_info(tmp, stage="06_rlhf", config=config, metrics=metrics, started=started,
                           lineage=[*lineage, *parents])
    out = artifacts.finish(tmp, final_dir)
    print(f"[done] {algorithm} policy in {out}: {reward_key} {metrics['reward_first']} -> {metrics['reward_last']}"
          + (f", {kl_key} max {metrics['kl_max']}" if kl_key else ""))
    if push:
        print(f"[hub] {hub.push_folder(out, args.hub_model_id, private=bool(args.hub_private_repo))}")


def summarize(history: list[dict], reward_key: str, kl_key: str) -> dict:
    """Mean of the first and last quarter of the logged reward (noisy per step), and the KL's last and max."""
    rewards = [r[reward_key] for r in history if reward_key in r]
    kls = [r[kl_key] for r in history if kl_key and kl_key in r]
    q = max(1, len(rewards) // 4)
    mean = lambda xs: round(sum(xs) / len(xs), 6) if xs else None  # noqa: E731
    return {"reward_first": mean(rewards[:q]), "reward_last": mean(rewards[-q:]),
            "kl_last": round(kls[-1], 6) if kls else None, "kl_max": round(max(kls), 6) if kls else None}


if __name__ == "__main__":
    main()
