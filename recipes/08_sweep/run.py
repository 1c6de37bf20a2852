"""Stage 08: hyperparameter sweeps at small scale, and learning-rate transfer across model sizes.

    python recipes/08_sweep/run.py --config recipes/08_sweep/config_tiny.yaml [--key value ...]
    python recipes/08_sweep/run.py --config recipes/08_sweep/config_transfer.yaml --target_params 1.0e9

Reads: a stage 03 YAML (base_config) plus the keys every trial changes (fixed), and a search space (space).
Each trial is a stage 03 pretraining run (same data, packing, model families and schedule) driven by
transformers' Trainer.hyperparameter_search with optuna: TPE sampling, median pruning on the intermediate
validation bits per byte, trials stored in an optuna SQLite database so a killed sweep resumes (--resume true)
without redoing finished trials. With several `scales` the sweep runs once per model size and fits a power law
of the best learning rate in the parameter count, extrapolated to target_params (or a planner's plan JSON).
Writes: <output_dir>/ trials.csv + trials.json, sweep.png, best_<scale>.yaml (a ready stage 03 config),
transfer.json (with scales), study.db, README.md, config.yaml, run_info.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from transformers import AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer

from fromscratch import artifacts, cards, commented_yaml, runinfo
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.experiments.experiment import load_data, load_pretrain_yaml, model_config, training_args
from fromscratch.modeling import count_parameters
from fromscratch.training.lr_schedule import floor_kwargs
from fromscratch.experiments.sweep import (finished, fit_power_law, lr_optimum, parse_space, plot_trials,
                                           read_target_params, requeue_interrupted, trial_rows, write_table)

# Comments of the keys the sweep sets: stage 03's own, whatever the base config says about its values.
STAGE03_COMMENTS = commented_yaml.comments(Path(__file__).resolve().parents[1] / "03_pretrain" / "config_tiny.yaml")


@dataclass
class SweepArguments:
    base_config: str = field(default="recipes/03_pretrain/config_tiny.yaml", metadata={
        "help": "the stage 03 YAML every trial starts from"})
    fixed: dict = field(default_factory=dict, metadata={
        "help": "stage 03 keys every trial overrides: the small, fast setting of the sweep"})
    space: dict = field(default_factory=dict, metadata={
        "help": "what optuna searches; a range {low, high, log, step, type} or {choices: [...]}"})
    n_trials: int = checked(8, ge=1, help="trials per scale; a resumed sweep runs only the ones still missing")
    scales: list[str] = field(default_factory=list, metadata={
        "help": "model presets to sweep one after the other; empty: fixed.preset only"})
    study_name: str = field(default="sweep", metadata={"help": "optuna study name (one per scale: <name>-<preset>)"})
    storage: str | None = field(default=None, metadata={
        "help": "optuna storage URL; null: sqlite in the output folder (resumable)"})
    sampler_seed: int = field(default=0, metadata={"help": "TPE sampler seed (plus the number of trials already done)"})
    sampler_startup_trials: int = field(default=3, metadata={
        "help": "random trials before TPE models the space (optuna default 10: too many here)"})
    pruner: str = field(default="median", metadata={
        "help": "median: stop a trial worse than the median of earlier ones at the same step; none"})
    pruner_startup_trials: int = field(default=2, metadata={
        "help": "trials that always finish (the median needs a reference)"})
    pruner_warmup_steps: int = field(default=0, metadata={
        "help": "no pruning before this step (the first evaluation is noisy)"})
    target_params: float | None = field(default=None, metadata={
        "help": "with 2+ scales: propose a learning rate for a model of this many parameters"})
    plan_json: str | None = field(default=None, metadata={
        "help": "or read the size from a planner JSON's 'params' (recipes/00_plan output)"})
    output_dir: str = field(default="outputs/08_sweep", metadata={"help": "table, plot, best YAMLs, optuna database"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished sweep"})
    resume: bool = field(default=False, metadata={
        "help": "continue an interrupted sweep in <output_dir>.tmp without redoing finished trials"})


@cli
def main():
    started = time.time()
    (sweep,) = parse((SweepArguments,))

    # 1. Check the space, the base config, the scales and the output location before any work.
    space = parse_space(sweep.space)
    base = load_pretrain_yaml(sweep.base_config, sweep.fixed)
    scales = sweep.scales or [str(base.get("preset", "tiny"))]
    configs = {s: {**base, "preset": s} for s in scales}
    if sweep.n_trials < 1:
        raise UserError(f"n_trials must be >= 1, got {sweep.n_trials}")
    if sweep.pruner not in ("median", "none"):
        raise UserError(f"pruner must be median or none, got '{sweep.pruner}'")
    target = read_target_params(sweep.target_params, sweep.plan_json)
    tmp = artifacts.prepare(sweep.output_dir, overwrite=sweep.overwrite, resume=sweep.resume)
    storage = sweep.storage or f"sqlite:///{Path(tmp).resolve() / 'study.db'}"

    # 2. Data once: every trial at every scale sees the same packed blocks and validation documents.
    seed = int(base.get("seed", 0))
    data = load_data(base, seed)
    for s, cfg in configs.items():  # a bad shape fails here, not in trial 1
        model_config(cfg, data.tokenizer)

    # 3. One optuna study per scale, driven by the Trainer; finished trials in the database are not redone.
    rows, best = [], {}
    for scale, cfg in configs.items():
        name = f"{sweep.study_name}-{scale}"
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)
        again = requeue_interrupted(study)
        remaining = sweep.n_trials - len(finished(study))
        print(f"[sweep] {name}: {len(finished(study))} trials done, {remaining} to run"
              + (f", {again} interrupted trial(s) queued again" if again else ""))
        if remaining > 0:
            run_study(cfg, space, data, name, storage, remaining, len(finished(study)), sweep, Path(tmp) / "trials" / scale)
        study = optuna.load_study(study_name=name, storage=storage)
        rows += trial_rows(study, scale, space)
        best[scale] = {"trial": study.best_trial.number, "bits_per_byte": study.best_value,
                       "params": study.best_trial.params, "parameters": study.best_trial.user_attrs.get("parameters")}
        complete = [t for t in study.trials if t.state.name == "COMPLETE" and "learning_rate" in t.params]
        if complete:
            best[scale]["lr_estimate"] = lr_optimum([t.params["learning_rate"] for t in complete],
                                                    [t.value for t in complete])
        print(f"[best] {scale}: trial {best[scale]['trial']}, {study.best_value:.4f} bits/byte, {study.best_trial.params}")

    # 4. Table, plot, and the best point of each scale as a ready-to-run stage 03 YAML.
    write_table(rows, Path(tmp) / "trials.csv", Path(tmp) / "trials.json")
    plot = plot_trials(rows, space, Path(tmp) / "sweep.png")
    for scale, b in best.items():
        values = {**sweep.fixed, "preset": scale, **b["params"],
                  "output_dir": f"outputs/03_pretrain_{sweep.study_name}_{scale}"}
        header = [f"# Stage 03 config from sweep '{sweep.study_name}' (trial {b['trial']} of scale {scale}: "
                  f"{b['bits_per_byte']:.4f} validation bits/byte) on {sweep.base_config}.",
                  "# The keys the sweep set are as in its trials (max_steps: each trial's budget; raise it for a real "
                  "run). Run it: make pretrain CONFIG=<this file>"]
        (Path(tmp) / f"best_{scale}.yaml").write_text(commented_yaml.substitute(
            sweep.base_config, values, STAGE03_COMMENTS, header, fallback=lambda key: "set by the sweep"))

    # 5. Transfer across scale: best learning rate as a power law in parameters (an extrapolation).
    transfer = None
    if len(best) >= 2 and all("lr_estimate" in b for b in best.values()):
        sizes = [b["parameters"] for b in best.values()]
        lrs = [b["lr_estimate"][0] for b in best.values()]
        a, exponent = fit_power_law(sizes, lrs)
        transfer = {"fit": f"learning_rate = {a:.4g} * params^{exponent:.3f}", "a": a, "exponent": exponent,
                    "points": [{"scale": s, "parameters": b["parameters"], "learning_rate": b["lr_estimate"][0],
                                "estimate": b["lr_estimate"][1], "best_trial_lr": b["params"]["learning_rate"]}
                               for s, b in best.items()]}
        if target:
            transfer.update(target_params=target, proposed_learning_rate=a * target ** exponent,
                            note=(f"EXTRAPOLATION: fitted on {min(sizes) / 1e6:.2f}M-{max(sizes) / 1e6:.2f}M "
                                  f"parameters, applied at {target / 1e6:.0f}M; a starting point to check with a "
                                  "short run at the target size, not a measured optimum"))
        (Path(tmp) / "transfer.json").write_text(json.dumps(transfer, indent=1))
        print(f"[transfer] {transfer['fit']}" + (f"; {transfer['note']}: learning_rate "
                                                 f"{transfer['proposed_learning_rate']:.3g}" if target else ""))

    # 6. Card and run record; publish atomically.
    metrics = {"trials": len(rows), "pruned": sum(r["state"] == "pruned" for r in rows),
               "completed": sum(r["state"] == "complete" for r in rows), "best": best, "transfer": transfer}
    (Path(tmp) / "README.md").write_text(cards.with_metadata(card(sweep, rows, best, transfer, plot, space),
                                                             tags=["hyperparameter-search", "optuna"]))
    runinfo.write_run_info(tmp, stage="08_sweep", config=to_dict(sweep), metrics=metrics, started=started,
                           lineage=data.lineage)
    out = artifacts.finish(tmp, sweep.output_dir)
    print(f"[done] {metrics['trials']} trials ({metrics['pruned']} pruned) in {out}; best config: "
          + ", ".join(str(Path(out) / f"best_{s}.yaml") for s in best))


def run_study(cfg: dict, space, data, name: str, storage: str, n_trials: int, done: int, sweep: SweepArguments,
              out: Path):
    """Trainer.hyperparameter_search: each trial re-inits the model (model_init) and sets the sampled arguments."""
    # Trials are whole units of resumption: no checkpoints, no trackers, evaluation reports feed the pruner.
    args = training_args(cfg, out, save_strategy="no", report_to="none", disable_tqdm=True)
    ratio = float(cfg.get("min_lr_ratio", 0.1))

    def sample(trial) -> dict:  # optuna returns the same value when a trial asks twice
        return {p.name: p.suggest(trial) for p in space}

    def model_init(trial=None):
        values = sample(trial) if trial is not None else {}
        model = AutoModelForCausalLM.from_config(model_config({**cfg, **{k: v for k, v in values.items()
                                                                          if k == "dropout"}}, data.tokenizer))
        if trial is not None:
            trial.set_user_attr("parameters", count_parameters(model))
        return model

    def hp_space(trial) -> dict:
        values = {k: v for k, v in sample(trial).items() if k != "dropout"}
        lr = values.get("learning_rate", args.learning_rate)
        # the floor follows each trial's peak (lr_end is absolute); the YAML's own kwargs win, as in stage 03
        return {**values, "lr_scheduler_kwargs": floor_kwargs(args.lr_scheduler_type, lr, ratio,
                                                              cfg.get("lr_scheduler_kwargs"))}

    trainer = Trainer(model_init=model_init, args=args, train_dataset=data.train, eval_dataset=data.val,
                      processing_class=data.tokenizer, data_collator=DataCollatorForLanguageModeling(data.tokenizer, mlm=False))
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=sweep.pruner_startup_trials,
                                          n_warmup_steps=sweep.pruner_warmup_steps)
              if sweep.pruner == "median" else optuna.pruners.NopPruner())
    trainer.hyperparameter_search(
        hp_space=hp_space, compute_objective=lambda m: data.bits_per_byte(m["eval_loss"]), n_trials=n_trials,
        direction="minimize", backend="optuna", study_name=name, storage=storage, load_if_exists=True,
        # Seeded by the trials already done, so a resumed sweep does not replay the first proposals.
        sampler=optuna.samplers.TPESampler(seed=sweep.sampler_seed + done,
                                           n_startup_trials=sweep.sampler_startup_trials),
        pruner=pruner,
    )


def card(sweep, rows, best, transfer, plot, space) -> str:
    head = [k for k in ("scale", "trial", "state", "bits_per_byte", "last_step", "seconds", "parameters")]
    cols = head + [p.name for p in space]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    table = "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                      + ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows])
    lines = [f"# Sweep `{sweep.study_name}`", "",
             f"{len(rows)} trials of `{sweep.base_config}` with {', '.join(p.name for p in space)} searched by optuna "
             "(TPE, median pruning on the validation bits per byte reported at each evaluation) through "
             "`Trainer.hyperparameter_search`. Lower is better.", ""]
    if plot:
        lines += [f"![objective against the hyperparameters]({plot.name})", ""]
    lines += ["## Best", ""] + [f"- {s}: trial {b['trial']}, {b['bits_per_byte']:.4f} bits/byte, {b['params']} "
                                f"-> `best_{s}.yaml` (`make pretrain CONFIG=.../best_{s}.yaml`)" for s, b in best.items()]
    if transfer:
        lines += ["", "## Learning rate across scale", "", f"Fit: `{transfer['fit']}` over "
                  + ", ".join(f"{p['scale']} ({p['parameters']} params: {p['learning_rate']:.3g}, {p['estimate']})"
                              for p in transfer["points"])
                  + "."]
        if "proposed_learning_rate" in transfer:
            lines += ["", f"**{transfer['note']}.** Proposed learning rate at {transfer['target_params']:.3g} "
                      f"parameters: **{transfer['proposed_learning_rate']:.3g}**."]
    lines += ["", "## Trials", "", table, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
