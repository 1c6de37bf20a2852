"""What stage 06's scripts share: which script runs which algorithm, the prompts the online algorithms answer,
and the metrics, curves and card of a finished run.

    recipes/06_rlhf/run.py     PPO (trl.experimental.ppo): reward model + value model, KL to the SFT reference
    recipes/06_rlhf/online.py  GRPO or RLOO (the YAML's `algorithm`): reward model, no value model
    recipes/06_rlhf/dpo.py     DPO: offline, on the preference pairs, no reward model
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import set_seed

from .. import artifacts, cards, heldout, publish
from ..config import UserError, checked, peek, to_dict
from ..training import precision
from .chat_data import check_sft, load_sources, to_prompts

SCRIPTS = {"ppo": "run.py", "grpo": "online.py", "rloo": "online.py", "dpo": "dpo.py"}
# What each algorithm logs as the reward of its own samples, and as the KL to the reference (the PNG curves).
CURVES = {"ppo": ("objective/scores", "objective/kl"), "grpo": ("reward", "kl"), "rloo": ("reward", "kl"),
          "dpo": ("rewards/margins", None)}  # DPO samples nothing: its implicit reward margin on the pairs


def check_script(script: str, default: str | None = None) -> str | None:
    """The `algorithm` a config names (YAML or --algorithm; `default` when it names none), refused in one line
    when another of the stage's scripts runs it. Only online.py reads the key: it runs two algorithms."""
    algorithm = peek("algorithm", default)
    if algorithm is None:
        return None
    if algorithm not in SCRIPTS:
        raise UserError(f"algorithm must be one of {', '.join(SCRIPTS)}, got '{algorithm}'")
    if SCRIPTS[algorithm] != script:
        raise UserError(f"algorithm {algorithm} runs with recipes/06_rlhf/{SCRIPTS[algorithm]}, not {script}")
    if default is None:
        raise UserError(f"algorithm: {script} runs {algorithm} only; drop the key")
    return algorithm


@dataclass
class PromptArguments:
    """The keys of the online algorithms (PPO, GRPO, RLOO): who answers, who scores, and what they answer."""

    sft_dir: str = field(default="outputs/04_sft", metadata={
        "help": "stage 04's output folder: policy init and frozen reference"})
    reward_dir: str = field(default="outputs/05_reward", metadata={
        "help": "stage 05's output folder: the reward model"})
    prompt_sources: list[str] = field(default_factory=lambda: ["sft_heldout"], metadata={
        "help": "sft_heldout (what stage 04 held out), a prompt file or a Hub dataset with a 'prompt' column"})
    max_prompt_length: int = checked(64, ge=1, help="prompts longer than this are left out, counted")
    max_prompts: int | None = checked(None, ge=1, help="cap on prompts (null: all that fit)")
    validation_fraction: float = checked(0.1, gt=0, lt=1,
        help="share of preference pairs used as prompts when prompt_sources has pairs")
    stop_at_turn_end: bool = field(default=True, metadata={"help": "end an answer at <|im_end|>"})


def load_prompts(specs: list[str], sft_dir: str, seed: int, fraction: float):
    """Prompts the policy answers. `sft_heldout`: the conversations stage 04 held out (its heldout.json), so RL
    does not rehearse what SFT memorised."""
    import datasets

    parts, lineage = [], []
    for spec in specs:
        if spec == "sft_heldout":
            record = heldout.read(sft_dir)
            if record is None:
                raise UserError(f"prompt_sources: sft_heldout needs {Path(sft_dir) / heldout.FILE} (a stage-04 output "
                                "folder, which records the conversations it held out)")
            data, lin = load_sources(record["sources"], check_sft)
            data = data.select(heldout.pick(data, record)[1])
        else:
            data, lin = load_sources([spec], lambda ds, s, lineage: ds)
            data = heldout.split(data, fraction, seed, what="preference pairs")["test"] if "chosen" in data.column_names \
                else data  # preference pairs: the reward model trained on most of them; use its held-out share
        parts.append(to_prompts(data))
        lineage += lin
    return datasets.concatenate_datasets(parts), lineage


def fit_prompts(prompts, tokenizer, max_len: int, limit: int | None):
    """Keep prompts up to max_len tokens (counted, not silently lost)."""
    lengths = [len(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True)["input_ids"])
               for p in prompts["prompt"]]
    keep = [i for i, n in enumerate(lengths) if n <= max_len]
    dropped = len(lengths) - len(keep)
    prompts = prompts.select(keep[:limit] if limit else keep)
    if len(prompts) == 0:
        raise UserError(f"no prompt fits max_prompt_length {max_len} tokens: raise it")
    return prompts, dropped


def begin(settings, args, lineage: list):
    """What every 06 script does once its inputs are checked: print what it read, record its config, open
    <output_dir>.tmp, settle the precision and seed. Returns (args, config, final_dir, tmp, push, precision)."""
    for item in lineage:
        print(f"[data] {item.summary()}")
    config = to_dict(settings, args)
    final_dir, tmp, push = artifacts.start_training_output(args)
    args, precision_used = precision.apply(args, args.precision)
    set_seed(args.seed)
    return args, config, final_dir, tmp, push, precision_used


def summarize(history: list[dict], reward_key: str, kl_key: str | None) -> dict:
    """Mean of the first and last quarter of the logged reward (noisy per step), and the KL's last and max."""
    rewards = [r[reward_key] for r in history if reward_key in r]
    kls = [r[kl_key] for r in history if kl_key and kl_key in r]
    q = max(1, len(rewards) // 4)
    mean = lambda xs: round(sum(xs) / len(xs), 6) if xs else None  # noqa: E731
    return {"reward_first": mean(rewards[:q]), "reward_last": mean(rewards[-q:]),
            "kl_last": round(kls[-1], 6) if kls else None, "kl_max": round(max(kls), 6) if kls else None}


def report(trainer, algorithm: str, args, *, settled: str, **facts) -> dict:
    """The run's metrics: the reward on the policy's own samples early vs late and the KL, from the logged
    curves, the precision the trainer's Accelerator computed in (which must be the `settled` one), plus
    `facts`; printed once as the `[metrics]` line."""
    metrics = summarize(trainer.state.log_history, *CURVES[algorithm])
    metrics.update(algorithm=algorithm, steps=trainer.state.global_step,
                   precision=precision.computed_in(trainer, settled), **facts)
    publish.print_metrics(metrics, rank=args.process_index)
    return metrics


def publish_policy(tmp, final_dir, history: list[dict], *, algorithm: str, args, config: dict, metrics: dict,
                   lineage: list, started: float, push: bool, sft_dir: str, reward_dir: str | None = None,
                   value_dir: str | None = None) -> Path:
    """reward.png and kl.png, then the shared publish step. The card's base_model is the SFT folder; it names the
    reward model (none for DPO), PPO's value model and the KL coefficient; the `[done]` line shows the reward
    early -> late and the KL's max."""
    reward_key, kl_key = CURVES[algorithm]
    plots = [p.name for p in (
        cards.plot_curves(history, Path(tmp) / "reward.png", keys=(reward_key,), title=f"{algorithm}: {reward_key}"),
        cards.plot_curves(history, Path(tmp) / "kl.png", keys=(kl_key,), title=f"{algorithm}: {kl_key}")
        if kl_key else None,
    ) if p]
    summary = (f"{reward_key} {metrics['reward_first']} -> {metrics['reward_last']}"
               + (f", {kl_key} max {metrics['kl_max']}" if kl_key else ""))
    return publish.publish(
        tmp, final_dir, stage="06_rlhf", template="rlhf.md.jinja", name=f"fromscratch-{algorithm}",
        card=dict(base_model=sft_dir, tags=["rlhf", algorithm, "trl"], plots=plots, algorithm=algorithm,
                  sft_dir=sft_dir, reward_dir=reward_dir, value_dir=value_dir, reward_key=reward_key, kl_key=kl_key),
        config=config, lineage=lineage, parents=parents(sft_dir, reward_dir), metrics=metrics, started=started,
        what=f"{algorithm} policy", summary=summary, push=push, hub_model_id=args.hub_model_id,
        private=args.hub_private_repo)


def parents(sft_dir: str, reward_dir: str | None = None) -> list[dict]:
    """The run record's parent models, with their roles."""
    out = [{"spec": sft_dir, "role": "policy and reference"}]
    return out + ([{"spec": reward_dir, "role": "reward model"}] if reward_dir else [])
