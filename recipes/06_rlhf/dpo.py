"""Stage 06 with DPO: offline, on the preference pairs themselves. No reward model and no sampling: the policy
learns to prefer the chosen answer over the rejected one, relative to the frozen SFT reference (beta, the
strength of the implicit KL).

    python recipes/06_rlhf/dpo.py --config recipes/06_rlhf/config_dpo_tiny.yaml [--key value ...]

Reads: the SFT model (policy and frozen reference) from stage 04, preference pairs (default: the embedded
hh-rlhf harmless-base). Writes: <output_dir>/ with the policy + tokenizer, trainer_state.json, reward.png (the
implicit reward margin per step), README.md card (base_model: sft_dir; beta), config.yaml, run_info.json with
the held-out pairs' reward accuracy and margin.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from transformers import AutoModelForCausalLM
from trl import DPOConfig, DPOTrainer

from fromscratch import artifacts, heldout
from fromscratch.alignment import rlhf
from fromscratch.alignment.chat_data import check_preferences, fitted, load_sources
from fromscratch.config import checked, cli, parse
from fromscratch.training import eval_subset, saved_model
from fromscratch.training.stage_args import StageArguments


@dataclass
class PairArguments:
    sft_dir: str = field(default="outputs/04_sft", metadata={
        "help": "stage 04's output folder: policy init and frozen reference"})
    sources: list[str] = field(default_factory=lambda: ["default"], metadata={
        "help": "preference pairs: default (embedded hh-rlhf harmless-base), a local path or a Hub id"})
    validation_fraction: float = checked(0.1, gt=0, lt=1,
        help="share of pairs held out for DPO's reward accuracy and margin")


@dataclass
class DPOArguments(StageArguments, eval_subset.EvalSubsetArguments, DPOConfig):
    output_dir: str = field(default="outputs/06_rlhf", metadata={
        "help": "final folder; the run works in <output_dir>.tmp until finished"})


@cli
def main():
    started = time.time()
    rlhf.check_script("dpo.py")
    data, args = parse((PairArguments, DPOArguments))

    # 1. Check inputs and the output location before any work; hold out a share of the pairs.
    artifacts.check_parent(data.sft_dir, "sft", "sft_dir")
    tokenizer = artifacts.load_tokenizer(data.sft_dir, "sft_dir", "sft")
    pairs, lineage = load_sources(data.sources, check_preferences)
    split = heldout.split(pairs, data.validation_fraction, args.seed, what="preference pairs")
    args, config, final_dir, tmp, push, precision_used = rlhf.begin(data, args, lineage)

    # 2. Models: the policy and its frozen reference, both from SFT.
    policy = AutoModelForCausalLM.from_pretrained(data.sft_dir)
    reference = AutoModelForCausalLM.from_pretrained(data.sft_dir)
    print(f"[rlhf] dpo: policy {data.sft_dir}; {len(split['train'])} pairs, {precision_used}")

    # 3. Train on the pairs.
    trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=split["train"],
                         eval_dataset=split["test"], processing_class=tokenizer)
    fitted(trainer, split["train"], split["test"], "preference pairs", args.max_length)
    final_set = eval_subset.cap(trainer, args.eval_samples, args.final_eval_samples, "pairs")
    checkpoint = artifacts.newest_checkpoint(tmp) if args.resume else None
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    # 4. Metrics: the implicit reward margin on the training pairs early vs late, and on the held-out pairs
    # how often the chosen answer wins and by how much.
    final = trainer.evaluate(eval_dataset=final_set)
    metrics = rlhf.report(trainer, "dpo", args, settled=precision_used, prompts_or_pairs=len(split["train"]),
                          prompts_left_out=0, kl_coef=args.beta,
                          **{k: final[k] for k in ("eval_rewards/accuracies", "eval_rewards/margins") if k in final})

    # 5. Save the policy and tokenizer: it stops at <|im_end|>.
    trainer.save_model(str(tmp))
    trainer.save_state()
    if not args.should_save:
        return
    saved_model.finish(tmp, tokenizer, stops=saved_model.stops_of(data.sft_dir, tokenizer))

    # 6. Card (base_model: the SFT folder; beta), the margin curve, run record.
    rlhf.publish_policy(tmp, final_dir, trainer.state.log_history, algorithm="dpo", args=args, config=config,
                        metrics=metrics, lineage=lineage, started=started, push=push, sft_dir=data.sft_dir)


if __name__ == "__main__":
    main()
